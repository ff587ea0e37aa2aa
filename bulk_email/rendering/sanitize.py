"""The composed HTML made safe for email by an allow-list (nh3), and its plain-text twin.

The sanitizer runs once per request (``api`` checks and saves or previews a body) and once
per email (``prepare``): a stored body is sanitized again when it is prepared, because rows
can come from elsewhere (the admin, a shell, an older version with a looser allow-list). What
this module returns is a ``SanitizedHtml``, which is never sanitized twice, and ``prepare``'s
two parts (HTML, text) share one result. Never per recipient.

nh3's cost grows with the square of the nesting depth (90,000 nested ``<div>`` took minutes),
so the depth is measured first by a linear scan and deep markup is refused, not parsed.
"""

import re

import html2text
import nh3

from .. import app_settings
from ..exceptions import InvalidEmailError

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

# --- CSS: an allow-list of properties (nh3), and values without functions that load or run --

# The properties email layouts use. Not background-image, behavior, -moz-binding, content,
# cursor, list-style-image: they load things or run code in some mail client.
ALLOWED_CSS_PROPERTIES = {
    "background", "background-color", "border", "border-bottom", "border-bottom-color",
    "border-bottom-style", "border-bottom-width", "border-collapse", "border-color",
    "border-left", "border-left-color", "border-left-style", "border-left-width",
    "border-radius", "border-right", "border-right-color", "border-right-style",
    "border-right-width", "border-spacing", "border-style", "border-top", "border-top-color",
    "border-top-style", "border-top-width", "border-width", "clear", "color", "direction",
    "display", "float", "font", "font-family", "font-size", "font-style", "font-variant",
    "font-weight", "height", "letter-spacing", "line-height", "list-style-position",
    "list-style-type", "margin", "margin-bottom", "margin-left", "margin-right", "margin-top",
    "max-height", "max-width", "min-height", "min-width", "overflow", "padding",
    "padding-bottom", "padding-left", "padding-right", "padding-top", "table-layout",
    "text-align", "text-decoration", "text-indent", "text-transform", "vertical-align",
    "white-space", "width", "word-break", "word-spacing", "overflow-wrap",
}  # fmt: skip
# The only CSS functions kept: colours. Anything else (url, expression, image-set, var...) or
# any escape or comment, which is how filters are dodged (e\78pression, expr/**/ession,
# java\73 cript:), takes its whole declaration out.
CSS_FUNCTION = re.compile(r"([-\w]*)\s*\(")
SAFE_CSS_FUNCTIONS = {"rgb", "rgba", "hsl", "hsla"}
CSS_EVASIONS = re.compile(r"[\\@<>{}]|/\*|\*/|javascript|vbscript|expression", re.IGNORECASE)


def _safe_declaration(declaration: str) -> bool:
    """An allowed property with a plain value. Every declaration a CSS parser sees starts
    where one of these pieces (split at each ";", quotes or not) starts, so checking the
    pieces checks every property a mail client could find."""
    name, colon, value = declaration.partition(":")
    if not colon or name.strip().lower() not in ALLOWED_CSS_PROPERTIES:
        return False
    if CSS_EVASIONS.search(value):
        return False
    return {f.lower() for f in CSS_FUNCTION.findall(value)} <= SAFE_CSS_FUNCTIONS


def _safe_style(value: str) -> str | None:
    """The allowed declarations, as written. (nh3's own ``filter_style_properties`` is not
    used: it re-serialises the CSS and so decodes ``e\\78pression(`` into ``expression(``.)"""
    kept = [d.strip() for d in value.split(";") if d.strip() and _safe_declaration(d)]
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

# --- Nesting depth: a linear scan before the parser ---------------------------------------------

TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)[^>]*")  # the whole tag: attributes tell copies apart
VOID_TAGS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta",
    "param", "source", "track", "wbr",
}  # fmt: skip
# An open one of these is closed by the next of the same name (<li>a<li>b), as browsers do.
SELF_CLOSING_SIBLINGS = {"p", "li", "dt", "dd", "tr", "td", "th", "option"}
# End tags do not reach through these (HTML's scope): "</div>" inside a <table> is ignored by
# the parser, so the scan must not count it as closing anything either.
SCOPE_BOUNDARIES = {"table", "td", "th", "caption", "template", "object", "applet", "marquee"}


# Formatting elements closed implicitly ("<div><b></div>") stay on the parser's list of active
# formatting elements and are re-created, all of them nested, before the next text or tag:
# 2,400 times "<div><b class=cN></div>" (61 KB) made 2.9 million <b> and took nh3 17 s. The
# scan counts them as open (their depth) and as re-created at every tag (their elements).
FORMATTING_TAGS = {
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt",
    "u",
}  # fmt: skip
IDENTICAL_KEPT = 3  # HTML's "Noah's ark": a fourth identical formatting element drops the first


