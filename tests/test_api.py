"""The services staff actions go through: every refusal, and what a send leaves behind."""

import datetime
import time

import html2text
import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from bulk_email import api
from bulk_email.exceptions import (
    BulkEmailDisabledError,
    InvalidEmailError,
    NotCourseStaffError,
    UnknownCourseError,
)
from bulk_email.models import (
    Batch,
    BulkEmailFlag,
    CourseAuthorization,
    CourseEmail,
    DisabledCourse,
    EmailTask,
    RecipientOutcome,
    Target,
)
from lms_stub.models import CourseAccessRole
from tests.factories import enroll, give_role, make_course, make_sending_course, make_user, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    return make_sending_course()


@pytest.fixture
def instructor(course):
    user = make_user("prof")
    give_role(user, course, CourseAccessRole.INSTRUCTOR)
    return user


def send(course, sender, **overrides):
    fields = {
        "course_id": course.id,
        "sender": sender,
        "subject": "Welcome — 欢迎",
        "html": "<p>Hello %%USER_FULLNAME%%</p>",
        "targets": ["myself", "learners"],
    }
    fields = {**fields, **overrides}
    access = staff(fields.pop("course_id"), fields.pop("sender"))
    return api.send_email(access=access, **fields)


def in_an_hour():
    return timezone.now() + datetime.timedelta(hours=1)


def test_send_now_saves_email_targets_and_a_queuing_task(course, instructor):
    task = send(course, instructor)
    assert task.state == EmailTask.QUEUING and task.queue == "default"
    assert task.email.subject == "Welcome — 欢迎"
    assert sorted(t.key for t in task.email.targets.all()) == ["learners", "myself"]


def test_the_fan_out_is_enqueued_only_after_the_commit(
    course, instructor, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    from bulk_email import tasks

    monkeypatch.setattr(tasks.fan_out, "apply_async", lambda args, queue: enqueued.append(args))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        task = send(course, instructor)
    assert enqueued == [] and callbacks  # the fan-out, and the signal email_created
    for callback in callbacks:
        callback()
    task.refresh_from_db()
    assert enqueued == [(task.pk,)] and task.state == EmailTask.PENDING


def test_schedule_leaves_the_task_scheduled(course, instructor):
    when = in_an_hour()
    task = send(course, instructor, send_at=when)
    assert (task.state, task.send_at) == (EmailTask.SCHEDULED, when)


def test_the_stored_message_is_sanitized(course, instructor):
    task = send(course, instructor, html='<p onclick="x()">Hi</p><script>alert(1)</script>')
    assert "script" not in task.email.html_message and "onclick" not in task.email.html_message


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"subject": ""}, "subject", "Enter a subject"),
        ({"subject": "x" * 129}, "subject", "limit is 128"),
        ({"subject": "Hi\r\nBcc: all@example.com"}, "subject", None),
        ({"html": ""}, "message", "empty"),
        ({"html": "<script>alert(1)</script>"}, "message", "empty"),
        ({"html": "x" * 1_000_001}, "message", "too large"),
        ({"targets": []}, "targets", None),
        ({"targets": ["everyone"]}, "targets", None),
        ({"targets": ["cohort:999999"]}, "targets", None),
        ({"targets": ["track:professional"]}, "targets", None),
        ({"send_at": timezone.now() - datetime.timedelta(minutes=1)}, "send_at", "passed"),
        ({"send_at": datetime.datetime(2030, 1, 1, 12, 0)}, "send_at", "time zone"),
    ],
)
def test_bad_input_is_refused_with_its_field_and_changes_nothing(
    course, instructor, overrides, field, message
):
    with pytest.raises(InvalidEmailError, match=message) as refused:
        send(course, instructor, **overrides)
    assert refused.value.field == field
    assert not CourseEmail.objects.exists() and not EmailTask.objects.exists()


@pytest.mark.parametrize(
    "role", [None, CourseAccessRole.BETA_TESTER, CourseAccessRole.COMMUNITY_TA]
)
def test_only_staff_and_admins_may_send(course, role):
    user = make_user()
    enroll(user, course)
    if role:
        give_role(user, course, role)
    with pytest.raises(NotCourseStaffError) as refused:
        send(course, user)
    assert isinstance(refused.value, PermissionDenied)


def test_staff_of_another_course_may_not_send(course):
    other = make_course()
    user = make_user()
    give_role(user, other, CourseAccessRole.STAFF)
    with pytest.raises(NotCourseStaffError):
        send(course, user)


def test_the_flag_and_the_course_authorization_gate_sending(course, instructor):
    CourseAuthorization.objects.filter(course_id=course.id).update(email_enabled=False)
    with pytest.raises(BulkEmailDisabledError):
        send(course, instructor)
    flag = BulkEmailFlag.current()
    flag.require_course_email_auth = False
    flag.save()
    send(course, instructor)
    flag.enabled = False
    flag.save()
    with pytest.raises(BulkEmailDisabledError):
        send(course, instructor)


