"""The composed HTML made safe for email by an allow-list (nh3), and its plain-text twin.

Both run once per email (``prepare``) and when staff save or check a body (``api``), never
per recipient.
"""

import re

import html2text
import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "cite", "code", "col",
    "colgroup", "dd", "del", "div", "dl", "dt", "em", "figcaption", "figure", "font", "h1",
    "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "ol", "p", "pre", "q", "s",
    "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": {"style", "class", "title", "align", "dir", "lang"},
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "width", "height", "border"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor", "summary"},
    "td": {"colspan", "rowspan", "width", "height", "bgcolor", "valign", "nowrap"},
    "th": {"colspan", "rowspan", "width", "height", "bgcolor", "valign", "scope"},
    "tr": {"bgcolor", "valign"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
    "ul": {"type"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Tags whose content goes too, not just the tag.
DROPPED_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template"}
# CSS that runs code or loads things in old mail clients (IE's expression, Mozilla bindings).
DANGEROUS_CSS = re.compile(
    r"expression\s*\(|javascript:|vbscript:|-moz-binding|behavior\s*:|@import", re.IGNORECASE
)


def _safe_style(value: str) -> str | None:
    declarations = [d for d in value.split(";") if d.strip()]
    kept = [d.strip() for d in declarations if not DANGEROUS_CSS.search(d)]
    return "; ".join(kept) or None


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    return _safe_style(value) if attribute == "style" else value


_cleaner = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags=DROPPED_WITH_CONTENT,
    attributes=ALLOWED_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    url_schemes=URL_SCHEMES,
    strip_comments=True,
)


def sanitize_html(markup: str) -> str:
    """The composed HTML with only what is safe in email: no script, event handlers,
    ``javascript:`` URLs or CSS expressions."""
    return _cleaner.clean(markup)


# What html2text writes for Markdown and has no option to leave out (see text_from_html).
MARKDOWN_LINK = re.compile(r"\[((?:\\.|[^\]\\])*)\]\(((?:\\.|[^)\\])*)\)")
MARKDOWN_HEADING = re.compile(r"^#{1,6} ", re.MULTILINE)
MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")
BLANK_LINES = re.compile(r"\n(?:[ \t\u00a0]*\n)+")


def _plain_link(match: re.Match) -> str:
    """``[text](url)`` as a person writes it in a plain-text email: "text (url)"."""
    text, url = match.group(1).strip(), match.group(2).removeprefix("mailto:")
    return url if text in ("", url) else f"{text} ({url})"


def _plain_text(markdown: str) -> str:
    text = MARKDOWN_LINK.sub(_plain_link, markdown)
    text = MARKDOWN_HEADING.sub("", text)
    text = MARKDOWN_ESCAPE.sub(r"\1", text)
    return BLANK_LINES.sub("\n\n", text)


def _converter() -> html2text.HTML2Text:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # no hard wrapping: quoted-printable handles long lines
    converter.ignore_images = True
    converter.ignore_emphasis = True  # no ** or _ around bold and italic words
    converter.unicode_snob = True  # "—" and "é" as they are, not "--" and "e"
    converter.use_automatic_links = False  # a bare URL as itself, never "<url>"
    converter.inline_links = True  # links where they are read, not as notes at the end
    return converter


def text_from_html(markup: str) -> str:
    """The text/plain part: reads as a plain-text email, not as Markdown. html2text's
    options drop emphasis and images; links, headings, its escapes and blank-line runs have
    no option, so ``_plain_text`` rewrites what it made of them."""
    return _plain_text(_converter().handle(markup)).strip() + "\n"
