"""Retention: old finished sends folded (lists and failed/skipped rows gone), every count,
the email and the audit trail kept; recent sends and recent feedback untouched."""

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from bulk_email import api, pipeline, tasks
from bulk_email.models import (
    Batch,
    EmailTask,
    FeedbackEvent,
    RecipientOutcome,
    SendAuditEntry,
    TaskCounts,
)
from lms_stub.smtp_sink import Fault
from tests.factories import make_task, run_fan_out

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_batches(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "EMAILS_PER_TASK": 3}


def send(course, instructor, *, days_ago: int) -> EmailTask:
    task = make_task(course, instructor)
    for batch_id in run_fan_out(task):
        pipeline.send_batch(batch_id=batch_id)
    finished = timezone.now() - datetime.timedelta(days=days_ago)
    EmailTask.objects.filter(pk=task.pk).update(finished_at=finished)
    SendAuditEntry.objects.create(task=task, actor=instructor, action=SendAuditEntry.CREATED)
    task.refresh_from_db()
    return task


def feedback(task, *, days_ago: int) -> FeedbackEvent:
    event = FeedbackEvent.objects.create(
        kind=FeedbackEvent.HARD_BOUNCE, dedupe_key=f"k{task.pk}-{days_ago}", task=task, source="dsn"
    )
    received = timezone.now() - datetime.timedelta(days=days_ago)
    FeedbackEvent.objects.filter(pk=event.pk).update(received=received)
    return event


@pytest.fixture
def old_and_new(small_batches, smtp_settings, smtp_sink, course_with_learners):
    course, instructor, learners = course_with_learners
    smtp_sink.faults.append(Fault.reject(learners[2].email))
    old = send(course, instructor, days_ago=100)
    new = send(course, instructor, days_ago=1)
    feedback(old, days_ago=99), feedback(new, days_ago=1)
    return old, new


def listed_counts(*tasks_) -> list[tuple]:
    rows = EmailTask.objects.filter(pk__in=[t.pk for t in tasks_]).with_counts().order_by("pk")
    return [(t.sum_sent, t.sum_failed, t.sum_skipped) for t in rows]


def test_an_old_send_keeps_its_counts_email_and_audit_and_loses_its_lists(old_and_new):
    old, new = old_and_new
    before = (old.counts(), new.counts(), listed_counts(old, new))
    assert old.counts() == TaskCounts(total=7, sent=6, failed=1, skipped=0)

    purge = api.purge_sends(older_than_days=30)

    assert purge == api.Purge(sends=1, batches=3, outcomes=1, feedback_events=1)
    assert (old.counts(), new.counts(), listed_counts(old, new)) == before
    folded = Batch.objects.get(task=old)
    assert (folded.user_ids, folded.state) == ([], Batch.DONE)
    assert not RecipientOutcome.objects.filter(task=old).exists()
    assert RecipientOutcome.objects.filter(task=new).count() == 1
    assert Batch.objects.filter(task=new).count() == 3
    assert list(FeedbackEvent.objects.values_list("task_id", flat=True)) == [new.pk]
    old.refresh_from_db()
    assert old.purged_at and old.email.html_message and old.audit_entries.count() == 1
    assert api.purge_sends(older_than_days=30) == api.Purge(0, 0, 0, 0)  # again: nothing


def test_a_dry_run_counts_and_changes_nothing(old_and_new, capsys):
    call_command("purge_sends", "--older-than", "30", "--dry-run")
    assert "Would fold 1 send finished more than 30 days ago" in capsys.readouterr().out
    assert Batch.objects.count() == 6 and FeedbackEvent.objects.count() == 2


def test_the_purge_line_agrees_each_word_with_its_own_number_in_french(old_and_new, capsys):
    """One send, several batches: "1 envoi terminé", "3 lots", never "envoi(s)"."""
    with translation.override("fr"):
        call_command("purge_sends", "--older-than", "30", "--dry-run")
    out = capsys.readouterr().out
    assert out.startswith("Regrouperait 1 envoi terminé il y a plus de 30 jours : "), out
    assert "(s)" not in out


def test_a_retention_shorter_than_the_soft_bounce_window_is_refused(old_and_new):
    with pytest.raises(CommandError, match="at least 7 days"):
        call_command("purge_sends", "--older-than", "3")
    assert Batch.objects.count() == 6


def test_the_beat_task_purges_only_when_retention_is_set(old_and_new, settings):
    tasks.purge_sends()
    assert Batch.objects.count() == 6
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "RETENTION_DAYS": 30}
    tasks.purge_sends()
    assert Batch.objects.count() == 4