def test_a_disabled_course_refuses_with_its_reason_and_hides_email_settings(course, instructor):
    DisabledCourse.objects.create(course_id=course.id, reason="archived")
    with pytest.raises(BulkEmailDisabledError, match="turned off for this course: archived"):
        send(course, instructor)
    assert not api.can_send(course_id=course.id, user=instructor)
    assert api.send_refusal(course_id=course.id, user=instructor).endswith(": archived")
    assert not api.course_email_enabled(course_id=course.id)
    DisabledCourse.objects.all().delete()
    assert api.send_refusal(course_id=course.id, user=instructor) == ""
    assert api.course_email_enabled(course_id=course.id)


def test_unknown_course(instructor):
    with pytest.raises(UnknownCourseError):
        api.send_email(
            access=staff("course-v1:No+Such+1", instructor),
            subject="s",
            html="<p>x</p>",
            targets=["myself"],
        )


def test_edit_scheduled_changes_subject_message_groups_and_time(course, instructor):
    task = send(course, instructor, send_at=in_an_hour())
    later = in_an_hour() + datetime.timedelta(days=1)
    api.edit_scheduled(
        access=staff(task.email.course_id, instructor),
        task=task,
        subject="Changed",
        html="<p>New body</p>",
        targets=["staff"],
        send_at=later,
    )
    task.refresh_from_db()
    assert (task.email.subject, task.send_at) == ("Changed", later)
    assert "New body" in task.email.html_message
    assert [t.key for t in task.email.targets.all()] == ["staff"]


def test_only_scheduled_emails_can_be_edited(course, instructor):
    task = send(course, instructor)
    with pytest.raises(InvalidEmailError, match="no longer be edited"):
        api.edit_scheduled(
            access=staff(task.email.course_id, instructor),
            task=task,
            subject="x",
            html="<p>x</p>",
            targets=["myself"],
            send_at=in_an_hour(),
        )


def test_revoke_stops_scheduled_and_refuses_ended_sends(course, instructor):
    task = send(course, instructor, send_at=in_an_hour())
    assert (
        api.revoke(access=staff(task.email.course_id, instructor), task=task).state
        == EmailTask.REVOKED
    )
    with pytest.raises(InvalidEmailError, match="already ended"):
        api.revoke(access=staff(task.email.course_id, instructor), task=task)


def test_someone_else_cannot_revoke(course, instructor):
    task = send(course, instructor, send_at=in_an_hour())
    with pytest.raises(NotCourseStaffError):
        api.revoke(access=staff(task.email.course_id, make_user()), task=task)
    task.refresh_from_db()
    assert task.state == EmailTask.SCHEDULED


def test_resend_to_failed_needs_an_ended_send_with_failures(course, instructor):
    task = send(course, instructor)
    with pytest.raises(InvalidEmailError, match="Wait"):
        api.resend_to_failed(access=staff(task.email.course_id, instructor), task=task)
    EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.SUCCESS)
    with pytest.raises(InvalidEmailError, match="No recipient"):
        api.resend_to_failed(access=staff(task.email.course_id, instructor), task=task)
    batch = Batch.objects.create(task=task, seq=0, user_ids=[instructor.pk], failed=1)
    RecipientOutcome.objects.create(
        task=task, batch=batch, user=instructor, status=RecipientOutcome.FAILED, code=550
    )
    resend = api.resend_to_failed(access=staff(task.email.course_id, instructor), task=task)
    assert (resend.resend_of, resend.email, resend.state) == (task, task.email, EmailTask.QUEUING)


def test_task_status_sums_the_batches(course, instructor):
    task = send(course, instructor)
    EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.PROGRESS, total=7)
    Batch.objects.create(task=task, seq=0, user_ids=[1, 2, 3], sent=2, failed=1)
    Batch.objects.create(task=task, seq=1, user_ids=[4, 5, 6, 7], sent=3, skipped=1)
    status = api.task_status(task=task)
    assert (status.state_label, status.total, status.sent, status.failed, status.skipped) == (
        "Progress",
        7,
        5,
        1,
        1,
    )


def test_targets_are_rows_per_group(course, instructor):
    task = send(course, instructor, targets=["track:verified", "staff"])
    assert set(Target.objects.filter(email=task.email).values_list("target_type", flat=True)) == {
        "track",
        "staff",
    }


def test_large_sends_go_to_their_own_queue(course, instructor, settings):
    for learner in (make_user() for _ in range(3)):
        enroll(learner, course)
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "LARGE_SEND_THRESHOLD": 2}
    assert send(course, instructor, targets=["learners"]).queue == "large"
    assert send(course, instructor, targets=["myself"]).queue == "default"


# --- The Email tab's services ------------------------------------------------------------------


def test_can_send_says_what_check_can_send_decides(course, instructor):
    learner = make_user()
    enroll(learner, course)
    assert api.can_send(course_id=course.id, user=instructor)
    assert not api.can_send(course_id=course.id, user=learner)
    assert not api.can_send(course_id="course-v1:No+Such+Course", user=instructor)
    BulkEmailFlag.objects.update(enabled=False)
    assert not api.can_send(course_id=course.id, user=instructor)


