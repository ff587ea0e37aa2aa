"""A batch's progress as it sends: each recipient's outcome recorded under the batch's
claim (a sent one as a note, brought into the row at checkpoints; failures and skips as
outcome rows, at once), and a revoke noticed within about a second."""

import time
from functools import cache

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from ..models import Batch, EmailTask, RecipientOutcome
from ..progress import ClaimLost
from ..sending import Outcome, OutcomeKind

# Read once: an Enum member looked up on its class costs ~0.25 us, and this runs per message.
SENT = OutcomeKind.SENT

# How often a sending batch looks whether its task was revoked (one small query).
STOP_CHECK_SECONDS = 1.0


class TaskStopped(Exception):
    """The task was revoked or failed while a batch was sending: the batch stops, its
    progress written (it stays claimed; a stopped task's batches are never claimed again)."""


class BatchProgress:
    """Records each recipient's outcome as it happens, under the batch's claim: a sent one
    as a note (progress.py), brought into the row at checkpoints; failures and skips as
    outcome rows, at once."""

    def __init__(self, claim, *, positions: dict[int, int]):
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

    def record(self, outcome: Outcome) -> None:
        self.cursor = self.positions[outcome.user_id] + 1
        if outcome.status is SENT:
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
        stopped = EmailTask.objects.filter(
            pk=self.claim.batch.task_id, state__in=EmailTask.STOPPED_STATES
        )
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
