"""Once per email: everything about a message that is the same for all its recipients.

``prepare_message`` sanitizes the composed HTML, wraps it in the course template, adds the
footer, inlines the CSS (premailer), makes the text part (html2text), fills in the course
keywords, encodes the fixed headers and the MIME part headers, and keeps the HTML, text and
subject cut around the personal slots, for ``personal.render_message`` to fill in per
recipient. Pure; ``get_prepared_message`` is the one impure entry (the course from the LMS,
the template from the database), cached per process.

The footer speaks the learner's language: a message is prepared once per (email, language)
present among its recipients, under ``translation.override(language)``; ``preparations``
counts them (docs/languages.md).
"""

import html
import logging
import re
import secrets
from collections import Counter, OrderedDict
from dataclasses import dataclass
from email.utils import parseaddr
from functools import cached_property
from typing import Any, Protocol

import premailer
from django.conf import settings
from django.template.loader import get_template, render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation

from .. import app_settings
from ..exceptions import BulkEmailConfigurationError, EmailTemplateError, UnknownCourseError
from ..lms import CourseInfo, get_lms
from ..models import (
    BODY_SLOT,
    OPENEDX_EMAIL_PLACEHOLDERS,
    CourseEmailTemplate,
    body_slot_problem,
    openedx_placeholder_problem,
)
from .dkim import DkimSigner, dkim_key
from .headers import (
    CRLF,
    encode_address,
    encode_header_value,
    idna_address,
    one_line,
    refuse_header_injection,
)
from .mime import (
    UNSUBSCRIBE_TOKEN,
    USER_DATABASE_ID,
    USER_EMAIL,
    USER_FULLNAME,
    USER_ID,
    SplitText,
    fixed_header_block,
    mime_part_head,
    with_crlf,
)
from .sanitize import sanitize_html, text_from_html

logger = logging.getLogger(__name__)

COURSE_DISPLAY_NAME = "%%COURSE_DISPLAY_NAME%%"
COURSE_END_DATE = "%%COURSE_END_DATE%%"
# What staff may write (the composer's hint): any other %%WORD%% is sent as written.
KEYWORDS = (USER_FULLNAME, USER_ID, COURSE_DISPLAY_NAME, COURSE_END_DATE)


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
    # An Open edX template: Python format fields ({course_title}, {name}...) to fill.
    openedx_placeholders: bool = False


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
    feedback_domain: str | None  # FEEDBACK_DOMAIN in IDNA; None: no VERP, no mailto
    message_id_domain: str
    # "Subject: ...\r\n" when the subject is the same for everyone, else b"".
    fixed_subject_header: bytes
    fixed_headers: bytes
    text_part_head: bytes
    html_part_head: bytes
    closing_boundary: bytes
    dkim: DkimSigner | None = None

    @cached_property
    def uses_anonymous_id(self) -> bool:
        """Whether %%USER_ID%% appears: only then is the LMS asked for anonymous ids. Worked
        out once per email (the personal step asks it per recipient)."""
        return any(USER_ID in text.parts[1::2] for text in (self.subject, self.text, self.html))


# --- The body: template, footer, CSS, keywords -------------------------------------------------


def course_end_text(course: CourseInfo) -> str:
    end = course.end
    return f"{end:%B} {end.day}, {end.year}" if end else ""


def fill_course_keywords(text: str, course: CourseInfo, *, escape: bool) -> str:
    values = {COURSE_DISPLAY_NAME: course.display_name, COURSE_END_DATE: course_end_text(course)}
    for keyword, value in values.items():
        text = text.replace(keyword, html.escape(value) if escape else value)
    return text


# Where a filled Open edX template's body goes: no value can hold it (NUL is taken out of
# every value), so a course titled "{{message_body}}" stays a title.
FILLED_BODY_SLOT = "\x00message_body\x00"


def wrap(template: str, body: str) -> str:
    if FILLED_BODY_SLOT in template:
        before, _, after = template.partition(FILLED_BODY_SLOT)
    else:
        before, after = BODY_SLOT.split(template, maxsplit=1)
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


