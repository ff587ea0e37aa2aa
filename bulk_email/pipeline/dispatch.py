"""The periodic dispatcher (celery beat): due scheduled sends, and work lost to a crash or a
broker outage picked up again. Each item is handed out once per round (row locks with
SKIP LOCKED); claims make a duplicate harmless."""

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import app_settings
from ..models import Batch, EmailTask
from .batches import lease
from .fan_out import Job


@dataclass
class Dispatch:
    """What one dispatcher round wants enqueued."""

    fan_outs: list[Job]
    batches: list[Job]


def dispatch(*, now: datetime.datetime | None = None) -> Dispatch:
    """One round: due scheduled sends become Pending, and work lost to a crash or a broker
    outage is picked up again."""
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
    EmailTask.objects.complete().transition(to=EmailTask.SUCCESS, finished_at=timezone.now())


def release_due_scheduled(now: datetime.datetime) -> list[EmailTask]:
    """Scheduled -> Pending for those due, each by exactly one dispatcher (row locks)."""
    with transaction.atomic():
        due = list(
            EmailTask.objects.select_for_update(skip_locked=True).filter(
                state=EmailTask.SCHEDULED, send_at__lte=now
            )
        )
        EmailTask.objects.filter(pk__in=[t.pk for t in due]).transition(
            from_=[EmailTask.SCHEDULED], to=EmailTask.PENDING, heartbeat=now
        )
    return due


def stalled_fan_outs(now: datetime.datetime) -> list[EmailTask]:
    """Queuing (its enqueue failed), Pending or running fan-outs with no sign of life for a
    lease; their heartbeat is moved to now so the next round leaves them alone."""
    stale = now - lease()
    stalled = EmailTask.objects.filter(
        Q(heartbeat__lt=stale) | Q(heartbeat__isnull=True, created__lt=stale),
        state__in=(EmailTask.QUEUING, EmailTask.PENDING, *EmailTask.RUNNING_STATES),
        fan_out_done=False,
    )
    with transaction.atomic():
        tasks = list(stalled.select_for_update(skip_locked=True))
        EmailTask.objects.filter(pk__in=[t.pk for t in tasks]).update(heartbeat=now)
        EmailTask.objects.filter(pk__in=[t.pk for t in tasks]).transition(
            from_=[EmailTask.QUEUING], to=EmailTask.PENDING
        )
    return tasks


def abandoned_batches(now: datetime.datetime) -> list[Job]:
    """Claimed batches whose worker shows no progress for a lease: released to Pending."""
    with transaction.atomic():
        batches = list(
            Batch.objects.select_for_update(skip_locked=True)
            .select_related("task")
            .filter(state=Batch.CLAIMED, heartbeat__lt=now - lease())
            .exclude(task__state__in=EmailTask.STOPPED_STATES)
        )
        Batch.objects.filter(pk__in=[b.pk for b in batches]).transition(
            from_=[Batch.CLAIMED], to=Batch.PENDING, claim_token="", enqueued_at=now
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
            .exclude(task__state__in=EmailTask.STOPPED_STATES)
        )
        Batch.objects.filter(pk__in=[b.pk for b in batches]).update(enqueued_at=now)
    return [Job(batch.pk, batch.task.queue) for batch in batches]
