"""The worker side of a send: fan-out into batches, sending one batch, finishing the task,
and the periodic dispatcher. tasks.py calls these with ids.

Every step is safe to run twice, concurrently, or after a crash:

- fan-out writes a page's Batch rows (up to ``BATCHES_PER_PAGE``) in the same transaction
  that moves the task's cursor (``fan_out_last_user_id``), under a lock on the task row, so
  a re-run resumes after the last page written and two fan-outs can never write the same page;
- a batch is *claimed* with a conditional UPDATE that hands out a ``claim_token``; every
  progress write names that token, so a worker that lost its claim stops at once;
- progress is noted after each message (progress.py: in Redis, with the Batch row brought up
  to date at checkpoints; or one small UPDATE of the row), so a batch taken over after a
  crash resumes after the last recipient reached and at most the one message in flight is
  sent twice;
- a claim whose heartbeat is older than ``BATCH_LEASE_SECONDS`` is given up by the
  dispatcher and the batch sent on by whoever claims it next.
"""

import datetime
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Case, F, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from . import app_settings, progress, recipients, rendering, sending
from .exceptions import SMTPConfigurationError, TransientSendError
from .lms import get_lms
from .models import Batch, EmailTask, RecipientOutcome
from .progress import ClaimLost

logger = logging.getLogger(__name__)

RUNNING_STATES = (EmailTask.STARTED, EmailTask.PROGRESS)
STOPPED_STATES = (EmailTask.REVOKED, EmailTask.FAILURE)


@dataclass(frozen=True)
class Job:
    """Something to enqueue: a fan-out (task id) or a batch (batch id), on its queue."""

    id: int
    queue: str


# How often a sending batch looks whether its task was revoked (one small query).
STOP_CHECK_SECONDS = 1.0


class TaskStopped(Exception):
    """The task was revoked or failed while a batch was sending: the batch stops, its
    progress written (it stays claimed; a stopped task's batches are never claimed again)."""


def lease() -> datetime.timedelta:
    return datetime.timedelta(seconds=app_settings.get("BATCH_LEASE_SECONDS"))


# --- Fan-out ------------------------------------------------------------------------------------


# A fan-out page is up to this many batches: one recipient query and one transaction for
# all of them (per batch, each cost as much as sending a tenth of its messages).
BATCHES_PER_PAGE = 10


def fan_out(*, task_id: int) -> Iterator[Job]:
    """Resolve the task's recipients into Batch rows; yields each batch once it is committed,
    so the caller enqueues it while fan-out goes on (the first messages leave at once: the
    first page is one batch).

    A re-run resumes after the last page written and first yields the batches a crashed run
    may have committed without enqueueing. An empty recipient set ends in Success."""
    task = start_fan_out(task_id=task_id)
    if task is None:
        return
    if task.batches_total:
        pending = Batch.objects.filter(task_id=task_id, state=Batch.PENDING)
        yield from (Job(pk, task.queue) for pk in pending.values_list("pk", flat=True))
    after_id = task.fan_out_last_user_id
    for user_ids in recipient_id_pages(task, after_id=after_id):
        batches = write_batches(task_id=task_id, after_id=after_id, user_ids=user_ids)
        if batches is None:  # revoked, failed, or another fan-out got further
            return
        yield from (Job(batch.pk, task.queue) for batch in batches)
        after_id = user_ids[-1]
    end_fan_out(task_id=task_id)


def start_fan_out(*, task_id: int) -> EmailTask | None:
    """Pending -> Started; the task when fan-out should (go on) run, else None."""
    now = timezone.now()
    EmailTask.objects.filter(pk=task_id, state=EmailTask.PENDING).update(
        state=EmailTask.STARTED, started_at=now, heartbeat=now
    )
    return (
        EmailTask.objects.select_related("email")
        .filter(pk=task_id, state__in=RUNNING_STATES, fan_out_done=False)
        .first()
    )


