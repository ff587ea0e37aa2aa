"""Which language a learner's message is prepared in (its footer, the words bulk_email adds).

The rule, for each recipient: their preferred language (the LMS port's) when the site has it
among ``settings.LANGUAGES``, else the course's language when the site has it, else the
site's ``LANGUAGE_CODE``. A variant falls back to its base ("fr-ca" -> "fr").
"""

from django.conf import settings
from django.utils import translation


def supported_language(code: str | None) -> str | None:
    """The site's language for ``code`` ("fr-CA" -> "fr"), or None when it has none: an
    empty, unknown or malformed code (the LMS's data is not trusted to be a tag)."""
    if not code or not isinstance(code, str):
        return None
    try:
        return translation.get_supported_language_variant(code.strip().lower())
    except LookupError:
        return None


def message_language(preferred: str | None, course_language: str | None) -> str:
    return (
        supported_language(preferred)
        or supported_language(course_language)
        or settings.LANGUAGE_CODE
    )
