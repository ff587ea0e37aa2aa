"""Suppressed addresses as people act on them: an operator removes some with a reason (the
admin), a learner whose address bounced sees it and clears it after a test message (Email
Settings). Every removal is kept as a Django admin log entry "Removed from the suppression
list: <reason>" by whoever removed it, so the list's history survives its rows."""

import logging
from collections.abc import Iterable

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from ..exceptions import BadRequestError
from ..models import Suppression

logger = logging.getLogger(__name__)

REMOVAL_REASON_MAX_LENGTH = 500
REMOVED_MESSAGE = "Removed from the suppression list: {reason}"


def clean_removal_reason(reason: str) -> str:
    """The reason an operator gives, trimmed; refused when empty or longer than the log keeps."""
    reason = " ".join((reason or "").split())  # one line: it is shown in lists
    if not reason:
        raise BadRequestError("Say why these addresses may be mailed again.", field="reason")
    if len(reason) > REMOVAL_REASON_MAX_LENGTH:
        raise BadRequestError(
            f"Keep the reason under {REMOVAL_REASON_MAX_LENGTH} characters.", field="reason"
        )
    return reason


def remove_suppressions(
    *, suppressions: Iterable[Suppression], removed_by: AbstractBaseUser, reason: str
) -> int:
    """Delete ``suppressions`` and log each removal with ``reason`` and who did it; the
    number removed. BadRequestError (nothing removed) for an empty or overlong reason."""
    reason = clean_removal_reason(reason)
    rows = list(suppressions)
    if not rows:
        return 0
    with transaction.atomic():
        log_removals(rows, removed_by=removed_by, reason=reason)
        Suppression.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)


def log_removals(rows: list[Suppression], *, removed_by: AbstractBaseUser, reason: str) -> None:
    message = REMOVED_MESSAGE.format(reason=reason)
    for row in rows:
        logger.info("%s (%s) by user %s", message, row.address, removed_by.pk)
    if not apps.is_installed("django.contrib.admin"):
        return  # the log lines above are then the only record
    from django.contrib.admin.models import DELETION, LogEntry

    LogEntry.objects.log_actions(
        user_id=removed_by.pk,
        queryset=rows,
        action_flag=DELETION,
        change_message=message,
        single_object=len(rows) == 1,
    )


def removal_log(*, address: str) -> list[str]:
    """What the admin log says of an address's removals, newest first (for tests and the
    admin's history)."""
    if not apps.is_installed("django.contrib.admin"):
        return []
    from django.contrib.admin.models import LogEntry

    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Suppression),
        object_repr__startswith=Suppression.normalize(address) + " (",
    ).order_by("-action_time", "-pk")
    return [entry.change_message for entry in entries]