def footer_context(course: CourseInfo, email_settings_url: str, unsubscribe_url: str) -> dict:
    postal = course.postal_address or app_settings.get("POSTAL_ADDRESS")
    language = translation.get_language() or "en"
    return {
        # The footer is in the language active while preparing, the body in the course's:
        # the footer says its own lang and dir (mail clients and screen readers follow it).
        "footer_language": language,
        "footer_direction": "rtl" if translation.get_language_bidi() else "ltr",
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
    document = with_language_and_title(document, course.language or "en", email.subject)
    return fill_course_keywords(document, course, escape=True)


HTML_START_TAG = re.compile(r"<html\b[^>]*>", re.IGNORECASE)
HEAD_START_TAG = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
LANG_ATTRIBUTE = re.compile(r"\slang\s*=", re.IGNORECASE)
TITLE_ELEMENT = re.compile(r"<title\b", re.IGNORECASE)


def with_language_and_title(document: str, language: str, subject: str) -> str:
    """The document with ``<html lang>`` and a ``<title>`` (the subject) where its template
    has none: a screen reader opening the message as a page announces its title and reads
    it in the right language's voice. The subject keeps its personal slots, filled (escaped)
    per recipient like the body's."""
    html_tag = HTML_START_TAG.search(document)
    if html_tag is None:  # premailer always writes one; a guard, not a path
        return document
    if not LANG_ATTRIBUTE.search(html_tag.group()):
        with_lang = html_tag.group()[:-1].rstrip("/ ") + f' lang="{html.escape(language)}">'
        document = document[: html_tag.start()] + with_lang + document[html_tag.end() :]
    if TITLE_ELEMENT.search(document):
        return document
    title = f"<title>{html.escape(one_line(subject))}</title>"
    head_tag = HEAD_START_TAG.search(document)
    if head_tag is None:
        html_end = HTML_START_TAG.search(document).end()
        return document[:html_end] + f"<head>{title}</head>" + document[html_end:]
    return document[: head_tag.end()] + title + document[head_tag.end() :]


def render_text_part(email: EmailFields, course, template, context) -> str:
    body = email.text_message.strip() + "\n" if email.text_message.strip() else None
    body = body or text_from_html(sanitize_html(email.html_message))
    footer = render_to_string("bulk_email/email_footer.txt", context)
    text = wrap(template.plain, body).rstrip("\n") + "\n\n" + footer.strip() + "\n"
    return fill_course_keywords(text, course, escape=False)


# --- Open edX templates: {course_title}, {name}... ------------------------------------------------


def openedx_values(course: CourseInfo, email_settings_url: str, lms_values: dict) -> dict:
    """Every placeholder's value, once per email: the per-email ones from the course and
    the LMS port (what it does not give is ""), the per-recipient ones as this email's
    personal slots, filled per recipient like %%USER_FULLNAME%%."""
    values = dict.fromkeys(OPENEDX_EMAIL_PLACEHOLDERS, "")
    values.update({k: str(v) for k, v in lms_values.items() if k in OPENEDX_EMAIL_PLACEHOLDERS})
    values.update(
        # One source for the course's language: the port's CourseInfo (an LMS's own
        # email_template_values()["course_language"] is not read).
        course_language=course.language,
        course_title=course.display_name,
        course_id=course.course_id,
        course_end_date=course_end_text(course),
        email_settings_url=email_settings_url,
        year=str(timezone.now().year),
        name=USER_FULLNAME,
        email=USER_EMAIL,
        user_id=USER_DATABASE_ID,
        unsubscribe_link=_url_with_token_slot("unsubscribe"),
    )
    return values


def filled_openedx_template(template: EmailTemplate, values: dict) -> EmailTemplate:
    """The template with its placeholders filled as Open edX fills them (str.format), the
    HTML part's values escaped; EmailTemplateError for one that cannot be filled (a row
    saved around the admin's validation)."""
    for part, source in (("HTML", template.html), ("plain text", template.plain)):
        if problem := openedx_placeholder_problem(source):
            raise EmailTemplateError(f"The {part} part of the Open edX template: {problem}")
    values = {name: value.replace("\x00", "") for name, value in values.items()}
    escaped = {name: html.escape(value, quote=True) for name, value in values.items()}
    return EmailTemplate(
        html=format_around_body(template.html, escaped),
        plain=format_around_body(template.plain, values),
    )


def format_around_body(template: str, values: dict) -> str:
    """Both sides of the body slot formatted apart and joined by a slot no value can hold:
    a course titled "{{message_body}}" can never take the body's place."""
    before, after = BODY_SLOT.split(template, maxsplit=1)
    return before.format_map(values) + FILLED_BODY_SLOT + after.format_map(values)


# --- The headers that are the same for every recipient ------------------------------------------


def from_address(email: EmailFields) -> str:
    return email.from_addr or app_settings.from_email()


def split_from(value: str) -> tuple[str, str]:
    """("MITx News", "news@mitx.example") from "MITx News <news@mitx.example>", as an
    operator writes a From address (Django's DEFAULT_FROM_EMAIL often has that form); a
    bare address has no name. Header injection is refused before this splits anything."""
    refuse_header_injection(from_addr=value)
    name, address = parseaddr(value)
    return name.strip(), address or value


def feedback_domain() -> str | None:
    """FEEDBACK_DOMAIN as it goes into addresses (IDNA), checked once per email."""
    domain = app_settings.get("FEEDBACK_DOMAIN")
    if not domain:
        return None
    refuse_header_injection(feedback_domain=domain)
    return idna_address(f"bounces@{domain.strip()}").rpartition("@")[2]


def list_id(course: CourseInfo, domain: str) -> str:
    label = re.sub(r"[^A-Za-z0-9-]+", ".", course.course_id.partition(":")[2] or course.course_id)
    label = label.strip(".") or "course"
    return encode_address(course.display_name, f"{label}.{domain}", start=9)


def subject_with_course_keywords(email: EmailFields, course: CourseInfo) -> SplitText:
    subject = fill_course_keywords(email.subject, course, escape=False)
    return SplitText.of(one_line(subject))


def prepare_message(
    email: EmailFields,
    course: CourseInfo,
    *,
    template: EmailTemplate,
    email_settings_url: str,
    lms_values: dict | None = None,
) -> PreparedMessage:
    """Everything about an email that is the same for all its recipients (the costly part).
    ``lms_values``: what the LMS port gives an Open edX template's placeholders."""
    if template.openedx_placeholders:
        values = openedx_values(course, email_settings_url, lms_values or {})
        template = filled_openedx_template(template, values)
    configured_name, sender = split_from(from_address(email))
    refuse_header_injection(subject=email.subject, from_addr=sender)
    sender = idna_address(sender)
    domain = sender.rpartition("@")[2]
    context = footer_context(course, email_settings_url, _url_with_token_slot("unsubscribe"))
    from_name = one_line(configured_name or f"{course.display_name} Course Staff")
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
        text=SplitText.of(with_crlf(render_text_part(email, course, template, context))),
        html=SplitText.of(with_crlf(render_html_part(email, course, template, context))),
        one_click_url=_url_with_token_slot("one_click"),
        feedback_domain=feedback_domain(),
        message_id_domain=domain,
        fixed_subject_header=f"Subject: {fixed_subject}{CRLF}".encode() if fixed_subject else b"",
        fixed_headers=fixed_header_block(from_header, list_id(course, domain), boundary).encode(),
        text_part_head=f"{CRLF}--{boundary}{CRLF}{mime_part_head('plain')}".encode(),
        html_part_head=f"{CRLF}--{boundary}{CRLF}{mime_part_head('html')}".encode(),
        closing_boundary=f"{CRLF}--{boundary}--{CRLF}".encode(),
        dkim=dkim_key(),
    )


