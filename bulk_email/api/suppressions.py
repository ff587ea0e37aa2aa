"""Suppressed addresses as people act on them: an operator removes some with a reason (the
admin), a learner whose address bounced sees it and clears it after a test message (Email
Settings). Every removal is kept as a Django admin log entry "Removed from the suppression
list: <reason>" by whoever removed it, so the list's history survives its rows.

A learner clears a bounce suppression by proving the address receives mail again: "Send me a
test message" mails it a link signed for (user, suppression, its count of bounces); following
the link and confirming deletes the suppression. A bounce after the test (the test itself
bouncing included) raises the count, and the link stops working. A complaint suppression is
not cleared that way: the person said they did not want the mail, so only turning a course's
email back on (Email Settings) clears it."""

import datetime
import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import app_settings
from ..exceptions import (
    AddressTestNotSentError,
    BadRequestError,
    InvalidTokenError,
    TooManyRequestsError,
)
from ..models import Suppression

logger = logging.getLogger(__name__)

REMOVAL_REASON_MAX_LENGTH = 500
REMOVED_MESSAGE = "Removed from the suppression list: {reason}"


def clean_removal_reason(reason: str) -> str:
    """The reason an operator gives, trimmed; refused when empty or longer than the log keeps."""
    reason = " ".join((reason or "").split())  # one line: it is shown in lists
    if not reason:
        raise BadRequestError(_("Say why these addresses may be mailed again."), field="reason")
    if len(reason) > REMOVAL_REASON_MAX_LENGTH:
        raise BadRequestError(
            _("Keep the reason under %(max)d characters.") % {"max": REMOVAL_REASON_MAX_LENGTH},
            field="reason",
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
        # The row's id, not the address: logs outlive a learner's retirement.
        logger.info("%s (suppression %s) by user %s", message, row.pk, removed_by.pk)
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


def removal_log_entries(address: str):
    """The admin log's entries of an address's removals (their object_repr names it)."""
    from django.contrib.admin.models import LogEntry

    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Suppression),
        object_repr__startswith=Suppression.normalize(address) + " (",
    )


def anonymize_removal_log(*, address: str) -> int:
    """Retirement: the log keeps that a removal happened, and why, but no longer whose
    address it was; the entries changed."""
    if not address or not apps.is_installed("django.contrib.admin"):
        return 0
    return removal_log_entries(address).update(object_repr="(a retired learner's address)")


def removal_log(*, address: str) -> list[str]:
    """What the admin log says of an address's removals, newest first (for tests and the
    admin's history)."""
    if not apps.is_installed("django.contrib.admin"):
        return []
    entries = removal_log_entries(address).order_by("-action_time", "-pk")
    return [entry.change_message for entry in entries]


# --- A learner's own address --------------------------------------------------------------------

CLEARABLE_BY_TEST = (Suppression.HARD_BOUNCE, Suppression.SOFT_BOUNCES)
TEST_TOKEN_SALT = "bulk_email.address_test"
TEST_TOKEN_MAX_AGE = datetime.timedelta(days=7)
CLEARED_BY_TEST = "cleared by the address's owner: a test message reached it"
CLEARED_BY_RESUBSCRIBING = "cleared by the address's owner: turned course email back on"


@dataclass(frozen=True)
class AddressSuppression:
    """Why course email does not reach a learner's address, as their dashboard says it."""

    address: str
    reason: str
    reason_label: str
    since: datetime.datetime
    status_code: str
    diagnostic: str

    @property
    def clearable_by_test(self) -> bool:
        return self.reason in CLEARABLE_BY_TEST

    @property
    def is_complaint(self) -> bool:
        return self.reason == Suppression.COMPLAINT


def suppression_of(user: AbstractBaseUser) -> Suppression | None:
    """The suppression of the user's current address (one query), if any."""
    if not user.email:
        return None
    return Suppression.objects.filter(address=Suppression.normalize(user.email)).first()


def address_suppression(*, user: AbstractBaseUser) -> AddressSuppression | None:
    row = suppression_of(user)
    if row is None:
        return None
    return AddressSuppression(
        address=user.email,
        reason=row.reason,
        reason_label=row.get_reason_display(),
        since=row.last_event,
        status_code=row.status_code,
        diagnostic=row.diagnostic[:300],
    )


def send_address_test(*, user: AbstractBaseUser) -> str:
    """Mail the user's bounced address a message with a link that clears its suppression;
    the address. Refused (nothing sent) when the address is not suppressed for bouncing, or
    past ADDRESS_TEST_LIMIT_PER_HOUR."""
    row = suppression_of(user)
    if row is None:
        raise BadRequestError(_("Course email already reaches your address: nothing to clear."))
    if row.reason not in CLEARABLE_BY_TEST:
        raise BadRequestError(refusal_for(row))
    take_test_allowance(user)
    deliver_test(user, test_link(user, row))
    return user.email


