"""Faults survived (issue 9, first part), with real worker processes, Redis, PostgreSQL and
the fault-injecting SMTP sink. Each test states the numbers it promises: received, lost
(always 0), duplicated, and what the instructor is shown."""

import datetime
import time

import pytest
from django.db import connection
from django.utils import timezone

from bulk_email import api
from bulk_email.models import EmailTask, RecipientOutcome
from lms_stub.smtp_sink import Fault
from tests.live_pipeline import expected_learner_addresses, rcpt_counts, seeded_course, send_now

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def tally(sink, expected: set[str]) -> tuple[int, int, int]:
    """(received, lost, duplicated) of the expected addresses."""
    received = rcpt_counts(sink)
    lost = len(expected - set(received))
    return sum(received.values()), lost, sum(count - 1 for count in received.values())


def test_two_worker_crashes_in_one_send(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(3000, "course-v1:Fault+Kill2+2026")
    expected = expected_learner_addresses(course_id)
    worker = live_pipeline.start_worker(concurrency=2)
    task = send_now(course_id, instructor, ["learners"])
    for reached in (600, 1600):
        smtp_sink.wait_for(reached, timeout=60)
        live_pipeline.kill(worker)
        worker = live_pipeline.start_worker(concurrency=2)
    task = live_pipeline.wait_for_state(task, EmailTask.SUCCESS, timeout=180)
    received, lost, duplicated = tally(smtp_sink, expected)
    # At most one message in flight per pool process, per crash.
    assert received >= len(expected) and lost == 0 and duplicated <= 4
    status = api.task_status(task=task)
    assert (status.sent, status.failed) == (len(expected), 0)


def test_421_on_every_50th_message(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(1200, "course-v1:Fault+421+2026")
    expected = expected_learner_addresses(course_id)
    smtp_sink.faults.append(Fault.closing_421_every(50))
    live_pipeline.start_worker()
    task = live_pipeline.wait_for_state(
        send_now(course_id, instructor, ["learners"]), EmailTask.SUCCESS, timeout=120
    )
    received, lost, duplicated = tally(smtp_sink, expected)
    assert (received, lost, duplicated) == (len(expected), 0, 0)
    # Two connections send at once, so a multiple of 50 is sometimes passed between MAILs.
    assert smtp_sink.faults[0].fired >= 3
    status = api.task_status(task=task)
    assert (status.sent, status.failed) == (len(expected), 0) and status.retries > 0


def test_a_recipient_domain_answering_550(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(400, "course-v1:Fault+Domain+2026")
    expected = expected_learner_addresses(course_id)
    smtp_sink.faults.append(Fault.reject_domain("learners.example.com"))
    live_pipeline.start_worker()
    task = live_pipeline.wait_for_state(
        send_now(course_id, instructor, ["learners", "staff"]), EmailTask.SUCCESS
    )
    refused = {a for a in expected if a.endswith("@learners.example.com")}
    failed = RecipientOutcome.objects.filter(task=task, status="failed")
    assert {o.user.email for o in failed.select_related("user")} == refused
    assert set(failed.values_list("code", flat=True)) == {550}
    status = api.task_status(task=task)
    assert status.failed == len(refused) and status.sent == len(rcpt_counts(smtp_sink)) > 0


def test_a_scheduled_send_due_while_workers_are_down_fires_once_when_they_return(
    live_pipeline, smtp_sink
):
    course_id, instructor = seeded_course(60, "course-v1:Fault+Down+2026")
    task = api.send_email(
        course_id=course_id,
        sender=instructor,
        subject="Due while down",
        html="<p>x</p>",
        targets=["learners"],
        send_at=timezone.now() + datetime.timedelta(hours=1),
    )
    EmailTask.objects.filter(pk=task.pk).update(send_at=timezone.now())  # due, nobody running
    time.sleep(1)
    live_pipeline.start_worker()
    task = live_pipeline.wait_for_state(task, EmailTask.SUCCESS)
    time.sleep(3)  # further dispatcher rounds
    counts = rcpt_counts(smtp_sink)
    assert len(counts) == task.total and set(counts.values()) == {1}


def test_the_database_connections_dropped_mid_send(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(2000, "course-v1:Fault+PG+2026")
    expected = expected_learner_addresses(course_id)
    live_pipeline.start_worker(concurrency=2, BULK_EMAIL_MAX_SEND_RATE="500")
    task = send_now(course_id, instructor, ["learners"])
    smtp_sink.wait_for(300, timeout=60)
    with connection.cursor() as cursor:  # every other session of the test database
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    task = live_pipeline.wait_for_state(task, EmailTask.SUCCESS, timeout=180)
    received, lost, duplicated = tally(smtp_sink, expected)
    assert received >= len(expected) and lost == 0 and duplicated <= 2
    assert api.task_status(task=task).sent == len(expected)


REDIS_START = (
    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def restart_redis() -> None:
    """Stop the broker (it keeps nothing on disk: every queued message is lost) and start it
    again the way this machine does."""
    import subprocess

    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False)
    time.sleep(1)
    subprocess.run(REDIS_START, shell=True, check=True)
    time.sleep(1)


def test_redis_restarted_mid_send_loses_nothing(live_pipeline, smtp_sink, redis_url):
    import shutil

    if shutil.which("redis-server") is None or not redis_url.startswith("redis://127.0.0.1:6379"):
        pytest.skip("needs this machine's own Redis on 127.0.0.1:6379 to restart")
    course_id, instructor = seeded_course(3000, "course-v1:Fault+Redis+2026")
    expected = expected_learner_addresses(course_id)
    live_pipeline.start_worker(
        concurrency=2, BULK_EMAIL_MAX_SEND_RATE="400", BULK_EMAIL_PENDING_REQUEUE_SECONDS="8"
    )
    task = send_now(course_id, instructor, ["learners"])
    smtp_sink.wait_for(500, timeout=60)
    restart_redis()  # the queued batches' messages are gone with it
    task = live_pipeline.wait_for_state(task, EmailTask.SUCCESS, timeout=240)
    received, lost, duplicated = tally(smtp_sink, expected)
    assert received >= len(expected) and lost == 0 and duplicated <= 2
    assert api.task_status(task=task).sent == len(expected)


def test_the_smtp_server_down_for_a_while_mid_send(live_pipeline, smtp_sink):
    """The issue's two minutes, scaled to 10 s with the tests' short retry delay."""
    course_id, instructor = seeded_course(2000, "course-v1:Fault+Outage+2026")
    expected = expected_learner_addresses(course_id)
    live_pipeline.start_worker(concurrency=2, BULK_EMAIL_MAX_SEND_RATE="400")
    task = send_now(course_id, instructor, ["learners"])
    smtp_sink.wait_for(300, timeout=60)
    smtp_sink.stop()
    time.sleep(10)
    smtp_sink.restart()
    task = live_pipeline.wait_for_state(task, EmailTask.SUCCESS, timeout=240)
    received, lost, duplicated = tally(smtp_sink, expected)
    assert received >= len(expected) and lost == 0 and duplicated <= 2
    status = api.task_status(task=task)
    assert (status.sent, status.failed) == (len(expected), 0) and status.retries > 0


def test_a_send_to_myself_is_not_stuck_behind_three_large_sends(live_pipeline, smtp_sink):
    """Three courses send 20,000 each at once; an instructor's test to Myself goes to the
    default queue, which a worker of its own serves: it arrives within seconds."""
    courses = [seeded_course(20_000, f"course-v1:Load+L{n}+2026") for n in range(3)]
    live_pipeline.start_worker(concurrency=2, queues="large", beat=False)
    live_pipeline.start_worker(concurrency=1, queues="default")
    large = [send_now(course_id, sender, ["learners"]) for course_id, sender in courses]
    assert {task.queue for task in large} == {"large"}
    smtp_sink.wait_for(2000, timeout=60)
    course_id, instructor = courses[0]
    sent_at = time.monotonic()
    mine = send_now(course_id, instructor, ["myself"], subject="Test to myself")
    assert mine.queue == "default"
    live_pipeline.wait_for_state(mine, EmailTask.SUCCESS, timeout=30)
    waited = time.monotonic() - sent_at
    unfinished = EmailTask.objects.filter(pk__in=[t.pk for t in large]).exclude(
        state=EmailTask.SUCCESS
    )
    assert waited < 5 and unfinished.exists()
    assert instructor.email in rcpt_counts(smtp_sink)