def recipient_id_pages(task: EmailTask, *, after_id: int) -> Iterator[list[int]]:
    size = app_settings.get("EMAILS_PER_TASK")
    if task.resend_of_id:
        yield from failed_id_pages(task_id=task.resend_of_id, after_id=after_id, size=size)
        return
    yield from recipients.recipient_id_pages(
        **recipients.email_audience(email=task.email),
        page_size=size * BATCHES_PER_PAGE,
        first_page_size=size,
        after_id=after_id,
    )


def failed_id_pages(*, task_id: int, after_id: int, size: int) -> Iterator[list[int]]:
    """The users whose outcome in ``task_id`` was failed, in keyset pages."""
    failed = RecipientOutcome.objects.filter(task_id=task_id, status=RecipientOutcome.FAILED)
    while page := list(
        failed.filter(user_id__gt=after_id)
        .order_by("user_id")
        .values_list("user_id", flat=True)[:size]
    ):
        yield page
        after_id = page[-1]


def write_batches(*, task_id: int, after_id: int, user_ids: list[int]) -> list[Batch] | None:
    """One page -> Batch rows of EMAILS_PER_TASK, the task's cursor moved in the same
    transaction; None when the task stopped or another fan-out got further."""
    size = app_settings.get("EMAILS_PER_TASK")
    with transaction.atomic():
        task = EmailTask.objects.select_for_update().filter(pk=task_id).first()
        if task is None or task.state not in RUNNING_STATES:
            return None
        if task.fan_out_last_user_id != after_id:
            return None
        now = timezone.now()
        chunks = [user_ids[start : start + size] for start in range(0, len(user_ids), size)]
        batches = Batch.objects.bulk_create(
            Batch(task_id=task_id, seq=task.batches_total + n, user_ids=chunk, enqueued_at=now)
            for n, chunk in enumerate(chunks)
        )
        EmailTask.objects.filter(pk=task_id).update(
            state=EmailTask.PROGRESS,
            fan_out_last_user_id=user_ids[-1],
            batches_total=F("batches_total") + len(batches),
            total=F("total") + len(user_ids),
            heartbeat=now,
        )
    return batches


def end_fan_out(*, task_id: int) -> None:
    EmailTask.objects.filter(pk=task_id, state__in=RUNNING_STATES).update(
        fan_out_done=True, heartbeat=timezone.now()
    )
    finish_if_complete(task_id=task_id)


# --- Sending a batch ----------------------------------------------------------------------------


@dataclass
class Claim:
    batch: Batch
    token: str
    notes: progress.RedisNotes | progress.DatabaseNotes


BUSY = "busy"  # another worker holds a live claim: try again later


def claim_batch(*, batch_id: int) -> Claim | str | None:
    """The batch, claimed for this worker; BUSY while someone else works on it; None when
    there is nothing to do (done, failed, gone)."""
    now, token = timezone.now(), secrets.token_hex(8)
    claimable = Q(state=Batch.PENDING) | Q(state=Batch.CLAIMED, heartbeat__lt=now - lease())
    claimed = (
        Batch.objects.filter(claimable, pk=batch_id)
        .exclude(task__state__in=STOPPED_STATES)
        .update(
            state=Batch.CLAIMED,
            claim_token=token,
            claimed_at=now,
            heartbeat=now,
            attempts=F("attempts") + 1,
        )
    )
    if claimed:
        batch = Batch.objects.select_related("task__email").get(pk=batch_id)
        notes = progress.notes_for(batch=batch, token=token, redis_url=app_settings.redis_url())
        claim = Claim(batch, token, notes)
        adopt_noted_progress(claim)
        return claim
    if Batch.objects.filter(pk=batch_id, state=Batch.CLAIMED).exclude(
        task__state__in=STOPPED_STATES
    ):
        return BUSY
    return None


def adopt_noted_progress(claim: Claim) -> None:
    """Bring the row up to the cursor the previous claim noted after its last checkpoint:
    everyone between was sent (failures and skips have their outcome rows)."""
    batch = claim.batch
    noted = claim.notes.adopt()
    if noted is None or noted <= batch.cursor:
        return
    done = outcome_user_ids(batch)
    sent = sum(1 for user_id in batch.user_ids[batch.cursor : noted] if user_id not in done)
    BatchProgress(claim, positions={}).update(cursor=noted, sent=F("sent") + sent)
    batch.refresh_from_db(fields=["cursor", "sent"])


