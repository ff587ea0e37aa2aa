"""Retiring a user (GDPR erasure): opted out of every course, nothing personal left in
bulk_email's tables, every send's counts unchanged."""

import json

import pytest
from django.core import serializers

from bulk_email import api, pipeline
from bulk_email.models import (
    Batch,
    EmailTask,
    FeedbackEvent,
    Optout,
    RecipientOutcome,
    Suppression,
    TaskCounts,
)
from lms_stub.models import Course
from lms_stub.smtp_sink import Fault
from tests.factories import enroll, make_course, make_task, run_fan_out, suppress

pytestmark = pytest.mark.django_db

BULK_EMAIL_MODELS = (Batch, EmailTask, FeedbackEvent, Optout, RecipientOutcome, Suppression)


def send(course, instructor) -> EmailTask:
    task = make_task(course, instructor)
    for batch_id in run_fan_out(task):
        pipeline.send_batch(batch_id=batch_id)
    task.refresh_from_db()
    return task


def feedback_about(user, task) -> FeedbackEvent:
    return FeedbackEvent.objects.create(
        kind=FeedbackEvent.SOFT_BOUNCE,
        dedupe_key=f"test-{user.pk}-{task.pk}",
        address=user.email,
        user=user,
        task=task,
        course_id=task.email.course_id,
        source="dsn",
        status_code="4.2.2",
        diagnostic=f"452 4.2.2 <{user.email}>: mailbox full",
    )


def rows_naming(user) -> list[str]:
    """Every row of bulk_email's tables (but the opt-outs kept on purpose) that names the
    user: their id in a user field or a batch's list, or their address anywhere."""
    found = []
    for model in BULK_EMAIL_MODELS:
        if model is Optout:
            continue
        for row in json.loads(serializers.serialize("json", model.objects.all())):
            fields = row["fields"]
            ids = fields.get("user_ids") or []
            if user.email in json.dumps(fields) or fields.get("user") == user.pk or user.pk in ids:
                found.append(f"{row['model']} {row['pk']}")
    return found


@pytest.fixture
def sent_world(small_batches, smtp_settings, smtp_sink, course_with_learners):
    """Two sends to a course of 7 learners: learner 4 failed in the first, was sent the
    second; a soft bounce and a suppression name learner 4; learner 4 also has a role-less
    enrollment in a second course, and had opted out of a third by link."""
    course, instructor, learners = course_with_learners
    retiring = learners[4]
    smtp_sink.faults.append(Fault.reject(retiring.email))
    first = send(course, instructor)
    smtp_sink.faults.clear()
    second = send(course, instructor)
    feedback_about(retiring, second)
    suppress(retiring.email.upper())
    enroll(retiring, make_course("course-v1:Other+C2+2026"))
    api.opt_out(user_id=retiring.pk, course_id="course-v1:Third+C3+2026", how=Optout.LINK)
    return retiring, first, second, learners


@pytest.fixture
def small_batches(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "EMAILS_PER_TASK": 3}


def test_retiring_leaves_nothing_personal_and_every_count(sent_world):
    retiring, first, second, _ = sent_world
    counts_before = (first.counts(), second.counts(), second.bounced)
    assert first.counts() == TaskCounts(total=7, sent=6, failed=1, skipped=0)
    assert len(rows_naming(retiring)) >= 5  # outcome, 2 batches, event, suppression

    done = api.retire_user(user_id=retiring.pk)

    assert rows_naming(retiring) == []
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.counts(), second.counts(), second.bounced) == counts_before
    assert done == api.Retirement(
        opted_out_of=2, outcomes_deleted=1, batches_scrubbed=2, suppressions_deleted=1,
        feedback_anonymized=1,
    )  # fmt: skip
    event = FeedbackEvent.objects.get()
    assert (event.kind, event.task_id, event.address, event.diagnostic) == (
        FeedbackEvent.SOFT_BOUNCE, second.pk, "", ""
    )  # fmt: skip


def test_a_retired_user_is_opted_out_of_every_course_and_mailed_by_none(sent_world):
    retiring, first, *_ = sent_world
    api.retire_user(user_id=retiring.pk)
    optouts = dict(Optout.objects.filter(user=retiring).values_list("course_id", "how"))
    assert optouts == {
        first.email.course_id: Optout.RETIRED,
        "course-v1:Other+C2+2026": Optout.RETIRED,
        "course-v1:Third+C3+2026": Optout.LINK,  # kept as it was made
    }
    course = Course.objects.get(pk=first.email.course_id)
    third = send(course, first.requester)
    assert third.counts() == TaskCounts(total=6, sent=6, failed=0, skipped=0)


def test_retiring_twice_changes_nothing_more(sent_world):
    retiring, *_ = sent_world
    api.retire_user(user_id=retiring.pk)
    assert api.retire_user(user_id=retiring.pk) == api.Retirement(0, 0, 0, 0, 0)


def test_a_batch_not_yet_sent_skips_the_retired_user_and_loses_the_id_once_done(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    task = make_task(course, instructor)
    batch_ids = run_fan_out(task)
    pending = Batch.objects.filter(task=task, state=Batch.PENDING).first()
    retiring = next(u for u in learners if u.pk in pending.user_ids)
    api.retire_user(user_id=retiring.pk)
    pending.refresh_from_db()
    assert retiring.pk in pending.user_ids  # a worker may hold it: left until it ends
    for batch_id in batch_ids:
        pipeline.send_batch(batch_id=batch_id)
    received = {address for message in smtp_sink.messages for address in message.rcpt_tos}
    assert retiring.email not in received and len(received) == 6
    api.retire_user(user_id=retiring.pk)
    assert rows_naming(retiring) == []


def test_retirement_keeps_removals_in_the_admin_log_but_not_the_address():
    from django.contrib.admin.models import LogEntry

    from bulk_email.api import suppressions
    from tests.factories import make_user

    retiring = make_user("leaving", email="Leaving@Example.org")
    other = make_user("staying", email="staying@example.org")
    operator = make_user("operator")
    for address in ("leaving@example.org", "staying@example.org"):
        suppressions.remove_suppressions(
            suppressions=[suppress(address)], removed_by=operator, reason="mailbox fixed"
        )
    done = api.retire_user(user_id=retiring.pk)
    assert done.removal_log_anonymized == 1
    assert suppressions.removal_log(address="leaving@example.org") == []
    assert suppressions.removal_log(address=other.email) == [
        "Removed from the suppression list: mailbox fixed"
    ]
    assert LogEntry.objects.count() == 2
    assert not LogEntry.objects.filter(object_repr__icontains="leaving").exists()