def test_every_wrong_field_is_reported_at_once(course, instructor):
    with pytest.raises(InvalidEmailError) as caught:
        send(course, instructor, subject="", html="", targets=[], send_at=timezone.now())
    assert caught.value.field == "subject"
    assert list(caught.value.errors) == ["subject", "message", "targets", "send_at"]


def test_preview_renders_for_the_viewer_without_saving(course, instructor):
    shown = api.preview_email(
        access=staff(course.id, instructor), subject="Hi %%USER_FULLNAME%%", html="<p>x</p>"
    )
    assert shown.subject.startswith("Hi ") and "Physique générale — 物理" in shown.html
    assert "x" in shown.text and CourseEmail.objects.count() == 0


def test_preview_refuses_what_sending_would(course, instructor):
    with pytest.raises(InvalidEmailError) as caught:
        api.preview_email(access=staff(course.id, instructor), subject="", html="")
    assert set(caught.value.errors) == {"subject", "message"}
    with pytest.raises(NotCourseStaffError):
        api.preview_email(access=staff(course.id, make_user()), subject="Hi", html="<p>x</p>")


def test_get_task_only_finds_the_courses_own(course, instructor):
    task = send(course, instructor)
    assert api.get_task(access=staff(course.id, instructor), task_id=task.pk) == task
    other = make_course()
    CourseAuthorization.objects.create(course_id=other.id, email_enabled=True)
    give_role(instructor, other, CourseAccessRole.INSTRUCTOR)
    with pytest.raises(LookupError):
        api.get_task(access=staff(other.id, instructor), task_id=task.pk)


def test_list_tasks_sums_batch_counts_in_a_fixed_number_of_queries(
    course, instructor, django_assert_max_num_queries
):
    tasks = [send(course, instructor) for _ in range(3)]
    for number, task in enumerate(tasks):
        Batch.objects.create(task=task, seq=0, user_ids=[1], sent=number, failed=1, skipped=2)
        Batch.objects.create(task=task, seq=1, user_ids=[2], sent=10)
    with django_assert_max_num_queries(10):  # one of them: the audit trail
        listed = api.list_tasks(access=staff(course.id, instructor))
    assert [t.task_id for t in listed] == [t.pk for t in reversed(tasks)]
    assert [(t.sent, t.failed, t.skipped) for t in listed] == [(12, 1, 2), (11, 1, 2), (10, 1, 2)]
    assert listed[0].groups == ["Myself", "All Learners"] and listed[0].author


def test_task_report_rows_follow_the_columns(course, instructor):
    task = send(course, instructor)
    start = timezone.now()
    EmailTask.objects.filter(pk=task.pk).update(
        state=EmailTask.SUCCESS, started_at=start, finished_at=start + datetime.timedelta(seconds=9)
    )
    (row,) = api.task_report_rows(access=staff(course.id, instructor))
    assert len(row) == len(api.REPORT_COLUMNS)
    assert row[0] == task.pk and row[3] == "Success" and row[4] == 9


def test_preview_refuses_deep_nesting_on_the_message_quickly(course, instructor):
    hostile = "<div>" * 90_000 + "x" + "</div>" * 90_000  # 990,001 characters: under the size
    started = time.perf_counter()
    with pytest.raises(InvalidEmailError) as caught:
        api.preview_email(access=staff(course.id, instructor), subject="Hi", html=hostile)
    assert caught.value.errors == {"message": str(caught.value)}
    assert "nests" in str(caught.value) and time.perf_counter() - started < 1


def test_preview_sanitizes_and_converts_to_text_once(course, instructor, monkeypatch):
    from bulk_email.rendering import sanitize

    calls = {"clean": 0, "text": 0}
    cleaner, handle = sanitize._cleaner, html2text.HTML2Text.handle

    class CountingCleaner:
        def clean(self, markup):
            calls["clean"] += 1
            return cleaner.clean(markup)

    def counting_handle(self, markup):
        calls["text"] += 1
        return handle(self, markup)

    monkeypatch.setattr(sanitize, "_cleaner", CountingCleaner())
    monkeypatch.setattr(html2text.HTML2Text, "handle", counting_handle)
    api.preview_email(access=staff(course.id, instructor), subject="Hi", html="<p>once</p>")
    assert calls == {"clean": 1, "text": 1}


def test_preview_refuses_more_elements_than_the_limit(course, instructor, settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_HTML_ELEMENTS": 50}
    access = staff(course.id, instructor)
    assert "x" in api.preview_email(access=access, subject="Hi", html="<b>x</b>" * 50).text
    with pytest.raises(InvalidEmailError) as caught:
        api.preview_email(access=access, subject="Hi", html="<b>x</b>" * 51)
    assert caught.value.field == "message" and "50 elements" in str(caught.value)