def outcome_user_ids(batch: Batch) -> set[int]:
    return set(RecipientOutcome.objects.filter(batch=batch).values_list("user_id", flat=True))


def send_batch(*, batch_id: int) -> str | None:
    """Send one batch to the recipients it has not reached yet.

    Returns BUSY when another worker holds it. Raises TransientSendError (the caller retries
    later; the claim is released) or SMTPConfigurationError (the task has failed)."""
    claim = claim_batch(batch_id=batch_id)
    if claim is None or claim == BUSY:
        return claim
    try:
        deliver_batch(claim)
    except ClaimLost:
        logger.warning("Batch %s was taken over by another worker; stopping.", batch_id)
        return None
    except TaskStopped:
        logger.info("The task of batch %s was revoked or failed; stopping.", batch_id)
        return None
    except SMTPConfigurationError as error:
        if not reached_anyone(claim.batch.task_id):
            fail_task(task_id=claim.batch.task_id, reason=str(error))
            raise
        # The same server took this send's messages before: an outage, not a wrong setting.
        outage = TransientSendError(f"The mail server is unavailable: {error.reason}")
        outage.stalls = release_after_transient(claim, made_progress=bool(error.outcomes))
        raise outage from error
    except TransientSendError as error:
        error.stalls = release_after_transient(claim, made_progress=bool(error.outcomes))
        raise
    finish_batch(claim)
    return None


def deliver_batch(claim: Claim) -> None:
    batch = claim.batch
    unreached = unreached_positions(batch)
    people = load_recipients([batch.user_ids[p] for p in unreached])
    progress = BatchProgress(claim, positions={batch.user_ids[p]: p for p in unreached})
    skips = skip_reasons(batch, people, [batch.user_ids[p] for p in unreached])
    progress.record_skips(skips)
    to_send = [people[user_id] for user_id in progress.positions if user_id not in skips]
    if not to_send:
        return
    prepared = rendering.get_prepared_message(batch.task.email)
    try:
        sending.send_batch(prepared, to_send, on_outcome=progress.record)
    finally:
        progress.close()


def unreached_positions(batch: Batch) -> list[int]:
    """Positions in ``user_ids`` at or after the cursor that have no outcome row yet."""
    # Outcome rows are written under a claim of the batch: on its first there are none.
    done = outcome_user_ids(batch) if batch.attempts > 1 else set()
    return [p for p in range(batch.cursor, len(batch.user_ids)) if batch.user_ids[p] not in done]


def load_recipients(user_ids: list[int]) -> dict[int, rendering.Recipient]:
    """The people as they are now (address changes since fan-out apply), active ones only."""
    rows = (
        get_user_model()
        .objects.filter(pk__in=recipients.id_list(user_ids), is_active=True)
        .annotate(full_name=get_lms().full_name_expression())
        .values_list("pk", "email", "full_name")
    )
    return {pk: rendering.Recipient(pk, email, name or "") for pk, email, name in rows}


def skip_reasons(batch: Batch, people: dict, user_ids: list[int]) -> dict[int, str]:
    email = batch.task.email
    opted_out = recipients.opted_out_ids(
        **recipients.email_audience(email=email), user_ids=user_ids
    )
    reasons = {user_id: "Opted out of this course's email." for user_id in opted_out}
    for user_id in user_ids:
        if user_id not in people:
            reasons.setdefault(user_id, "The account is no longer active.")
    return reasons


