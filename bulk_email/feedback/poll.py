"""``poll_feedback``: read the feedback mailbox, hand each waiting message to
``process_message``, and take it out of the mailbox once its feedback is committed.

Exactly once: a message is taken out (moved or flagged, docs/feedback.md) only after
``process_message`` returned, that is after its transaction committed. A crash in between
leaves it waiting, and the next run processes it again; the FeedbackEvent's unique
dedupe key makes that second time change nothing.

Never two at once: a run holds a lock named after its mailbox for its whole length; a second
run that starts meanwhile (cron and beat overlapping, two machines) finds it held and does
nothing. The lock is PostgreSQL's advisory lock when the database is PostgreSQL (shared by
every machine, released when the process dies), else a Redis lock when Redis is configured,
else a file lock (one machine, as SQLite is).
"""

import collections
import fcntl
import hashlib
import logging
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DatabaseError, connection

from .. import app_settings
from ..exceptions import BulkEmailError
from .mailboxes import configured_mailbox
from .messages import process_message

logger = logging.getLogger(__name__)

FAILED = "failed"  # process_message raised: the message stays waiting for the next run


class PollLockError(BulkEmailError, OSError):
    """The lock that keeps two runs apart cannot be taken (its Redis is down)."""

    code = "poll_lock"


@dataclass
class PollReport:
    """What one run did: outcomes counted by name, and whether the lock was busy."""

    mailbox: str
    outcomes: collections.Counter = field(default_factory=collections.Counter)
    busy: bool = False
    seconds: float = 0.0

    @property
    def processed(self) -> int:
        return sum(count for outcome, count in self.outcomes.items() if outcome != FAILED)


def poll_feedback(*, limit: int | None = None, mailbox=None, process=None) -> PollReport:
    """Process at most ``limit`` (FEEDBACK_POLL_LIMIT) waiting messages of ``mailbox`` (the
    configured one); the report of the run."""
    mailbox = mailbox or configured_mailbox()
    process = process or process_message
    limit = app_settings.get("FEEDBACK_POLL_LIMIT") if limit is None else limit
    report, started = PollReport(mailbox=mailbox.identity), time.monotonic()
    with poll_lock(mailbox.identity) as lease:
        if not lease.held:
            report.busy = True
            return report
        with mailbox:
            for letter in mailbox.waiting(limit):
                report.outcomes[handle(mailbox, letter, process)] += 1
                lease.renew()
    report.seconds = time.monotonic() - started
    logger.info("poll_feedback %s: %s", report.mailbox, dict(report.outcomes))
    return report


def handle(mailbox, letter, process) -> str:
    """One message: processed, then taken out; a failure leaves it waiting."""
    try:
        result = process(letter.raw, source=mailbox.source)
    except DatabaseError:
        raise  # the database is down: stop the run; this message and the rest stay waiting
    except Exception:
        logger.exception("poll_feedback: message %s could not be processed", letter.key)
        return FAILED
    mailbox.done(letter.key)
    return outcome_of(result)


def outcome_of(result) -> str:
    """The one-word outcome of a ProcessResult (or of a plain outcome string)."""
    return str(getattr(result, "outcome", result))


# --- The lock -------------------------------------------------------------------------------


@dataclass
class Lease:
    """Whether this run holds the lock; ``renew()`` after each message keeps an expiring
    lock (Redis) held for as long as the run makes progress."""

    held: bool
    renew: Callable[[], object] = lambda: None


@contextmanager
def poll_lock(identity: str):
    """Yields the Lease of ``identity``'s lock (not held: another run has it)."""
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    if connection.vendor == "postgresql":
        lock = _advisory_lock(key)
    elif app_settings.redis_url():
        lock = _redis_lock(key)
    else:
        lock = _file_lock(key)
    with lock as lease:
        yield lease


@contextmanager
def _advisory_lock(key: str):
    number = int(key, 16) - (1 << 63)  # a signed 64-bit key, as pg_try_advisory_lock takes
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [number])
        held = cursor.fetchone()[0]
    try:
        yield Lease(held)
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [number])


@contextmanager
def _redis_lock(key: str):
    import redis
    from redis.exceptions import LockError, RedisError

    client = redis.Redis.from_url(app_settings.redis_url(), socket_timeout=5)
    name = f"{app_settings.redis_key_prefix()}poll_feedback:{key}"
    # Expires on its own if the process dies; renewed after every message while it runs.
    lock = client.lock(name, timeout=app_settings.get("FEEDBACK_POLL_LOCK_SECONDS"))
    try:
        held = lock.acquire(blocking=False)
    except RedisError as error:
        raise PollLockError(f"The poll lock's Redis cannot be reached: {error}") from error
    try:
        yield Lease(held, lock.reacquire if held else lambda: None)
    finally:
        if held:
            try:
                lock.release()
            except LockError:
                logger.warning("poll_feedback: the lock %s expired during the run", name)


@contextmanager
def _file_lock(key: str):
    path = Path(tempfile.gettempdir()) / f"bulk_email-poll_feedback-{key}.lock"
    with open(path, "a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield Lease(False)
            return
        try:
            yield Lease(True)
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
