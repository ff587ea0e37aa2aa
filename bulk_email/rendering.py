"""Messages: the expensive work once per email, then a cheap fill-in per recipient.

``prepare_message`` (once per email, cached per process by ``get_prepared_message``):
sanitize the composed HTML, wrap it in the course template, add the footer, inline the CSS
(premailer), make the text part (html2text), fill in the course keywords, encode the fixed
headers and MIME part headers, and keep the HTML, text and subject split around the personal
slots. ``render_message`` (per recipient): fill in the name, user id and unsubscribe token,
then ``RenderedMessage.as_bytes()`` joins pre-encoded pieces; only what differs per recipient
is encoded. Pure: no database writes; the only reads are the course and the template, in
``get_prepared_message``.
"""

import base64
import binascii
import html
import logging
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from email.utils import formatdate, quote
from typing import Any, Protocol

import html2text
import nh3
import premailer
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import get_template, render_to_string
from django.urls import NoReverseMatch, reverse

from . import app_settings
from .exceptions import BulkEmailConfigurationError, InvalidEmailError, UnknownCourseError
from .lms import CourseInfo, Recipient, get_lms
from .models import MESSAGE_BODY_SLOT
from .tokens import make_token, salted_hmac_digest

logger = logging.getLogger(__name__)

USER_FULLNAME = "%%USER_FULLNAME%%"
USER_ID = "%%USER_ID%%"
COURSE_DISPLAY_NAME = "%%COURSE_DISPLAY_NAME%%"
COURSE_END_DATE = "%%COURSE_END_DATE%%"
# Internal slot: where the recipient's unsubscribe token goes (footer and headers).
UNSUBSCRIBE_TOKEN = "%%UNSUBSCRIBE_TOKEN%%"
PERSONAL_SLOTS = (USER_FULLNAME, USER_ID, UNSUBSCRIBE_TOKEN)
PERSONAL_SLOT_PATTERN = re.compile("(" + "|".join(re.escape(s) for s in PERSONAL_SLOTS) + ")")
CRLF = "\r\n"

# --- Sanitizing: an allow-list fit for email ---------------------------------------------------

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


# --- Header safety ------------------------------------------------------------------------------

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def refuse_header_injection(**fields: str | None) -> None:
    """Raise InvalidEmailError(field=...) when a value bound for a header has CR, LF or another
    control character: what staff type (subject, from address, names) is refused, not mended."""
    for name, value in fields.items():
        if value and CONTROL_CHARACTERS.search(value):
            raise InvalidEmailError(
                f"The {name.replace('_', ' ')} must be a single line without control characters.",
                field=name,
            )


def one_line(value: str) -> str:
    """Data we do not control (learners' names, course titles) made header-safe."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", value).split())


# 42 bytes make 56 base64 characters; with "=?utf-8?b?" and "?=" a word is 68 characters, so
# "Subject: " and the first word stay within the 78 that RFC 5322 recommends.
ENCODED_WORD_BYTES = 42


def encoded_words(value: str) -> str:
    """RFC 2047 "B" encoded words, folded, never splitting a UTF-8 character. (The email
    package's Header does this too, but at ~60 us a header: too slow per recipient.)"""
    raw = value.encode("utf-8")
    words, start = [], 0
    while start < len(raw):
        end = min(start + ENCODED_WORD_BYTES, len(raw))
        while end < len(raw) and raw[end] & 0xC0 == 0x80:  # a continuation byte: step back
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(raw[start:end]).decode('ascii')}?=")
        start = end
    return f"{CRLF} ".join(words)


ATEXT_WORD = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]*\Z")  # RFC 5322 atext


def _stays_plain(word: str, *, phrase: bool) -> bool:
    if "=?" in word or not word.isascii():
        return False
    return bool(ATEXT_WORD.match(word)) if phrase else True


def _segments(value: str, *, phrase: bool) -> list[tuple[bool, str]]:
    """Words grouped into runs: (encode this run?, its text). Spaces between runs stay plain,
    because whitespace between two encoded words is dropped by decoders."""
    segments: list[tuple[bool, str]] = []
    for word in value.split(" "):
        encode = not _stays_plain(word, phrase=phrase)
        if encode and segments and segments[-1][0]:
            segments[-1] = (True, f"{segments[-1][1]} {word}")
        else:
            segments.append((encode, word))
    return segments