class BatchProgress:
    """Records each recipient's outcome as it happens, under the batch's claim: a sent one
    as a note (progress.py), brought into the row at checkpoints; failures and skips as
    outcome rows, at once."""

    def __init__(self, claim: Claim, *, positions: dict[int, int]):
        self.claim = claim
        self.positions = positions  # user id -> position in batch.user_ids
        self.cursor = claim.batch.cursor
        self.unsaved_sent = 0  # noted, not yet in the row
        self.db = None  # the cursor of the hot path, opened on first use
        self.last_stop_check = time.monotonic()  # the claim has just checked

    def update(self, **fields) -> None:
        batch = self.claim.batch
        updated = Batch.objects.filter(pk=batch.pk, claim_token=self.claim.token).update(
            heartbeat=timezone.now(), **fields
        )
        if not updated:
            raise ClaimLost

    def record(self, outcome: sending.Outcome) -> None:
        self.cursor = self.positions[outcome.user_id] + 1
        if outcome.status == sending.SENT:
            self.unsaved_sent += 1
            if not self.claim.notes.note(self.cursor):
                return
            self.checkpoint()
        else:
            with transaction.atomic():
                self.checkpoint(failed=F("failed") + 1)
                self.add_outcome(
                    outcome.user_id, RecipientOutcome.FAILED, outcome.reason, outcome.code
                )
        self.stop_if_task_stopped()

    def stop_if_task_stopped(self) -> None:
        """After a checkpoint, at most every STOP_CHECK_SECONDS: raise TaskStopped when staff
        revoked the task (or it failed) since the claim, so a revoke stops a batch in hand
        within about a second instead of after its last recipient."""
        now = time.monotonic()
        if now - self.last_stop_check < STOP_CHECK_SECONDS:
            return
        self.last_stop_check = now
        stopped = EmailTask.objects.filter(pk=self.claim.batch.task_id, state__in=STOPPED_STATES)
        if stopped.exists():
            raise TaskStopped

    def checkpoint(self, **fields) -> None:
        """The row brought up to date: cursor, the sent noted since, heartbeat."""
        if fields:
            self.update(cursor=self.cursor, sent=F("sent") + self.unsaved_sent, **fields)
        else:
            self.save_sent()
        self.unsaved_sent = 0
        self.claim.notes.checkpointed()

    def save_sent(self) -> None:
        """``update(cursor=, sent=F + n)`` in SQL built once, on one cursor kept for the batch:
        without Redis this runs after every message, and the ORM's query building cost more
        than the UPDATE itself."""
        if self.db is None:
            self.db = connection.cursor()
        parameters = [self.cursor, self.unsaved_sent, timezone.now()]
        self.db.execute(sent_sql(), [*parameters, self.claim.batch.pk, self.claim.token])
        if self.db.rowcount != 1:
            raise ClaimLost

    def close(self) -> None:
        """The batch stops (done, or interrupted): whatever was noted goes into the row."""
        try:
            if self.unsaved_sent:
                self.checkpoint()
        finally:
            self.claim.notes.release()
            if self.db is not None:
                self.db.close()

    def record_skips(self, reasons: dict[int, str]) -> None:
        if not reasons:
            return
        with transaction.atomic():
            self.update(skipped=F("skipped") + len(reasons))
            RecipientOutcome.objects.bulk_create(
                self.outcome(user_id, RecipientOutcome.SKIPPED, reason)
                for user_id, reason in reasons.items()
            )

    def add_outcome(self, user_id: int, status: str, detail: str, code: int | None = None) -> None:
        self.outcome(user_id, status, detail, code).save()

    def outcome(self, user_id: int, status: str, detail: str, code=None) -> RecipientOutcome:
        batch = self.claim.batch
        return RecipientOutcome(
            task_id=batch.task_id, batch=batch, user_id=user_id, status=status, code=code,
            detail=detail,
        )  # fmt: skip


@cache
def sent_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"UPDATE {quote(Batch._meta.db_table)} SET {quote('cursor')} = %s, "
        f"{quote('sent')} = {quote('sent')} + %s, {quote('heartbeat')} = %s "
        f"WHERE {quote('id')} = %s AND {quote('claim_token')} = %s"
    )


def reached_anyone(task_id: int) -> bool:
    return Batch.objects.filter(task_id=task_id, sent__gt=0).exists()


