"""Fan-out: a send's recipients resolved into Batch rows, page by page, each batch enqueued
as soon as its page is committed.

A page's Batch rows (up to ``BATCHES_PER_PAGE``) are written in the same transaction that
moves the task's cursor (``fan_out_last_user_id``), under a lock on the task row, so a re-run
resumes after the last page written and two fan-outs can never write the same page."""

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import app_settings, recipients
from ..models import Batch, DisabledCourse, EmailTask, RecipientOutcome
from .batches import fail_task, finish_if_complete

# A fan-out page is up to this many batches: one recipient query and one transaction for
# all of them (per batch, each cost as much as sending a tenth of its messages).
BATCHES_PER_PAGE = 10


@dataclass(frozen=True)
class Job:
    """Something to enqueue: a fan-out (task id) or a batch (batch id), on its queue."""

    id: int
    queue: str


def fan_out(*, task_id: int) -> Iterator[Job]:
    """Resolve the task's recipients into Batch rows; yields each batch once it is committed,
    so the caller enqueues it while fan-out goes on (the first messages leave at once: the
    first page is one batch).

    A re-run resumes after the last page written and first yields the batches a crashed run
    may have committed without enqueueing. An empty recipient set ends in Success."""
    task = start_fan_out(task_id=task_id)
    if task is None or refused_for_disabled_course(task):
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
    EmailTask.objects.filter(pk=task_id).transition(
        from_=[EmailTask.PENDING], to=EmailTask.STARTED, started_at=now, heartbeat=now
    )
    return (
        EmailTask.objects.select_related("email")
        .filter(pk=task_id, state__in=EmailTask.RUNNING_STATES, fan_out_done=False)
        .first()
    )


def refused_for_disabled_course(task: EmailTask) -> bool:
    """A send whose course was turned off before it started (a scheduled one, or one still
    queued) fails with the reason instead of going out; one already under way finishes."""
    if task.batches_total:
        return False
    disabled = DisabledCourse.objects.filter(course_id=task.email.course_id).first()
    if disabled is None:
        return False
    fail_task(task_id=task.pk, reason=f"Not sent. {disabled.explanation()}")
    return True


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
        if task is None or task.state not in EmailTask.RUNNING_STATES:
            return None
        if task.fan_out_last_user_id != after_id:
            return None
        now = timezone.now()
        chunks = [user_ids[start : start + size] for start in range(0, len(user_ids), size)]
        batches = Batch.objects.bulk_create(
            Batch(task_id=task_id, seq=task.batches_total + n, user_ids=chunk, enqueued_at=now)
            for n, chunk in enumerate(chunks)
        )
        EmailTask.objects.filter(pk=task_id).transition(
            to=EmailTask.PROGRESS,
            fan_out_last_user_id=user_ids[-1],
            batches_total=F("batches_total") + len(batches),
            total=F("total") + len(user_ids),
            heartbeat=now,
        )
    return batches


def end_fan_out(*, task_id: int) -> None:
    """Fan-out done; the suppressed members are counted now, once, after the batches are
    out (a count over a large course must not delay the first message)."""
    EmailTask.objects.filter(pk=task_id, state__in=EmailTask.RUNNING_STATES).update(
        fan_out_done=True, heartbeat=timezone.now(), suppressed=suppressed_members(task_id)
    )
    finish_if_complete(task_id=task_id)


def suppressed_members(task_id: int) -> int:
    task = EmailTask.objects.select_related("email").get(pk=task_id)
    if task.resend_of_id:  # a resend reaches the failed, not the groups
        return 0
    return recipients.count_suppressed(**recipients.email_audience(email=task.email))