def _fold(pieces: list[str], start: int) -> str:
    """Join with spaces, breaking the line (CRLF + space) where a piece would pass 78 columns."""
    folded, width = "", start
    for piece in pieces:
        head, _, _ = piece.partition(CRLF)
        if folded:
            fits = width + 1 + len(head) <= 78
            folded, width = folded + (" " if fits else CRLF + " "), (width + 1 if fits else 1)
        folded += piece
        width = width + len(piece) if CRLF not in piece else len(piece.rsplit(CRLF, 1)[1])
    return folded


def encode_header_value(value: str, *, phrase: bool = False, start: int = 10) -> str:
    """A header value as it goes on the wire: ASCII as it is, non-ASCII runs of words RFC 2047
    encoded, folded. ``phrase``: a display name, where only atoms may stay plain."""
    if not phrase and value.isascii() and "=?" not in value and len(value) < 900:
        return value
    segments = _segments(value, phrase=phrase)
    pieces = [encoded_words(text) if encode else text for encode, text in segments]
    return _fold(pieces, start)


def idna_address(address: str) -> str:
    """The address with its domain in IDNA (ASCII); the local part is left as it is."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidEmailError(f"{address!r} is not an email address.", field="to")
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


PHRASE_SPECIALS = re.compile(r'[][\\()<>@,:;".]')


def quote_phrase(name: str) -> str:
    """An ASCII display name as RFC 5322 wants it: quoted when it has special characters."""
    return f'"{quote(name)}"' if PHRASE_SPECIALS.search(name) else name


def plain_address(display_name: str, address: str) -> str:
    """'"Name" <address>' unencoded, for APIs that encode it themselves (Django's EmailMessage)."""
    display_name = one_line(display_name)
    return f'"{quote(display_name)}" <{address}>' if display_name else address


def encode_address(display_name: str, address: str, *, start: int = 6) -> str:
    """A From/To value: the display name quoted or RFC 2047 encoded, then <address>, folded
    before the address when the line would pass 78 columns."""
    display_name = one_line(display_name)
    if not display_name:
        return f"<{address}>"
    if display_name.isascii():
        phrase = quote_phrase(display_name)
    else:
        phrase = encode_header_value(display_name, phrase=True, start=start)
    last_line = phrase.rsplit(CRLF, 1)[-1]
    width = len(last_line) + (start if CRLF not in phrase else 0)
    separator = " " if width + len(address) + 3 <= 78 else CRLF + " "
    return f"{phrase}{separator}<{address}>"


# --- Once per email ------------------------------------------------------------------------------


class EmailFields(Protocol):
    """What rendering reads of an email; a CourseEmail row has all of it."""

    pk: int | None
    course_id: str
    subject: str
    html_message: str
    text_message: str
    template_name: str
    from_addr: str


@dataclass(frozen=True)
class EmailTemplate:
    html: str
    plain: str


def quoted_printable(text: str) -> bytes:
    """``text`` quoted-printable, CRLF line ends, ending in a line break (a soft one, "=", when
    the text does not end in one) so that encoded pieces can be joined: a message body is
    pre-encoded literals and per-recipient encoded values, one after the other."""
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    encoded = encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # "=\n" soft breaks too
    return encoded if not encoded or encoded.endswith(b"\r\n") else encoded + b"=\r\n"


def dot_stuffed(data: bytes) -> bytes:
    """Lines that start with "." get another, as SMTP's DATA needs (RFC 5321 4.5.2).
    ``bytes.replace`` does what smtplib's ``(?m)^[.]`` substitution does (a line starts after
    "\n") in a tenth of the time, and quoted-printable often puts a dot there."""
    stuffed = data.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


@dataclass(frozen=True)
class SplitText:
    """A text cut around personal slots: (literal, slot, literal, slot, ..., literal)."""

    parts: tuple[str, ...]
    # The same with each literal quoted-printable encoded once (slots left as b"").
    encoded: tuple[bytes, ...] = ()
    # ``encoded`` dot-stuffed for SMTP, once. Every encoded piece ends in a line break, so
    # each starts a line, and stuffing the pieces one by one stuffs their concatenation.
    stuffed: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, text: str) -> "SplitText":
        parts = tuple(PERSONAL_SLOT_PATTERN.split(text))
        encoded = tuple(b"" if i % 2 else quoted_printable(p) for i, p in enumerate(parts))
        return cls(parts, encoded, tuple(map(dot_stuffed, encoded)))

    @property
    def is_personal(self) -> bool:
        return len(self.parts) > 1

    def fill(self, values: dict[str, str]) -> str:
        parts = list(self.parts)
        for index in range(1, len(parts), 2):
            parts[index] = values[parts[index]]
        return "".join(parts)

    def fill_encoded(self, values: dict[str, str], *, stuffed: bool = False) -> bytes:
        """The quoted-printable body with the values encoded into the slots (only the values
        this text has a slot for, each once); dot-stuffed for SMTP when ``stuffed``."""
        parts, encoded = list(self.stuffed if stuffed else self.encoded), {}
        for index in range(1, len(parts), 2):
            slot = self.parts[index]
            if slot not in encoded:
                value = quoted_printable(values[slot])
                encoded[slot] = dot_stuffed(value) if stuffed else value
            parts[index] = encoded[slot]
        return b"".join(parts)


