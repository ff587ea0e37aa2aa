"""The send pipeline through real celery worker processes, Redis, PostgreSQL and an SMTP
sink that records every message: what arrives, how often, and what staff are shown."""

import datetime
import time

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from bulk_email import api
from bulk_email.models import EmailTask, RecipientOutcome
from lms_stub.models import Cohort
from lms_stub.smtp_sink import Fault
from tests.factories import staff
from tests.live_pipeline import expected_learner_addresses, rcpt_counts, seeded_course, send_now

pytestmark = pytest.mark.integration
ORDER = [
    EmailTask.QUEUING,
    EmailTask.PENDING,
    EmailTask.STARTED,
    EmailTask.PROGRESS,
    EmailTask.SUCCESS,
]


def test_two_thousand_learners_each_get_exactly_one_copy(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(2000)
    expected = expected_learner_addresses(course_id)
    live_pipeline.start_worker()
    task = send_now(course_id, instructor, ["learners", "track:verified"])
    task = live_pipeline.wait_for_state(task, EmailTask.SUCCESS, timeout=120)
    received = rcpt_counts(smtp_sink)
    assert set(received) == expected and set(received.values()) == {1}
    status = api.task_status(task=task)
    assert (status.total, status.sent, status.failed) == (len(expected), len(expected), 0)
    seen = [ORDER.index(state) for state in task.seen_states]
    assert seen == sorted(seen) and task.started_at and task.finished_at


def test_a_worker_killed_mid_send_loses_no_one(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(5000)
    expected = expected_learner_addresses(course_id)
    # A batch message the killed worker had taken but not started comes back after the
    # broker's visibility timeout (and kombu's sweep, ~100 s); the dispatcher is quicker.
    live_pipeline.env["BULK_EMAIL_PENDING_REQUEUE_SECONDS"] = "10"
    worker = live_pipeline.start_worker(concurrency=2)
    task = send_now(course_id, instructor, ["learners"])
    smtp_sink.wait_for(1000, timeout=60)
    live_pipeline.kill(worker)
    in_flight_at_kill = len(smtp_sink.messages)
    live_pipeline.start_worker(concurrency=2)
    task = live_pipeline.wait_for_state(task, EmailTask.SUCCESS, timeout=180)
    received = rcpt_counts(smtp_sink)
    lost = expected - set(received)
    duplicates = sum(count - 1 for count in received.values())
    assert 1000 <= in_flight_at_kill < len(expected)
    assert lost == set()
    assert duplicates <= 2  # at most the one message in flight in each of the 2 pool processes
    status = api.task_status(task=task)
    assert status.sent == len(expected) and status.failed == 0


def test_a_throttling_storm_delays_but_delivers_everything(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(600, "course-v1:PipeX+Storm+2026")
    expected = expected_learner_addresses(course_id)
    smtp_sink.faults.append(Fault.throttle(probability=0.3, times=60))
    live_pipeline.start_worker()
    task = send_now(course_id, instructor, ["learners"])
    task = live_pipeline.wait_for_state(task, EmailTask.SUCCESS, timeout=120)
    assert set(rcpt_counts(smtp_sink)) == expected
    status = api.task_status(task=task)
    assert (status.sent, status.failed) == (len(expected), 0)
    assert status.retries > 0 and smtp_sink.faults[0].fired == 60


def test_permanent_failures_are_exactly_those_and_resend_reaches_exactly_them(
    live_pipeline, smtp_sink
):
    course_id, instructor = seeded_course(300, "course-v1:PipeX+Perm+2026")
    expected = sorted(expected_learner_addresses(course_id))
    refused = expected[5], expected[50], expected[150]
    smtp_sink.faults.extend(Fault.reject(address) for address in refused)
    live_pipeline.start_worker()
    task = live_pipeline.wait_for_state(
        send_now(course_id, instructor, ["learners"]), EmailTask.SUCCESS
    )
    failed = RecipientOutcome.objects.filter(task=task, status="failed").select_related("user")
    assert sorted((o.user.email, o.code) for o in failed) == [(a, 550) for a in sorted(refused)]
    status = api.task_status(task=task)
    assert (status.sent, status.failed) == (len(expected) - 3, 3)

    smtp_sink.faults.clear()
    smtp_sink.messages.clear()
    resend = api.resend_to_failed(access=staff(task.email.course_id, instructor), task=task)
    live_pipeline.wait_for_state(resend, EmailTask.SUCCESS)
    assert sorted(rcpt_counts(smtp_sink)) == sorted(refused)


def test_revoke_mid_send_stops_the_batch_in_hand_within_seconds(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(2000, "course-v1:PipeX+Revoke+2026")
    live_pipeline.start_worker(concurrency=1, BULK_EMAIL_MAX_SEND_RATE="100")
    task = send_now(course_id, instructor, ["learners"])
    smtp_sink.wait_for(50, timeout=30)
    api.revoke(access=staff(task.email.course_id, instructor), task=task)
    time.sleep(3)  # the batch in hand looks every second (at 100/s: about 100 more at most)
    settled = len(smtp_sink.messages)
    time.sleep(2)
    task.refresh_from_db()
    assert task.state == EmailTask.REVOKED
    assert len(smtp_sink.messages) == settled < 500  # the first batch of 500 was not finished
    assert api.task_status(task=task).sent == settled < task.total


def test_a_scheduled_send_fires_once_when_due_and_sends_the_edited_email(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(40, "course-v1:PipeX+Sched+2026")
    cohort = Cohort.objects.get(course_id=course_id, is_default=True)
    task = api.send_email(
        access=staff(course_id, instructor),
        subject="Draft",
        html="<p>Draft</p>",
        targets=["learners"],
        send_at=timezone.now() + datetime.timedelta(hours=1),
    )
    api.edit_scheduled(
        access=staff(task.email.course_id, instructor),
        task=task,
        subject="Final — 最终",
        html="<p>Final</p>",
        targets=[f"cohort:{cohort.pk}"],
        send_at=timezone.now() + datetime.timedelta(hours=2),
    )
    live_pipeline.start_worker()  # its beat dispatcher runs every second
    time.sleep(3)
    assert EmailTask.objects.get(pk=task.pk).state == EmailTask.SCHEDULED
    # Time travel: the hour has passed.
    EmailTask.objects.filter(pk=task.pk).update(send_at=timezone.now())
    task = live_pipeline.wait_for_state(task, EmailTask.SUCCESS)
    time.sleep(3)  # more dispatcher rounds: it must not fire again
    members = set(cohort.memberships.values_list("user_id", flat=True))
    assert rcpt_counts(smtp_sink).most_common(1)[0][1] == 1
    assert len(smtp_sink.messages) == task.total > 0
    assert {m.parsed()["Subject"] for m in smtp_sink.messages} == {"Final — 最终"}
    reached = set(
        get_user_model()
        .objects.filter(email__in=list(rcpt_counts(smtp_sink)))
        .values_list("pk", flat=True)
    )
    assert reached <= members


def test_smtp_server_down_at_start_fails_the_send_with_a_reason(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(50, "course-v1:PipeX+Down+2026")
    live_pipeline.start_worker(EMAIL_PORT="9")  # nothing listens on the discard port
    task = live_pipeline.wait_for_state(
        send_now(course_id, instructor, ["learners"]), EmailTask.FAILURE
    )
    assert "refused the connection" in task.error
    assert api.task_status(task=task).sent == 0
    assert not RecipientOutcome.objects.filter(task=task).exists()
