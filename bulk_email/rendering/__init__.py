from ..lms import CourseInfo, Recipient
from .headers import CONTROL_CHARACTERS, refuse_header_injection
from .languages import message_language, supported_language
from .mime import dot_stuffed
from .personal import RenderedMessage, render_message
from .prepare import (
    KEYWORDS,
    EmailFields,
    EmailTemplate,
    PreparedMessage,
    clear_prepared_cache,
    file_template,
    get_prepared_message,
    load_template,
    preparations,
    prepare_from_lms,
    prepare_message,
    split_from,
)
from .sanitize import sanitize_html, text_from_html

__all__ = [
    "CONTROL_CHARACTERS",
    "KEYWORDS",
    "CourseInfo",
    "EmailFields",
    "EmailTemplate",
    "PreparedMessage",
    "Recipient",
    "RenderedMessage",
    "clear_prepared_cache",
    "dot_stuffed",
    "file_template",
    "get_prepared_message",
    "load_template",
    "message_language",
    "preparations",
    "prepare_from_lms",
    "prepare_message",
    "refuse_header_injection",
    "render_message",
    "sanitize_html",
    "split_from",
    "supported_language",
    "text_from_html",
]