class _DepthScan:
    """The element stack as a browser would build it, approximated so that it never counts
    fewer open elements than the parser keeps. ``depth`` is the deepest it got, ``elements``
    how many elements the parser would make."""

    def __init__(self):
        self.stack: list[tuple[str, str]] = []  # (name, the whole start tag)
        self.closed_formatting: list[tuple[str, str]] = []
        self.depth = 0
        self.elements = 0

    def open(self, name: str, tag: str) -> None:
        self.elements += 1 + len(self.closed_formatting)  # they are re-created first
        if name in SELF_CLOSING_SIBLINGS and self.stack and self.stack[-1][0] == name:
            return  # the new sibling replaces the open one: the depth stays
        self.stack.append((name, tag))
        self.depth = max(self.depth, len(self.stack) + len(self.closed_formatting))

    def close(self, name: str) -> None:
        self.elements += len(self.closed_formatting)  # re-created before the text that follows
        for position in range(len(self.stack) - 1, -1, -1):
            if self.stack[position][0] == name:
                self.keep_closed_formatting(self.stack[position + 1 :])
                del self.stack[position:]
                return
            if self.stack[position][0] in SCOPE_BOUNDARIES:
                return
        if name in FORMATTING_TAGS:  # its end tag takes one off the list
            self.forget_closed_formatting(name)

    def keep_closed_formatting(self, popped: list[tuple[str, str]]) -> None:
        for entry in popped:
            if entry[0] in FORMATTING_TAGS:
                if self.closed_formatting.count(entry) >= IDENTICAL_KEPT:
                    self.closed_formatting.remove(entry)
                self.closed_formatting.append(entry)

    def forget_closed_formatting(self, name: str) -> None:
        for position in range(len(self.closed_formatting) - 1, -1, -1):
            if self.closed_formatting[position][0] == name:
                del self.closed_formatting[position]
                return


def scan_elements(markup: str, *, max_depth: int, max_elements: int) -> _DepthScan:
    """One pass over the tags, stopping as soon as either bound is passed: the work is linear
    in the length and, the stack and list being at most ``max_depth`` long, bounded per tag."""
    scan = _DepthScan()
    for match in TAG.finditer(markup):
        closing, name = match.group(1), match.group(2).lower()
        if closing:
            scan.close(name)
        elif name not in VOID_TAGS:
            scan.open(name, match.group(0))
        else:
            scan.elements += 1
        if scan.depth > max_depth or scan.elements > max_elements:
            break
    return scan


def nesting_depth(markup: str, *, stop_above: int) -> int:
    """How deeply the markup's elements nest, counted up to ``stop_above`` + 1."""
    return scan_elements(markup, max_depth=stop_above, max_elements=len(markup)).depth


def refuse_costly_markup(markup: str) -> None:
    """Refuse, before the sanitizer parses it, markup that would take seconds: nh3's cost grows
    with the square of the depth, the text conversion's (html2text) with the element count."""
    depth, elements = app_settings.get("MAX_HTML_NESTING"), app_settings.get("MAX_HTML_ELEMENTS")
    scan = scan_elements(markup, max_depth=depth, max_elements=elements)
    if scan.depth > depth:
        raise InvalidEmailError(
            f"The message nests its elements more than {depth} deep; simplify its layout.",
            field="message",
        )
    if scan.elements > elements:
        raise InvalidEmailError(
            f"The message has more than {elements:,} elements (tags); shorten or simplify it.",
            field="message",
        )


class SanitizedHtml(str):
    """HTML that came out of the sanitizer: sanitizing it again would change nothing."""


_last_sanitized: tuple[str, SanitizedHtml] = ("", SanitizedHtml(""))


def sanitize_html(markup: str) -> SanitizedHtml:
    """The composed HTML with only what is safe in email: no script, event handlers,
    ``javascript:`` URLs or CSS outside the allow-list. Raises InvalidEmailError(field=
    "message") when it nests deeper than MAX_HTML_NESTING or has more than MAX_HTML_ELEMENTS."""
    global _last_sanitized
    if isinstance(markup, SanitizedHtml):
        return markup
    last_markup, last_result = _last_sanitized  # prepare asks twice: the HTML and text parts
    if markup == last_markup:
        return last_result
    refuse_costly_markup(markup)
    result = SanitizedHtml(_cleaner.clean(markup))
    _last_sanitized = (markup, result)
    return result


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
