"""What one piece of feedback does to the tables: the one place where a bounce, a complaint
or a mailed unsubscribe becomes a Suppression, an Optout and a count on its send.

Every way in (a raw message on stdin or from a mailbox, an ESP webhook) ends here with a
``FeedbackItem`` whose user and task were proven by a signed token or Message-ID, never
read from a bounce's text. One transaction per item; the FeedbackEvent row and its unique
``dedupe_key`` make a second delivery of the same item change nothing, also when two
processes receive it at the same moment (the second insert waits for the first and fails).
"""

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import app_settings, signals
from ..models import EmailTask, FeedbackEvent, Optout, Suppression
from . import statements

HARD_BOUNCE = FeedbackEvent.HARD_BOUNCE
SOFT_BOUNCE = FeedbackEvent.SOFT_BOUNCE
COMPLAINT = FeedbackEvent.COMPLAINT
UNSUBSCRIBE = FeedbackEvent.UNSUBSCRIBE
IGNORED = FeedbackEvent.IGNORED
KINDS = frozenset(kind for kind, _ in FeedbackEvent.KIND_CHOICES)

# Outcomes (what record_feedback did), one word each: the command prints them, the tests
# and the benchmark count them.
SUPPRESSED = "suppressed"  # the address gets no more course mail
COUNTED = "counted"  # a soft bounce, below the limit
OPTED_OUT = "opted_out"  # the learner is opted out of the send's course
OUTCOME_IGNORED = "ignored"  # recorded, changes nothing
DUPLICATE = "duplicate"  # this very event was recorded before: nothing at all

# A reason never gives way to a weaker one: a complainer stays a complainer when their
# address later bounces, and an operator's suppression stays the operator's.
REASON_RANK = {
    Suppression.SOFT_BOUNCES: 0,
    Suppression.HARD_BOUNCE: 1,
    Suppression.COMPLAINT: 2,
    Suppression.MANUAL: 3,
}
MAX_DIAGNOSTIC = 2000
MAX_STATUS_CODE = 16
MAX_ADDRESS = 254


@dataclass(frozen=True)
class FeedbackItem:
    """One thing that came back. ``user_id`` and ``task_id`` only when a signature proved
    them; ``course_id`` when the source named one (it must then agree with the task's)."""

    kind: str
    address: str
    source: str
    dedupe_key: str
    user_id: int | None = None
    task_id: int | None = None
    course_id: str = ""
    status_code: str = ""
    diagnostic: str = ""


def make_dedupe_key(*parts: str) -> str:
    """A FeedbackEvent.dedupe_key from what identifies one event (the feedback message's or
    the ESP event's id, whom it is about, its kind): the same parts, the same key."""
    joined = "\n".join(str(part) for part in parts)
    return hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class _Subject:
    """Whom an item is about, as the database knows them."""

    address: str
    user_id: int | None
    task_id: int | None
    course_id: str


def record_feedback(item: FeedbackItem) -> str:
    """Record ``item`` and do what it asks; the outcome (SUPPRESSED, COUNTED, OPTED_OUT,
    OUTCOME_IGNORED or DUPLICATE)."""
    if item.kind not in KINDS:
        raise ValueError(f"Unknown feedback kind {item.kind!r}")
    try:
        return _record_once(item)
    except IntegrityError:
        # A row this one refers to went away meanwhile (a user or send deleted; checked at
        # COMMIT), or another process made the same opt-out: all of it was rolled back, and
        # a second run sees the tables as they are.
        return _record_once(item)


def _record_once(item: FeedbackItem) -> str:
    """One transaction, no savepoint: the event's unique key settles duplicates in the
    database (statements.py). An item that can change nothing but its own event (ignored,
    about nobody) is that one INSERT, atomic on its own: a quarter of a flood saves the
    transaction's two round trips."""
    if item.kind == IGNORED and item.user_id is None and item.task_id is None:
        subject, _ = _subject(item)  # no query: nobody to look up
        return OUTCOME_IGNORED if _record_event(item, IGNORED, subject) else DUPLICATE
    with transaction.atomic():
        subject, usable = _subject(item)
        kind = item.kind if usable else IGNORED
        if not _record_event(item, kind, subject):
            return DUPLICATE
        return _ACTIONS[kind](item, subject)


