"""bulk_email's signals: each announced once, after the commit, with what a receiver needs;
and the example receiver in lms_stub that logs them as JSON lines."""

import json
import logging

import pytest
from django.db import transaction

from bulk_email import api, pipeline, signals
from bulk_email.models import EmailTask, Optout, TaskCounts
from lms_stub.models import CourseAccessRole
from tests import factories
from tests.factories import make_task, run_fan_out, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    """Every announcement while the test runs, as (signal name, arguments). Not
    ``audience_changed``: the host LMS sends that one to bulk_email (lms_stub on each
    enrollment it saves), bulk_email never does."""
    calls = []
    names = [n for n in vars(signals) if isinstance(getattr(signals, n), signals.Signal)]
    names.remove("audience_changed")
    receivers = {}
    for name in names:

        def receiver(sender, signal, _name=name, **arguments):
            calls.append((_name, arguments))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield calls
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def test_a_send_announces_created_started_and_finished_with_its_counts(
    heard, smtp_settings, smtp_sink, django_capture_on_commit_callbacks
):
    course, instructor, _ = factories.course_with_learners(3)
    task = make_task(course, instructor)
    with django_capture_on_commit_callbacks(execute=True):
        batch_ids = run_fan_out(task)
    with django_capture_on_commit_callbacks(execute=True):
        for batch_id in batch_ids:
            pipeline.send_batch(batch_id=batch_id)
    names = [name for name, _ in heard]
    assert names == ["send_started", "send_finished"]
    finished = heard[1][1]
    assert finished["task"].pk == task.pk and finished["state"] == EmailTask.SUCCESS
    assert finished["counts"] == TaskCounts(total=3, sent=3, failed=0, skipped=0)
    assert len(smtp_sink.messages) == 3


def sending_course():
    """A course whose staff may send (the flag on, the course authorized) and its instructor."""
    course = factories.make_sending_course()
    instructor = factories.make_user("prof")
    factories.give_role(instructor, course, CourseAccessRole.INSTRUCTOR)
    return course, instructor


def test_a_requested_send_is_announced_created_with_its_targets(
    heard, django_capture_on_commit_callbacks
):
    course, instructor = sending_course()
    with django_capture_on_commit_callbacks(execute=True):
        task = api.send_email(
            access=staff(course.id, instructor), subject="Hi", html="<p>Hi</p>", targets=["myself"]
        )
    assert [name for name, _ in heard] == ["email_created"]
    created = heard[0][1]
    assert (created["task"], created["email"], created["user"]) == (task, task.email, instructor)


def test_a_revoked_send_is_announced_finished_once(heard, django_capture_on_commit_callbacks):
    course, instructor = sending_course()
    task = make_task(course, instructor, state=EmailTask.SCHEDULED)
    access = staff(course.id, instructor)
    with django_capture_on_commit_callbacks(execute=True):
        api.revoke(access=access, task=task)
        EmailTask.objects.filter(pk=task.pk).transition(to=EmailTask.REVOKED)  # again: no row
    assert [(n, a["state"]) for n, a in heard] == [("send_finished", EmailTask.REVOKED)]


def test_nothing_is_announced_for_a_change_rolled_back(heard, django_capture_on_commit_callbacks):
    course, _, learners = factories.course_with_learners(1)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        api.opt_out(user_id=learners[0].pk, course_id=course.id, how=Optout.LINK)
        raise RuntimeError("rolled back")
    assert heard == [] and not Optout.objects.exists()


def test_opt_out_and_in_are_announced_once_each_with_how(heard, django_capture_on_commit_callbacks):
    course, _, learners = factories.course_with_learners(1)
    user_id = learners[0].pk
    with django_capture_on_commit_callbacks(execute=True):
        api.opt_out(user_id=user_id, course_id=course.id, how=Optout.ONE_CLICK)
        api.opt_out(user_id=user_id, course_id=course.id, how=Optout.LINK)  # already: no event
        api.opt_in(user_id=user_id, course_id=course.id)
        api.opt_in(user_id=user_id, course_id=course.id)  # nothing to undo: no event
    assert heard == [
        ("opted_out", {"user_id": user_id, "course_id": course.id, "how": Optout.ONE_CLICK}),
        ("opted_in", {"user_id": user_id, "course_id": course.id}),
    ]


def test_a_receiver_that_raises_never_stops_the_change(django_capture_on_commit_callbacks):
    course, _, learners = factories.course_with_learners(1)

    def broken(sender, **arguments):
        raise ValueError("a broken receiver")

    signals.opted_out.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            api.opt_out(user_id=learners[0].pk, course_id=course.id, how=Optout.LINK)
    finally:
        signals.opted_out.disconnect(broken)
    assert Optout.objects.filter(user=learners[0], course_id=course.id).exists()


def test_the_example_receiver_logs_json_lines_named_as_open_edx_does(
    caplog, django_capture_on_commit_callbacks
):
    course, _, learners = factories.course_with_learners(1)
    with (
        caplog.at_level(logging.INFO, logger="lms_stub.events"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        api.opt_out(user_id=learners[0].pk, course_id=course.id, how=Optout.DASHBOARD)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "lms_stub.events"]
    assert [line["name"] for line in lines] == ["edx.bulk_email.opt_out"]
    assert lines[0]["event"] == {
        "user_id": learners[0].pk,
        "course_id": course.id,
        "how": Optout.DASHBOARD,
    }