def release_after_transient(claim: Claim, *, made_progress: bool) -> int:
    """Hand the batch back for a retry; returns its stalls: transient failures in a row
    without reaching anyone. A throttling server that lets some messages through between
    refusals keeps the backoff short; one that refuses everything makes it grow."""
    stalls = 0 if made_progress else F("stalls") + 1
    Batch.objects.filter(pk=claim.batch.pk, claim_token=claim.token).update(
        state=Batch.PENDING, claim_token="", stalls=stalls, enqueued_at=timezone.now()
    )
    EmailTask.objects.filter(pk=claim.batch.task_id).update(retries=F("retries") + 1)
    return Batch.objects.values_list("stalls", flat=True).get(pk=claim.batch.pk)


def finish_batch(claim: Claim) -> None:
    with transaction.atomic():
        finished = Batch.objects.filter(
            pk=claim.batch.pk, claim_token=claim.token, state=Batch.CLAIMED
        ).update(state=Batch.DONE, finished_at=timezone.now())
        if finished:
            count_finished_batch(task_id=claim.batch.task_id)
    claim.notes.forget()


def count_finished_batch(*, task_id: int) -> None:
    """One more batch finished; the last one (fan-out done) makes the task a Success, in
    the same UPDATE: the row lock orders concurrent finishers, each seeing the count before."""
    last = Q(state__in=RUNNING_STATES, fan_out_done=True, batches_total=F("batches_finished") + 1)
    EmailTask.objects.filter(pk=task_id).update(
        batches_finished=F("batches_finished") + 1,
        state=Case(When(last, then=Value(EmailTask.SUCCESS)), default=F("state")),
        finished_at=Case(When(last, then=Value(timezone.now())), default=F("finished_at")),
    )


def give_up_batch(*, batch_id: int, reason: str) -> None:
    """After the last retry: every recipient not reached yet is failed with ``reason``."""
    claim = claim_batch(batch_id=batch_id)
    if not isinstance(claim, Claim):
        return
    batch = claim.batch
    unreached = [batch.user_ids[p] for p in unreached_positions(batch)]
    progress = BatchProgress(claim, positions={})
    with transaction.atomic():
        progress.update(cursor=len(batch.user_ids), failed=F("failed") + len(unreached))
        RecipientOutcome.objects.bulk_create(
            progress.outcome(user_id, RecipientOutcome.FAILED, reason) for user_id in unreached
        )
    finish_batch(claim)


# --- The task's end -----------------------------------------------------------------------------


def finish_if_complete(*, task_id: int) -> None:
    """Success once fan-out is done and every batch finished (whichever comes last)."""
    EmailTask.objects.filter(
        pk=task_id,
        state__in=RUNNING_STATES,
        fan_out_done=True,
        batches_finished=F("batches_total"),
    ).update(state=EmailTask.SUCCESS, finished_at=timezone.now())


def fail_task(*, task_id: int, reason: str) -> None:
    EmailTask.objects.exclude(state__in=EmailTask.FINAL_STATES).filter(pk=task_id).update(
        state=EmailTask.FAILURE, error=reason, finished_at=timezone.now()
    )


@dataclass(frozen=True)
class TaskCounts:
    total: int
    sent: int
    failed: int
    skipped: int


def task_counts(task: EmailTask) -> TaskCounts:
    """Sent, failed and skipped summed over the task's batches (one query)."""
    sums = Batch.objects.filter(task=task).aggregate(
        sent=Sum("sent"), failed=Sum("failed"), skipped=Sum("skipped")
    )
    return TaskCounts(
        total=task.total,
        sent=sums["sent"] or 0,
        failed=sums["failed"] or 0,
        skipped=sums["skipped"] or 0,
    )


def tasks_with_counts(tasks: QuerySet) -> QuerySet:
    """The tasks annotated with ``sum_sent``, ``sum_failed``, ``sum_skipped`` (None when no
    batch yet): the counts of ``task_counts`` for a whole list in one query."""
    return tasks.annotate(
        sum_sent=Sum("batches__sent"),
        sum_failed=Sum("batches__failed"),
        sum_skipped=Sum("batches__skipped"),
    )


# --- The dispatcher -----------------------------------------------------------------------------