def _subject(item: FeedbackItem) -> tuple[_Subject, bool]:
    """The item's user, task and course checked against the tables, and whether it can act:
    an item about a user or task that does not exist (deleted since), or whose course is not
    its task's (a token of another course), is recorded as ignored."""
    user_email, task_course = _user_email_and_task_course(item.user_id, item.task_id)
    user_id = item.user_id if user_email is not None else None
    task_id = item.task_id if task_course is not None else None
    course_id = task_course or item.course_id
    address = Suppression.normalize(item.address or user_email or "")[:MAX_ADDRESS]
    subject = _Subject(address=address, user_id=user_id, task_id=task_id, course_id=course_id)
    usable = (
        user_id == item.user_id
        and task_id == item.task_id
        and not (item.course_id and task_course and item.course_id != task_course)
    )
    return subject, usable


def _user_email_and_task_course(
    user_id: int | None, task_id: int | None
) -> tuple[str | None, str | None]:
    """The user's email and the task's course (None for one that does not exist), in one
    query when both are asked."""
    if user_id is None:
        return None, _task_course(task_id)
    row = statements.user_email_and_task_course(user_id, task_id)
    return row if row is not None else (None, _task_course(task_id))


def _task_course(task_id: int | None) -> str | None:
    if task_id is None:
        return None
    return EmailTask.objects.filter(pk=task_id).values_list("email__course_id", flat=True).first()


def _record_event(item: FeedbackItem, kind: str, subject: _Subject) -> bool:
    """Write the item's FeedbackEvent; False when its dedupe_key was recorded before."""
    return statements.insert_event(
        {
            "kind": kind,
            "dedupe_key": item.dedupe_key[:64],
            "address": subject.address,
            "user_id": subject.user_id,
            "task_id": subject.task_id,
            "course_id": subject.course_id[:255],
            "source": item.source[:32],
            "status_code": item.status_code[:MAX_STATUS_CODE],
            "diagnostic": item.diagnostic[:MAX_DIAGNOSTIC],
            "received": timezone.now(),
        }
    )


def _hard_bounce(item: FeedbackItem, subject: _Subject) -> str:
    _count_on_task(subject.task_id, "bounced")
    return _suppress(item, subject, Suppression.HARD_BOUNCE)


def _soft_bounce(item: FeedbackItem, subject: _Subject) -> str:
    if not subject.address:
        return OUTCOME_IGNORED
    since = timezone.now() - timedelta(days=app_settings.get("SOFT_BOUNCE_DAYS"))
    recent = statements.recent_soft_bounces(subject.address, since)  # this one included
    if recent >= app_settings.get("SOFT_BOUNCE_LIMIT"):
        return _suppress(item, subject, Suppression.SOFT_BOUNCES)
    return COUNTED


def _complaint(item: FeedbackItem, subject: _Subject) -> str:
    _count_on_task(subject.task_id, "complained")
    _opt_out(subject, Optout.COMPLAINT)
    return _suppress(item, subject, Suppression.COMPLAINT)


def _unsubscribe(item: FeedbackItem, subject: _Subject) -> str:
    return OPTED_OUT if _opt_out(subject, Optout.MAILTO) else OUTCOME_IGNORED


def _ignored(item: FeedbackItem, subject: _Subject) -> str:
    return OUTCOME_IGNORED


_ACTIONS = {
    HARD_BOUNCE: _hard_bounce,
    SOFT_BOUNCE: _soft_bounce,
    COMPLAINT: _complaint,
    UNSUBSCRIBE: _unsubscribe,
    IGNORED: _ignored,
}


def _count_on_task(task_id: int | None, counter: str) -> None:
    if task_id is not None:
        statements.increment_task(task_id, counter)


def _opt_out(subject: _Subject, how: str) -> bool:
    """Opt the subject's user out of the subject's course; False when either is unknown. An
    existing opt-out stays as it was (the learner's own choice is the older fact)."""
    if subject.user_id is None or not subject.course_id:
        return False
    Optout.objects.opt_out(user_id=subject.user_id, course_id=subject.course_id, how=how)
    return True


def _suppress(item: FeedbackItem, subject: _Subject, reason: str) -> str:
    """Create the address's Suppression, or confirm it: one more event, the latest status
    and diagnostic, the stronger reason (one INSERT ... ON CONFLICT DO UPDATE)."""
    if not subject.address:
        return OUTCOME_IGNORED
    now = timezone.now()
    values = {
        "address": subject.address,
        "user_id": subject.user_id,
        "reason": reason,
        "source": item.source[:32],
        "first_event": now,
        "last_event": now,
        "count": 1,
        "status_code": item.status_code[:MAX_STATUS_CODE],
        "diagnostic": item.diagnostic[:MAX_DIAGNOSTIC],
    }
    if statements.upsert_suppression(values, reason_rank=REASON_RANK):
        signals.announce_on_commit(
            signals.address_suppressed, Suppression, address=subject.address, reason=reason,
            source=values["source"], user_id=subject.user_id,
        )  # fmt: skip
    return SUPPRESSED