# --- The per-process cache and the one impure entry point --------------------------------------

_CACHE_SIZE = 48  # a few emails, each in a few languages
_prepared_cache: "OrderedDict[tuple, PreparedMessage]" = OrderedDict()  # least recent first


def load_template(name: str) -> EmailTemplate:
    """The CourseEmailTemplate called ``name``, or the one shipped in templates/bulk_email/."""
    name = name or app_settings.get("DEFAULT_TEMPLATE_NAME")
    row = CourseEmailTemplate.objects.filter(name=name).first() if name else None
    if row is not None:
        template = EmailTemplate(
            html=row.html_template,
            plain=row.plain_template,
            openedx_placeholders=row.openedx_placeholders,
        )
        return checked_template(template, f"the CourseEmailTemplate {name!r}")
    if name:
        logger.warning("No CourseEmailTemplate named %r: using the default template.", name)
    return file_template()


def file_template() -> EmailTemplate:
    """The template files, the project's override if it has one (checks.py checks them)."""
    html = get_template(FILE_TEMPLATES["html"]).template.source
    plain = get_template(FILE_TEMPLATES["plain"]).template.source
    return checked_template(EmailTemplate(html=html, plain=plain), "the email template files")


FILE_TEMPLATES = {
    "html": "bulk_email/email_template.html",
    "plain": "bulk_email/email_template.txt",
}


def checked_template(template: EmailTemplate, where: str) -> EmailTemplate:
    """EmailTemplateError unless both parts have exactly one body slot: a row saved around
    the admin's validation, or a file override, would otherwise drop the message."""
    for part, source in (("HTML", template.html), ("plain text", template.plain)):
        if problem := body_slot_problem(source):
            raise EmailTemplateError(f"The {part} part of {where}: {problem}")
    return template


# Messages prepared in this process since it started, by language: what a test or a bench
# reads to see that a send costs one preparation per language among its recipients.
preparations: Counter = Counter()


def get_prepared_message(email: Any, language: str | None = None) -> PreparedMessage:
    """``prepare_message`` for a saved CourseEmail in ``language`` (the footer's; default:
    the site's LANGUAGE_CODE), cached per process by (id, modified, language) and the whole
    settings snapshot (every BULK_EMAIL setting, SECRET_KEY): a changed setting never gets a
    message prepared under the old one, whichever setting it is."""
    language = language or settings.LANGUAGE_CODE
    key = (email.pk, getattr(email, "modified", None), language, app_settings.snapshot())
    if email.pk is not None and key in _prepared_cache:
        _prepared_cache.move_to_end(key)
        return _prepared_cache[key]
    with translation.override(language):
        prepared = prepare_from_lms(email)
    preparations[language] += 1
    logger.info("Prepared email %s in language %s.", email.pk, language)
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
    lms_values = (
        lms.email_template_values(course.course_id) if template.openedx_placeholders else {}
    )
    return prepare_message(
        email, course, template=template, email_settings_url=settings_url, lms_values=lms_values
    )


def clear_prepared_cache() -> None:
    _prepared_cache.clear()
