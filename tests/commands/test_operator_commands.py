"""send_course_email, bulk_email_status and fail_stuck_tasks, as an operator runs them."""

import datetime
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from bulk_email import api
from bulk_email.management.commands import send_course_email
from bulk_email.management.commands.send_course_email import progress_line
from bulk_email.models import Batch, BulkEmailFlag, EmailTask
from lms_stub.models import CourseAccessRole
from tests.factories import (
    enroll,
    give_role,
    make_cohort,
    make_course,
    make_email,
    make_user,
    opt_out,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    course = make_course()
    flag = BulkEmailFlag.current()
    flag.enabled, flag.require_course_email_auth = True, False
    flag.save()
    give_role(make_user("prof"), course, CourseAccessRole.INSTRUCTOR)
    enroll(make_user("ada"), course)
    return course


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_send_course_email_saves_a_send(course, tmp_path):
    message = tmp_path / "message.html"
    message.write_text("<p>Bonjour — 你好</p>", encoding="utf-8")
    output = run(
        "send_course_email",
        *("--course-id", course.id, "--sender", "prof", "--subject", "Semaine 1"),
        *("--message-file", str(message), "--to", "myself, learners"),
    )
    task = EmailTask.objects.get()
    assert f"Task {task.pk}: Queuing" in output
    assert "你好" in task.email.html_message
    assert sorted(t.key for t in task.email.targets.all()) == ["learners", "myself"]


def test_send_course_email_says_who_each_group_leaves_out_and_why(course):
    quitter = make_user()
    enroll(quitter, course)
    opt_out(quitter, course.id)
    enroll(make_user(is_active=False), course)
    output = run(
        "send_course_email",
        *("--course-id", course.id, "--sender", "prof", "--subject", "S", "--message", "<p>x</p>"),
        *("--to", "learners,myself"),
    )
    assert "  Myself: 1 will receive it; nobody is left out.\n" in output
    assert (
        "  All Learners: 1 will receive it: 2 left out — 1 opted out,"
        " 1 has not activated their account.\n"
    ) in output


def test_send_course_email_schedules(course):
    day = datetime.date.today() + datetime.timedelta(days=30)  # within MAX_SCHEDULE_DAYS
    run(
        "send_course_email",
        *("--course-id", course.id, "--sender", "prof", "--subject", "Later"),
        *("--message", "<p>x</p>", "--to", "staff", "--send-at", f"{day}T09:00+01:00"),
    )
    task = EmailTask.objects.get()
    assert task.state == EmailTask.SCHEDULED
    assert task.send_at == datetime.datetime(
        day.year, day.month, day.day, 8, 0, tzinfo=datetime.UTC
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--sender", "nobody"), "No user"),
        (("--sender", "ada"), "Staff and Admins"),
        (("--to", "everyone"), "Not a group of this course"),
        (("--send-at", "tomorrow"), "ISO 8601"),
        (("--subject", "a\nb"), ""),
    ],
)
def test_send_course_email_refuses_with_a_clear_message(course, arguments, message):
    defaults = {"--sender": "prof", "--subject": "S", "--to": "myself", "--send-at": None}
    defaults.update(dict(zip(arguments[::2], arguments[1::2], strict=True)))
    argv = ["send_course_email", "--course-id", course.id, "--message", "<p>x</p>"]
    for flag, value in defaults.items():
        argv += [flag, value] if value else []
    with pytest.raises(CommandError, match=message or None):
        run(*argv)
    assert not EmailTask.objects.exists()


def test_bulk_email_status_lists_sends_with_counts(course):
    task = EmailTask.objects.create(
        email=make_email(course.id, subject="Hello"), state=EmailTask.PROGRESS, total=5
    )
    Batch.objects.create(task=task, seq=0, user_ids=[1, 2, 3, 4, 5], sent=3, failed=1)
    output = run("bulk_email_status", "--course-id", course.id)
    assert "Progress" in output and "Hello" in output
    assert " 5       3      1       0" in output


def test_fail_stuck_tasks_ends_only_old_queuing_sends(course):
    email = make_email(course.id)
    old = EmailTask.objects.create(email=email, state=EmailTask.QUEUING)
    EmailTask.objects.filter(pk=old.pk).update(created=timezone.now() - datetime.timedelta(hours=2))
    fresh = EmailTask.objects.create(email=email, state=EmailTask.QUEUING)
    assert f"would fail: {old.pk}" in run("fail_stuck_tasks", "--dry-run")
    assert f"failed: {old.pk}" in run("fail_stuck_tasks", "--minutes", "30")
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.state, fresh.state) == (EmailTask.FAILURE, EmailTask.QUEUING)
    assert "broker" in old.error


