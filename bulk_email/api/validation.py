"""What staff typed, checked before anything is stored: every wrong field reported at once."""

import datetime
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import app_settings, recipients, rendering
from ..exceptions import BadRequestError, InvalidEmailError
from ..models.courses import IDEMPOTENCY_KEY_MAX_LENGTH


def clean_subject(subject: str) -> str:
    subject = (subject or "").strip()
    limit = app_settings.get("SUBJECT_MAX_LENGTH")
    if not subject:
        raise InvalidEmailError(_("Enter a subject."), field="subject")
    if len(subject) > limit:
        raise InvalidEmailError(
            _("The subject is %(length)d characters long; the limit is %(limit)d.")
            % {"length": len(subject), "limit": limit},
            field="subject",
        )
    rendering.refuse_header_injection(subject=subject)
    return subject


def clean_html(html: str) -> str:
    """The sanitized message: what is stored is what is sent and what View shows."""
    limit = app_settings.get("MAX_HTML_LENGTH")
    if len(html or "") > limit:
        raise InvalidEmailError(
            _("The message is too large (%(length)s characters; the limit is %(limit)s).")
            % {
                "length": number_format(len(html), force_grouping=True),
                "limit": number_format(limit, force_grouping=True),
            },
            field="message",
        )
    clean = rendering.sanitize_html(html or "")  # refuses nesting beyond MAX_HTML_NESTING
    if not has_visible_content(clean):
        raise InvalidEmailError(_("Write a message: it is empty."), field="message")
    return clean


TAG = re.compile(r"<[^>]*>")


def has_visible_content(clean_html: str) -> bool:
    """Text or an image in sanitized HTML. A linear look, not the text conversion: that runs
    once, when the message is prepared."""
    return "<img" in clean_html or bool(html.unescape(TAG.sub("", clean_html)).strip())


def clean_send_at(send_at: datetime.datetime | None) -> datetime.datetime | None:
    if send_at is None:
        return None
    if timezone.is_naive(send_at):
        raise InvalidEmailError(_("Give the time with its time zone."), field="send_at")
    if send_at <= timezone.now():
        raise InvalidEmailError(
            _("The scheduled time has passed; pick a later one."), field="send_at"
        )
    refuse_beyond_schedule_horizon(send_at)
    return send_at


def refuse_beyond_schedule_horizon(send_at: datetime.datetime) -> None:
    """A send is scheduled at most MAX_SCHEDULE_DAYS ahead: a time near the end of the
    calendar (9999-12-31T23:59:59-14:00) cannot even be stored in UTC."""
    days = app_settings.get("MAX_SCHEDULE_DAYS")
    if send_at - timezone.now() > datetime.timedelta(days=days):
        raise InvalidEmailError(
            ngettext(
                "Schedule a send at most %(days)d day ahead.",
                "Schedule a send at most %(days)d days ahead.",
                days,
            )
            % {"days": days},
            field="send_at",
        )


@dataclass(frozen=True)
class CleanEmail:
    subject: str
    html: str
    target_keys: list[str]
    send_at: datetime.datetime | None


def clean_email(
    *, course_id: str, subject: str, html: str, targets: list[str], send_at
) -> CleanEmail:
    cleaned = clean_fields(
        subject=lambda: clean_subject(subject),
        message=lambda: clean_html(html),
        targets=lambda: recipients.validate_target_keys(course_id=course_id, keys=targets),
        send_at=lambda: clean_send_at(send_at),
    )
    return CleanEmail(
        subject=cleaned["subject"],
        html=cleaned["message"],
        target_keys=cleaned["targets"],
        send_at=cleaned["send_at"],
    )


def clean_fields(**cleaners: Callable[[], Any]) -> dict[str, Any]:
    """Run every cleaner, then raise the first error carrying all of them: a form can mark
    each wrong field at once instead of one per attempt."""
    cleaned, errors = {}, []
    for name, cleaner in cleaners.items():
        try:
            cleaned[name] = cleaner()
        except InvalidEmailError as error:
            errors.append(error)
    if errors:
        first = errors[0]
        all_errors: dict = {}
        for error in errors:
            all_errors.setdefault(error.field, str(error))
        raise InvalidEmailError(str(first), field=first.field, errors=all_errors)
    return cleaned


IDEMPOTENCY_KEY = re.compile(rf"[A-Za-z0-9_-]{{8,{IDEMPOTENCY_KEY_MAX_LENGTH}}}")


def clean_idempotency_key(key: str | None) -> str | None:
    """A client's key for one send (a UUID, say): 8 to 64 letters, digits, "-" or "_", so
    that it is stored and compared as given; None or "" when the client sent none."""
    if not key:
        return None
    if not isinstance(key, str) or not IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequestError(
            _('The idempotency key must be 8 to %(max)d letters, digits, "-" or "_" (a UUID fits).')
            % {"max": IDEMPOTENCY_KEY_MAX_LENGTH},
            field="idempotency_key",
        )
    return key
