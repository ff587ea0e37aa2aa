"""A send (EmailTask), its batches and the recipients that did not simply receive it."""

from dataclasses import dataclass

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Sum
from django.utils.translation import gettext_lazy as _

from .. import signals
from .courses import CourseEmail
from .states import StatefulModel, StateQuerySet


@dataclass(frozen=True)
class TaskCounts:
    total: int
    sent: int
    failed: int
    skipped: int


class EmailTaskQuerySet(StateQuerySet):
    def with_counts(self) -> "EmailTaskQuerySet":
        """Annotated with ``sum_sent``, ``sum_failed``, ``sum_skipped`` (None when no batch
        yet): the counts of ``EmailTask.counts`` for a whole list in one query."""
        return self.annotate(
            sum_sent=Sum("batches__sent"),
            sum_failed=Sum("batches__failed"),
            sum_skipped=Sum("batches__skipped"),
        )

    def complete(self) -> "EmailTaskQuerySet":
        """Running tasks whose fan-out is done and every batch finished."""
        return self.filter(
            state__in=EmailTask.RUNNING_STATES,
            fan_out_done=True,
            batches_finished=F("batches_total"),
        )


class EmailTask(StatefulModel):
    """One send of an email to its targets: the workflow state and the counts shown to staff."""

    QUEUING = "QUEUING"
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"
    STATE_CHOICES = [
        (QUEUING, _("Queuing")),
        (PENDING, _("Pending")),
        (SCHEDULED, _("Scheduled")),
        (STARTED, _("Started")),
        (PROGRESS, _("Progress")),
        (SUCCESS, _("Success")),
        (FAILURE, _("Failure")),
        (REVOKED, _("Revoked")),
    ]
    # The state sets, defined here once; the Email tab's script gets them from the page.
    WAITING_STATES = (QUEUING, PENDING)  # no worker has taken the send yet
    RUNNING_STATES = (STARTED, PROGRESS)
    STOPPED_STATES = (REVOKED, FAILURE)
    FINAL_STATES = (SUCCESS, FAILURE, REVOKED)
    ACTIVE_STATES = (QUEUING, PENDING, *RUNNING_STATES)  # going, not waiting for a time
    ANNOUNCED_STATES = frozenset({STARTED, *FINAL_STATES})  # signals.send_started / _finished
    TRANSITIONS = {
        QUEUING: frozenset({PENDING, FAILURE, REVOKED}),  # enqueued, stuck, revoked
        SCHEDULED: frozenset({PENDING, REVOKED}),  # due
        PENDING: frozenset({STARTED, FAILURE, REVOKED}),  # fan-out starts
        STARTED: frozenset({PROGRESS, SUCCESS, FAILURE, REVOKED}),  # empty sends end at once
        PROGRESS: frozenset({PROGRESS, SUCCESS, FAILURE, REVOKED}),  # each fan-out page
        SUCCESS: frozenset(),
        FAILURE: frozenset(),
        REVOKED: frozenset(),
    }

    email = models.ForeignKey(CourseEmail, on_delete=models.CASCADE, related_name="tasks")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    resend_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resends",
        help_text=_("On a 'resend to failed recipients' task: the task whose failures it retries."),
    )
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=QUEUING, db_index=True)
    queue = models.CharField(
        max_length=32, default="default", help_text=_("Celery queue of its fan-out and batches.")
    )
    send_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    # How many recipients fan-out resolved. Sent, failed and skipped are counted on the batch
    # rows, one F() increment per message, and summed when asked (``counts``): no
    # shared row is rewritten per message and no total can disagree with its batches.
    total = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0, help_text=_("Transient-failure retries."))

    # Fan-out bookkeeping: where resolution got to, so that a re-run resumes there.
    fan_out_last_user_id = models.BigIntegerField(default=0)
    fan_out_done = models.BooleanField(default=False)
    heartbeat = models.DateTimeField(
        null=True, blank=True, help_text=_("Last progress of the fan-out (for crash recovery).")
    )
    batches_total = models.PositiveIntegerField(default=0)
    batches_finished = models.PositiveIntegerField(default=0)
    # What came back after the send (DSNs, complaints, ESP events): they keep arriving after
    # it ends, one F() increment each (feedback.py).
    bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0)
    # Members of its groups left out at fan-out for a suppressed address ("skipped:
    # suppressed"); not in ``total``, which counts the recipients resolved.
    suppressed = models.PositiveIntegerField(default=0)
    # Retention (api/retention.py) folded its batches into one and deleted its outcomes.
    purged_at = models.DateTimeField(null=True, blank=True)

    objects = EmailTaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("email task")
        verbose_name_plural = _("email tasks")
        ordering = ["-created"]
        indexes = [models.Index(fields=["state", "send_at"])]

    def __str__(self) -> str:
        return f"Task {self.pk} ({self.state}) of email {self.email_id}"

    @classmethod
    def announce_transition(cls, *, ids: list[int], state: str) -> None:
        signal = signals.send_started if state == cls.STARTED else signals.send_finished
        if not signal.has_listeners(cls):
            return  # nobody listens: no query for the counts

        def announce() -> None:
            for task in cls.objects.filter(pk__in=ids).select_related("email"):
                if state == cls.STARTED:
                    signals.send_started.send_robust(sender=cls, task=task)
                else:
                    finished = {"task": task, "state": state, "counts": task.counts()}
                    signals.send_finished.send_robust(sender=cls, **finished)

        transaction.on_commit(announce)

    def counts(self) -> TaskCounts:
        """Sent, failed and skipped summed over the task's batches (one query)."""
        sums = self.batches.aggregate(
            sent=Sum("sent"), failed=Sum("failed"), skipped=Sum("skipped")
        )
        return TaskCounts(
            total=self.total,
            sent=sums["sent"] or 0,
            failed=sums["failed"] or 0,
            skipped=sums["skipped"] or 0,
        )