@dataclass
class Dispatch:
    """What one dispatcher round wants enqueued."""

    fan_outs: list[Job]
    batches: list[Job]


def dispatch(*, now: datetime.datetime | None = None) -> Dispatch:
    """One round: due scheduled sends become Pending, and work lost to a crash or a broker
    outage is picked up again. Each item is handed out once per round; claims make a
    duplicate harmless."""
    now = now or timezone.now()
    finish_completed_tasks()
    tasks = release_due_scheduled(now) + stalled_fan_outs(now)
    return Dispatch(
        fan_outs=[Job(task.pk, task.queue) for task in tasks],
        batches=abandoned_batches(now) + orphaned_batches(now),
    )


def finish_completed_tasks() -> None:
    """Success for running tasks whose every batch is done: a worker killed between finishing
    the last batch and marking the task (two statements) leaves it to this round."""
    EmailTask.objects.filter(
        state__in=RUNNING_STATES, fan_out_done=True, batches_finished=F("batches_total")
    ).update(state=EmailTask.SUCCESS, finished_at=timezone.now())


def release_due_scheduled(now: datetime.datetime) -> list[EmailTask]:
    """Scheduled -> Pending for those due, each by exactly one dispatcher (row locks)."""
    with transaction.atomic():
        due = list(
            EmailTask.objects.select_for_update(skip_locked=True).filter(
                state=EmailTask.SCHEDULED, send_at__lte=now
            )
        )
        EmailTask.objects.filter(pk__in=[t.pk for t in due], state=EmailTask.SCHEDULED).update(
            state=EmailTask.PENDING, heartbeat=now
        )
    return due


def stalled_fan_outs(now: datetime.datetime) -> list[EmailTask]:
    """Queuing (its enqueue failed), Pending or running fan-outs with no sign of life for a
    lease; their heartbeat is moved to now so the next round leaves them alone."""
    stale = now - lease()
    stalled = EmailTask.objects.filter(
        Q(heartbeat__lt=stale) | Q(heartbeat__isnull=True, created__lt=stale),
        state__in=(EmailTask.QUEUING, EmailTask.PENDING, *RUNNING_STATES),
        fan_out_done=False,
    )
    with transaction.atomic():
        tasks = list(stalled.select_for_update(skip_locked=True))
        EmailTask.objects.filter(pk__in=[t.pk for t in tasks]).update(heartbeat=now)
        EmailTask.objects.filter(pk__in=[t.pk for t in tasks], state=EmailTask.QUEUING).update(
            state=EmailTask.PENDING
        )
    return tasks


def abandoned_batches(now: datetime.datetime) -> list[Job]:
    """Claimed batches whose worker shows no progress for a lease: released to Pending."""
    with transaction.atomic():
        batches = list(
            Batch.objects.select_for_update(skip_locked=True)
            .select_related("task")
            .filter(state=Batch.CLAIMED, heartbeat__lt=now - lease())
            .exclude(task__state__in=STOPPED_STATES)
        )
        Batch.objects.filter(pk__in=[b.pk for b in batches], state=Batch.CLAIMED).update(
            state=Batch.PENDING, claim_token="", enqueued_at=now
        )
    return [Job(batch.pk, batch.task.queue) for batch in batches]


def orphaned_batches(now: datetime.datetime) -> list[Job]:
    """Pending batches enqueued longer ago than PENDING_REQUEUE_SECONDS: their message was
    lost (a broker that restarted without persistence). Enqueued again, once per period."""
    stale = now - datetime.timedelta(seconds=app_settings.get("PENDING_REQUEUE_SECONDS"))
    with transaction.atomic():
        batches = list(
            Batch.objects.select_for_update(skip_locked=True)
            .select_related("task")
            .filter(state=Batch.PENDING, enqueued_at__lt=stale)
            .exclude(task__state__in=STOPPED_STATES)
        )
        Batch.objects.filter(pk__in=[b.pk for b in batches]).update(enqueued_at=now)
    return [Job(batch.pk, batch.task.queue) for batch in batches]