def refusal_for(row: Suppression) -> str:
    if row.reason == Suppression.COMPLAINT:
        return _(
            "You reported a course email as spam, so none is sent to your address. Turn a "
            "course's email back on in its Email Settings to receive course email again."
        )
    return _("The site's team stopped course email to your address; ask them to restore it.")


def take_test_allowance(user: AbstractBaseUser) -> None:
    """One of the user's test messages this hour, or TooManyRequestsError. A fixed window in
    Django's cache: the first test of the hour starts it."""
    limit = app_settings.get("ADDRESS_TEST_LIMIT_PER_HOUR")
    key = f"bulk_email:address_test:{user.pk}"
    cache.add(key, 0, timeout=3600)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        used = 1
    if used > limit:
        raise TooManyRequestsError(
            ngettext(
                "You asked for %(limit)d test message this hour already; try again later.",
                "You asked for %(limit)d test messages this hour already; try again later.",
                limit,
            )
            % {"limit": limit}
        )


def test_link(user: AbstractBaseUser, row: Suppression) -> str:
    token = signing.dumps([user.pk, row.pk, row.count], salt=TEST_TOKEN_SALT)
    path = reverse("bulk_email:address_confirm", args=[token])
    return app_settings.get("SITE_URL").rstrip("/") + path


def deliver_test(user: AbstractBaseUser, link: str) -> None:
    """Through the site's email backend (not the bulk pipeline: this is one message the person
    asked for, and its failure is shown to them at once)."""
    message = EmailMessage(
        subject="Test message: does course email reach you?",
        body=TEST_BODY.format(address=user.email, link=link),
        from_email=app_settings.from_email(),
        to=[user.email],
    )
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as error:
        code, reply = next(iter(error.recipients.values()), (0, b""))
        reply = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        raise AddressTestNotSentError(
            _("The mail server refused your address (%(code)s %(reply)s): it does not work yet.")
            % {"code": code, "reply": reply[:200]}
        ) from error
    except (smtplib.SMTPException, OSError) as error:
        logger.warning("The test message to user %s could not be sent: %s", user.pk, error)
        raise AddressTestNotSentError(
            _("The test message could not be sent just now; try again in a few minutes.")
        ) from error


TEST_BODY = """Hello,

You asked for this message because course email stopped reaching {address}: an earlier
message to it bounced.

If you are reading this, your address works again. Follow this link and confirm, and course
email will be sent to it again:

{link}

If you did not ask for this message, ignore it: nothing changes.
"""


@dataclass(frozen=True)
class AddressTest:
    """What a genuine test link stands for."""

    user: AbstractBaseUser
    suppression: Suppression


def read_address_test(*, token: str) -> AddressTest:
    """The user and suppression a test link was made for, while it still stands: signed by
    this site, at most TEST_TOKEN_MAX_AGE old, no bounce since, the user's address the same."""
    try:
        user_id, suppression_id, count = signing.loads(
            token, salt=TEST_TOKEN_SALT, max_age=TEST_TOKEN_MAX_AGE
        )
    except signing.SignatureExpired:
        raise InvalidTokenError(
            _("This link has expired: send yourself a new test message.")
        ) from None
    except (signing.BadSignature, TypeError, ValueError):
        raise InvalidTokenError(_("This link is not one this site sent.")) from None
    row = Suppression.objects.filter(
        pk=suppression_id, count=count, reason__in=CLEARABLE_BY_TEST
    ).first()
    user = get_user_model().objects.filter(pk=user_id).first()
    if row is None or user is None or Suppression.normalize(user.email or "") != row.address:
        raise InvalidTokenError(
            _(
                "This link no longer works: the address was cleared already, changed, or bounced "
                "again since the test message."
            )
        )
    return AddressTest(user=user, suppression=row)


def clear_tested_address(*, token: str) -> str:
    """Delete the suppression a genuine test link names; the address cleared."""
    test = read_address_test(token=token)
    remove_suppressions(
        suppressions=[test.suppression], removed_by=test.user, reason=CLEARED_BY_TEST
    )
    return test.user.email


def clear_complaint_on_resubscribe(*, user: AbstractBaseUser) -> bool:
    """The learner turned a course's email back on: a complaint suppression of their address
    would silently contradict the choice they just made, so it goes (logged); whether one did."""
    row = suppression_of(user)
    if row is None or row.reason != Suppression.COMPLAINT:
        return False
    remove_suppressions(suppressions=[row], removed_by=user, reason=CLEARED_BY_RESUBSCRIBING)
    return True