class Batch(StatefulModel):
    """Up to EMAILS_PER_TASK recipients of a task, written by fan-out, sent by one send_batch.

    ``cursor`` counts the recipients of ``user_ids`` already dealt with (sent, failed or
    skipped). It moves at checkpoints while the batch sends (progress.py: each message is
    noted in Redis in between, or, without Redis, every message is a checkpoint), so a batch
    taken over after a crash resumes after the last recipient reached. ``claim_token`` names
    the one send_batch allowed to move it; ``heartbeat`` tells when that one last made
    progress."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    STATE_CHOICES = [(PENDING, _("Pending")), (CLAIMED, _("Claimed")), (DONE, _("Done"))]
    TRANSITIONS = {
        PENDING: frozenset({CLAIMED}),
        # Claimed -> Claimed: a claim whose worker looks dead is taken over.
        CLAIMED: frozenset({CLAIMED, PENDING, DONE}),
        DONE: frozenset(),
    }

    task = models.ForeignKey(EmailTask, on_delete=models.CASCADE, related_name="batches")
    seq = models.PositiveIntegerField(help_text=_("0, 1, 2 ... in user-id order."))
    user_ids = models.JSONField(help_text=_("The recipients' user ids, ascending."))
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    stalls = models.PositiveIntegerField(
        default=0, help_text=_("Transient failures in a row without reaching anyone (backoff).")
    )
    created = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When a send_batch message for it was last enqueued.")
    )
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cursor = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)

    objects = StateQuerySet.as_manager()

    class Meta:
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        constraints = [models.UniqueConstraint(fields=["task", "seq"], name="unique_batch_seq")]
        indexes = [
            models.Index(fields=["state", "heartbeat"]),
            models.Index(fields=["state", "enqueued_at"]),
        ]
        ordering = ["task", "seq"]

    def __str__(self) -> str:
        return f"Batch {self.seq} of task {self.task_id}"


class RecipientOutcome(models.Model):
    """A recipient of a task who did not simply receive the message: failed or skipped.

    Sent recipients need no row: the batch cursor says they were reached and their
    Message-ID is derived from (task, user), so the hot path writes one row per failure,
    not one per message."""

    FAILED = "failed"
    SKIPPED = "skipped"
    STATUS_CHOICES = [(FAILED, _("Failed")), (SKIPPED, _("Skipped"))]

    task = models.ForeignKey(EmailTask, on_delete=models.CASCADE, related_name="outcomes")
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="outcomes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=STATUS_CHOICES)
    code = models.PositiveIntegerField(null=True, blank=True, help_text=_("SMTP reply code."))
    detail = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("recipient outcome")
        verbose_name_plural = _("recipient outcomes")
        constraints = [
            models.UniqueConstraint(fields=["task", "user"], name="unique_outcome_per_recipient")
        ]
        indexes = [models.Index(fields=["task", "status", "user"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.status} in task {self.task_id}"
