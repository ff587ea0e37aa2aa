"""Retention: what a finished send keeps once it is old. Its batches' recipient lists and its
failed / skipped rows go, and so do old feedback events; each send keeps its counts (its
batches are folded into one summary batch, so every count query reads as before), its email
(the history's View) and its audit trail."""

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import app_settings
from ..exceptions import BadRequestError
from ..models import Batch, EmailTask, FeedbackEvent, RecipientOutcome

# Sends folded per transaction: each transaction stays short however many there are.
SENDS_PER_TRANSACTION = 50


@dataclass(frozen=True)
class Purge:
    sends: int
    batches: int
    outcomes: int
    feedback_events: int


def purge_sends(*, older_than_days: int, dry_run: bool = False) -> Purge:
    """Fold every send that finished more than ``older_than_days`` ago; delete feedback
    events received before then. A dry run counts what would go and changes nothing."""
    cutoff = retention_cutoff(older_than_days)
    sends = EmailTask.objects.filter(
        state__in=EmailTask.FINAL_STATES, finished_at__lt=cutoff, purged_at__isnull=True
    )
    events = FeedbackEvent.objects.filter(received__lt=cutoff)
    if dry_run:
        return Purge(
            sends=sends.count(),
            batches=Batch.objects.filter(task__in=sends).count(),
            outcomes=RecipientOutcome.objects.filter(task__in=sends).count(),
            feedback_events=events.count(),
        )
    totals = Purge(0, 0, 0, 0)
    ids = list(sends.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), SENDS_PER_TRANSACTION):
        totals = added(totals, fold_sends(ids[start : start + SENDS_PER_TRANSACTION]))
    deleted_events = events.delete()[0]  # one DELETE: nothing cascades from an event
    return added(totals, Purge(0, 0, 0, deleted_events))


def retention_cutoff(older_than_days: int) -> datetime.datetime:
    """Soft bounces are counted over SOFT_BOUNCE_DAYS of feedback events: a shorter
    retention would forget them before they add up, so it is refused."""
    floor = app_settings.get("SOFT_BOUNCE_DAYS")
    if older_than_days < floor:
        raise BadRequestError(
            _(
                "Keep sends at least %(days)d days (SOFT_BOUNCE_DAYS): soft bounces are counted "
                "over that window."
            )
            % {"days": floor},
            field="older_than_days",
        )
    return timezone.now() - datetime.timedelta(days=older_than_days)


def fold_sends(task_ids: list[int]) -> Purge:
    """One transaction: these sends' batches become one summary batch each."""
    with transaction.atomic():
        sums = summary_batches(task_ids)
        deleted_outcomes = RecipientOutcome.objects.filter(task_id__in=task_ids).delete()[0]
        batches = Batch.objects.filter(task_id__in=task_ids)
        # One DELETE: .delete() would load every batch with its id list to cascade to
        # outcomes, which are gone already (a 1,000,000-learner send has 2,000 batches).
        deleted_batches = batches._raw_delete(batches.db)
        Batch.objects.bulk_create(sums)
        EmailTask.objects.filter(pk__in=task_ids).update(purged_at=timezone.now())
    return Purge(len(task_ids), deleted_batches, deleted_outcomes, 0)


def summary_batches(task_ids: list[int]) -> list[Batch]:
    rows = (
        Batch.objects.filter(task_id__in=task_ids)
        .values("task_id")
        .annotate(sent=Sum("sent"), failed=Sum("failed"), skipped=Sum("skipped"), n=Count("pk"))
    )
    return [
        Batch(
            task_id=row["task_id"],
            seq=0,
            user_ids=[],
            state=Batch.DONE,
            sent=row["sent"],
            failed=row["failed"],
            skipped=row["skipped"],
            finished_at=timezone.now(),
        )
        for row in rows
    ]


def added(a: Purge, b: Purge) -> Purge:
    return Purge(*(x + y for x, y in zip(vars(a).values(), vars(b).values(), strict=True)))