@dataclass(frozen=True)
class DkimKey:
    domain: bytes
    selector: bytes
    private_key: bytes


@dataclass(frozen=True)
class PreparedMessage:
    """An email made ready for any number of recipients."""

    email_id: int | None
    course_id: str
    from_addr: str
    from_name: str
    from_header: str
    subject: SplitText
    text: SplitText
    html: SplitText
    one_click_url: str
    unsubscribe_mailto: str
    message_id_domain: str
    # "Subject: ...\r\n" when the subject is the same for everyone, else b"".
    fixed_subject_header: bytes
    fixed_headers: bytes
    text_part_head: bytes
    html_part_head: bytes
    closing_boundary: bytes
    dkim: DkimKey | None = None


def course_end_text(course: CourseInfo) -> str:
    end = course.end
    return f"{end:%B} {end.day}, {end.year}" if end else ""


def fill_course_keywords(text: str, course: CourseInfo, *, escape: bool) -> str:
    values = {COURSE_DISPLAY_NAME: course.display_name, COURSE_END_DATE: course_end_text(course)}
    for keyword, value in values.items():
        text = text.replace(keyword, html.escape(value) if escape else value)
    return text


def wrap(template: str, body: str) -> str:
    before, _, after = template.partition(MESSAGE_BODY_SLOT)
    return before + body + after


def insert_before_body_end(document: str, footer: str) -> str:
    position = document.lower().rfind("</body>")
    if position < 0:
        return document + footer
    return document[:position] + footer + document[position:]


def inline_css(document: str, base_url: str) -> str:
    return premailer.Premailer(
        document,
        base_url=base_url,
        disable_validation=True,
        allow_network=False,
        cssutils_logging_level=logging.CRITICAL,
    ).transform()