def test_progress_line():
    status = api.TaskStatus(
        *(1, "PROGRESS", "Progress", 200, 90, 5, 5, 0),
        *(timezone.now(), None, None, None, ""),
    )
    assert progress_line(status, width=10) == (
        "[#####     ]  50% 100/200  90 sent, 5 failed, 5 skipped  Progress"
    )


class WaitClock:
    """The wait's clock: each sleep advances it at once; ``at(seconds, do)`` is something that
    happens then (a worker finishing the send), so no test waits in earnest."""

    def __init__(self):
        self.now = 0.0
        self.events: list[tuple[float, object]] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        due = [event for event in self.events if event[0] <= self.now]
        self.events = [event for event in self.events if event[0] > self.now]
        for _when, do in due:
            do()


def finish(task_id: int) -> None:
    EmailTask.objects.filter(pk=task_id).update(state=EmailTask.SUCCESS)


def test_wait_with_no_worker_says_so_and_how_to_start_one_then_keeps_waiting(course, monkeypatch):
    clock = WaitClock()
    monkeypatch.setattr(send_course_email, "time", clock)
    clock.events.append((30.0, lambda: finish(EmailTask.objects.get().pk)))  # a worker, late
    output = run(
        "send_course_email",
        *("--course-id", course.id, "--sender", "prof", "--subject", "S"),
        *("--message", "<p>x</p>", "--to", "myself", "--wait"),
    )
    before, hint, after = output.partition("No worker has taken this send")
    assert hint and output.count(hint) == 1
    assert before.count("Queuing") >= 10 * 2  # ten seconds of polls before the hint
    assert "celery -A lms_stub worker" in after and "stays queued" in after
    assert after.rstrip().endswith("Success")  # it kept waiting, and the send went out


def test_wait_says_nothing_of_workers_when_one_takes_the_send(course, monkeypatch):
    clock = WaitClock()
    monkeypatch.setattr(send_course_email, "time", clock)
    clock.events.append((3.0, lambda: finish(EmailTask.objects.get().pk)))
    output = run(
        "send_course_email",
        *("--course-id", course.id, "--sender", "prof", "--subject", "S"),
        *("--message", "<p>x</p>", "--to", "myself", "--wait", "--no-worker-after", "5"),
    )
    assert "No worker" not in output and output.rstrip().endswith("Success")


def help_of(command: str) -> str:
    return send_course_email.Command().create_parser("manage.py", command).format_help()


def test_send_course_email_help_says_where_cohort_ids_come_from():
    help_text = " ".join(help_of("send_course_email").split())
    assert "cohort:<id>" in help_text and "bulk_email_status --course-id" in help_text
    assert "--groups" in help_text


def test_send_course_email_to_an_unknown_group_says_where_the_keys_are_listed(course):
    argv = ["send_course_email", "--course-id", course.id, "--sender", "prof", "--subject", "S"]
    listing = re.escape(f"bulk_email_status --course-id {course.id} --groups")
    with pytest.raises(CommandError, match=listing):
        run(*argv, "--message", "<p>x</p>", "--to", "cohort:999")


def test_bulk_email_status_lists_a_courses_groups_with_their_keys(course):
    cohort = make_cohort(course, "Équipe Rouge — 红队")
    output = run("bulk_email_status", "--course-id", course.id, "--groups")
    assert re.search(rf"^cohort:{cohort.pk} +Cohort: Équipe Rouge — 红队$", output, re.MULTILINE)
    assert re.search(r"^learners +All Learners$", output, re.MULTILINE)


def test_bulk_email_status_groups_need_a_known_course():
    with pytest.raises(CommandError, match="--course-id"):
        run("bulk_email_status", "--groups")
    with pytest.raises(CommandError, match="no course"):
        run("bulk_email_status", "--course-id", "course-v1:No+Such+Course", "--groups")


def test_bulk_email_status_prints_times_with_their_utc_offset(course):
    EmailTask.objects.create(email=make_email(course.id), state=EmailTask.SUCCESS)
    output = run("bulk_email_status", "--course-id", course.id)
    assert re.search(r" \d{4}-\d{2}-\d{2} \d{2}:\d{2} [+-]\d{4} ", output)