def text_from_html(markup: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # no hard wrapping: quoted-printable handles long lines
    converter.ignore_images = True
    return converter.handle(markup).strip() + "\n"


def footer_context(course: CourseInfo, email_settings_url: str, unsubscribe_url: str) -> dict:
    postal = course.postal_address or app_settings.get("POSTAL_ADDRESS")
    return {
        "course_name": course.display_name,
        "email_settings_url": email_settings_url,
        "unsubscribe_url": unsubscribe_url,
        "postal_address": postal,
    }


def site_url(path: str) -> str:
    return app_settings.get("SITE_URL").rstrip("/") + path


def _url_with_token_slot(route: str) -> str:
    try:
        return site_url(reverse(f"bulk_email:{route}", args=["TOKEN"])).replace(
            "TOKEN", UNSUBSCRIBE_TOKEN
        )
    except NoReverseMatch as error:
        raise BulkEmailConfigurationError(
            "bulk_email.urls is not included in the site's URLconf (namespace 'bulk_email'): "
            "unsubscribe links cannot be made."
        ) from error


def render_html_part(email: EmailFields, course, template, context) -> str:
    body = sanitize_html(email.html_message)
    document = wrap(template.html, body)
    footer = render_to_string("bulk_email/email_footer.html", context)
    document = inline_css(insert_before_body_end(document, footer), site_url("/"))
    return fill_course_keywords(document, course, escape=True)


def render_text_part(email: EmailFields, course, template, context) -> str:
    body = email.text_message.strip() + "\n" if email.text_message.strip() else None
    body = body or text_from_html(sanitize_html(email.html_message))
    footer = render_to_string("bulk_email/email_footer.txt", context)
    text = wrap(template.plain, body).rstrip("\n") + "\n\n" + footer.strip() + "\n"
    return fill_course_keywords(text, course, escape=False)


def from_address(email: EmailFields) -> str:
    return email.from_addr or app_settings.get("DEFAULT_FROM_EMAIL")


def unsubscribe_mailto(from_addr: str) -> str:
    configured = app_settings.get("UNSUBSCRIBE_MAILTO")
    return from_addr if configured is None else configured


def dkim_key() -> DkimKey | None:
    config = app_settings.get("DKIM")
    if not config:
        return None
    try:
        values = [config[k] for k in ("domain", "selector", "private_key")]
    except (KeyError, TypeError) as error:
        raise BulkEmailConfigurationError(
            'BULK_EMAIL["DKIM"] needs "domain", "selector" and "private_key" (PEM).'
        ) from error
    return DkimKey(*(v.encode() if isinstance(v, str) else v for v in values))


def mime_part_head(subtype: str) -> str:
    return (
        f"Content-Type: text/{subtype}; charset=utf-8{CRLF}"
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
    )


def list_id(course: CourseInfo, domain: str) -> str:
    label = re.sub(r"[^A-Za-z0-9-]+", ".", course.course_id.partition(":")[2] or course.course_id)
    label = label.strip(".") or "course"
    return encode_address(course.display_name, f"{label}.{domain}", start=9)


def fixed_header_block(course: CourseInfo, from_header: str, domain: str, boundary: str) -> str:
    headers = {
        "From": from_header,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": list_id(course, domain),
        "Precedence": "bulk",
        "Auto-Submitted": "auto-generated",
        "MIME-Version": "1.0",
        "Content-Type": f'multipart/alternative;{CRLF} boundary="{boundary}"',
    }
    return "".join(f"{name}: {value}{CRLF}" for name, value in headers.items())


def subject_with_course_keywords(email: EmailFields, course: CourseInfo) -> SplitText:
    subject = fill_course_keywords(email.subject, course, escape=False)
    return SplitText.of(one_line(subject))


def prepare_message(
    email: EmailFields, course: CourseInfo, *, template: EmailTemplate, email_settings_url: str
) -> PreparedMessage:
    """Everything about an email that is the same for all its recipients (the costly part)."""
    sender = from_address(email)
    refuse_header_injection(subject=email.subject, from_addr=sender)
    sender = idna_address(sender)
    domain = sender.rpartition("@")[2]
    context = footer_context(course, email_settings_url, _url_with_token_slot("unsubscribe"))
    from_name = one_line(f"{course.display_name} Course Staff")
    from_header = encode_address(from_name, sender)
    subject = subject_with_course_keywords(email, course)
    boundary = f"=_bulk_email_{secrets.token_hex(12)}"  # "=_" never occurs in quoted-printable
    fixed_subject = "" if subject.is_personal else encode_header_value(subject.parts[0])
    return PreparedMessage(
        email_id=email.pk,
        course_id=course.course_id,
        from_addr=sender,
        from_name=from_name,
        from_header=from_header,
        subject=subject,
        text=SplitText.of(_crlf(render_text_part(email, course, template, context))),
        html=SplitText.of(_crlf(render_html_part(email, course, template, context))),
        one_click_url=_url_with_token_slot("one_click"),
        unsubscribe_mailto=unsubscribe_mailto(sender),
        message_id_domain=domain,
        fixed_subject_header=f"Subject: {fixed_subject}{CRLF}".encode() if fixed_subject else b"",
        fixed_headers=fixed_header_block(course, from_header, domain, boundary).encode(),
        text_part_head=f"{CRLF}--{boundary}{CRLF}{mime_part_head('plain')}".encode(),
        html_part_head=f"{CRLF}--{boundary}{CRLF}{mime_part_head('html')}".encode(),
        closing_boundary=f"{CRLF}--{boundary}--{CRLF}".encode(),
        dkim=dkim_key(),
    )


# --- The per-process cache and the one impure entry point --------------------------------------

_CACHE_SIZE = 16
_prepared_cache: "OrderedDict[tuple, PreparedMessage]" = OrderedDict()


def load_template(name: str) -> EmailTemplate:
    """The CourseEmailTemplate called ``name``, or the one shipped in templates/bulk_email/."""
    from .models import CourseEmailTemplate

    name = name or app_settings.get("DEFAULT_TEMPLATE_NAME")
    row = CourseEmailTemplate.objects.filter(name=name).first() if name else None
    if row is not None:
        return EmailTemplate(html=row.html_template, plain=row.plain_template)
    if name:
        logger.warning("No CourseEmailTemplate named %r: using the default template.", name)
    return EmailTemplate(
        html=get_template("bulk_email/email_template.html").template.source,
        plain=get_template("bulk_email/email_template.txt").template.source,
    )


def _settings_fingerprint() -> tuple:
    names = ("SITE_URL", "DEFAULT_FROM_EMAIL", "UNSUBSCRIBE_MAILTO", "POSTAL_ADDRESS", "DKIM")
    return (settings.SECRET_KEY, *(repr(app_settings.get(n)) for n in names))


def get_prepared_message(email: Any) -> PreparedMessage:
    """``prepare_message`` for a saved CourseEmail, cached per process by (id, modified)."""
    key = (email.pk, getattr(email, "modified", None), _settings_fingerprint())
    if email.pk is not None and key in _prepared_cache:
        _prepared_cache.move_to_end(key)
        return _prepared_cache[key]
    prepared = prepare_from_lms(email)
    if email.pk is not None:
        _prepared_cache[key] = prepared
        while len(_prepared_cache) > _CACHE_SIZE:
            _prepared_cache.popitem(last=False)
    return prepared


def prepare_from_lms(email: EmailFields) -> PreparedMessage:
    lms = get_lms()
    course = lms.get_course(email.course_id)
    if course is None:
        raise UnknownCourseError(f"No course {email.course_id!r} in the LMS.")
    settings_url = site_url(lms.email_settings_url(email.course_id))
    template = load_template(email.template_name)
    return prepare_message(email, course, template=template, email_settings_url=settings_url)


def clear_prepared_cache() -> None:
    _prepared_cache.clear()


# --- Per recipient -------------------------------------------------------------------------------


_date_now = (0, "")  # (a second, its Date header): swapped whole, so threads never see halves


def date_header_now() -> str:
    """The Date header's value for now, formatted once a second rather than once a message
    (``formatdate`` cost as much as a tenth of the rest of a message's rendering)."""
    global _date_now
    second = int(time.time())
    if _date_now[0] != second:
        _date_now = (second, formatdate(second, usegmt=True))
    return _date_now[1]


@dataclass
class RenderedMessage:
    """One recipient's message: the personal values, its parts on demand, the wire bytes."""

    prepared: PreparedMessage
    recipient: Recipient
    to_addr: str
    message_id: str
    subject: str
    list_unsubscribe: str
    values: dict[str, str]  # slot -> value, raw (text part, subject)
    html_values: dict[str, str]  # slot -> value, HTML-escaped
    date: str = field(default_factory=date_header_now)

    @property
    def text(self) -> str:
        return self.prepared.text.fill(self.values)

    @property
    def html(self) -> str:
        return self.prepared.html.fill(self.html_values)

    @property
    def needs_smtputf8(self) -> bool:
        """A non-ASCII local part can only travel with SMTPUTF8 (RFC 6531)."""
        return not self.to_addr.isascii() or not self.prepared.from_addr.isascii()

    def personal_headers(self) -> bytes:
        prepared = self.prepared
        subject_header = prepared.fixed_subject_header or (
            f"Subject: {encode_header_value(self.subject)}{CRLF}".encode()
        )
        personal = (
            f"To: {encode_address(self.recipient.full_name, self.to_addr)}{CRLF}"
            f"Date: {self.date}{CRLF}"
            f"Message-ID: {self.message_id}{CRLF}"
            f"List-Unsubscribe: {self.list_unsubscribe}{CRLF}"
        )
        return subject_header + personal.encode("utf-8")

    def as_bytes(self) -> bytes:
        """The RFC 5322 message, CRLF line ends, DKIM-signed when configured. The bodies are
        the pre-encoded literals with only this recipient's values encoded in between."""
        message = self._joined(stuffed=False)
        prepared = self.prepared
        return dkim_sign(message, prepared.dkim) + message if prepared.dkim else message

    def as_stuffed_bytes(self) -> bytes:
        """``dot_stuffed(as_bytes())``, what SMTP's DATA carries, without scanning the whole
        message per recipient: the bodies' literals were stuffed once per email, and header
        lines never start with a dot (continuations start with a space)."""
        if self.prepared.dkim:  # the signature is over the unstuffed message
            return dot_stuffed(self.as_bytes())
        return self._joined(stuffed=True)

    def _joined(self, *, stuffed: bool) -> bytes:
        prepared = self.prepared
        return b"".join(
            (
                prepared.fixed_headers,
                self.personal_headers(),
                prepared.text_part_head,
                prepared.text.fill_encoded(self.values, stuffed=stuffed),
                prepared.html_part_head,
                prepared.html.fill_encoded(self.html_values, stuffed=stuffed),
                prepared.closing_boundary,
            )
        )

    def as_email_message(self, connection=None) -> EmailMultiAlternatives:
        """The same message for Django's EmailBackend contract (ESP backends, locmem...)."""
        headers = {
            "Message-ID": self.message_id,
            "Date": self.date,
            "List-Unsubscribe": self.list_unsubscribe.replace(CRLF, ""),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Precedence": "bulk",
            "Auto-Submitted": "auto-generated",
        }
        message = EmailMultiAlternatives(
            subject=self.subject,
            body=self.text,
            from_email=plain_address(self.prepared.from_name, self.prepared.from_addr),
            to=[plain_address(self.recipient.full_name, self.to_addr)],
            headers=headers,
            connection=connection,
        )
        message.attach_alternative(self.html, "text/html")
        return message


DKIM_SIGNED_HEADERS = [
    b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
    b"list-unsubscribe-post", b"list-id", b"mime-version", b"content-type",
]  # fmt: skip


def dkim_sign(message: bytes, key: DkimKey) -> bytes:
    """The DKIM-Signature header line(s) for ``message``."""
    import dkim  # optional dependency (the "dkim" extra)

    return dkim.sign(
        message,
        key.selector,
        key.domain,
        key.private_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=DKIM_SIGNED_HEADERS,
        linesep=b"\r\n",
    )


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", CRLF)


def render_message(prepared: PreparedMessage, recipient: Recipient) -> RenderedMessage:
    """One recipient's message from the prepared one: only the personal parts are filled in."""
    token = make_token(recipient.user_id, prepared.course_id)
    name = one_line(recipient.full_name)
    raw = {USER_FULLNAME: name, USER_ID: str(recipient.user_id), UNSUBSCRIBE_TOKEN: token}
    escaped = {**raw, USER_FULLNAME: html.escape(name)}
    to_addr = idna_address(recipient.email)
    refuse_header_injection(to=to_addr)
    return RenderedMessage(
        prepared=prepared,
        recipient=recipient,
        to_addr=to_addr,
        message_id=make_message_id(prepared, recipient),
        subject=prepared.subject.fill(raw),
        list_unsubscribe=list_unsubscribe(prepared, token),
        values=raw,
        html_values=escaped,
    )


def make_message_id(prepared: PreparedMessage, recipient: Recipient) -> str:
    """The same (email, recipient) always gets the same Message-ID, so the one copy a worker
    crash may send twice is one message to clients that de-duplicate by it. Unsaved emails
    (previews) get a random one."""
    if prepared.email_id is None:
        unique = secrets.token_hex(8)
    else:
        pair = f"{prepared.email_id}:{recipient.user_id}"
        digest = salted_hmac_digest(
            "bulk_email.message_id", pair, secret=settings.SECRET_KEY, algorithm="sha1"
        )
        unique = digest.hex()[:16]
    return f"<{unique}.{prepared.email_id or 0}.{recipient.user_id}@{prepared.message_id_domain}>"


def list_unsubscribe(prepared: PreparedMessage, token: str) -> str:
    """RFC 8058 one-click https URL first, then a mailto (RFC 2369), folded between them."""
    one_click = f"<{prepared.one_click_url.replace(UNSUBSCRIBE_TOKEN, token)}>"
    if not prepared.unsubscribe_mailto:
        return one_click
    mailto = f"<mailto:{prepared.unsubscribe_mailto}?subject=unsubscribe%20{token}>"
    return f"{one_click},{CRLF} {mailto}"
