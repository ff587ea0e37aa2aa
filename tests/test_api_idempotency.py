"""Idempotent sends (api.submit_email and the Email tab's emails endpoint): the same
idempotency key again from the same user in the same course answers the task the first
request made, never a second send; bad keys are refused and change nothing."""

import datetime
import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from bulk_email import api
from bulk_email.models import CourseEmail, EmailTask
from lms_stub.models import CourseAccessRole
from tests.factories import give_role, make_sending_course, make_user, staff

KEY = "5f0c8a3e-2b7d-4c1e-9a44-0d6b1f7e2c90"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def compose(**overrides) -> dict:
    send_at = timezone.now() + datetime.timedelta(hours=1)
    body = {
        "subject": "Quiz on Friday",
        "message": "<p>Hello</p>",
        "targets": ["myself"],
        "send_at": send_at.isoformat(),
    }
    return {**body, **overrides}


def post_send(client, course, body, **headers):
    url = f"/email/courses/{course.id}/api/emails/"
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
def test_the_same_key_twice_answers_the_same_task_and_sends_once(course, instructor):
    client = signed_in(instructor)
    first = post_send(client, course, compose(idempotency_key=KEY))
    again = post_send(client, course, compose(idempotency_key=KEY))
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["task_id"] == first.json()["task_id"]
    assert CourseEmail.objects.count() == 1
    assert EmailTask.objects.count() == 1


@pytest.mark.django_db
def test_the_key_may_come_in_the_idempotency_key_header(course, instructor):
    client = signed_in(instructor)
    first = post_send(client, course, compose(), HTTP_IDEMPOTENCY_KEY=KEY)
    again = post_send(client, course, compose(idempotency_key=KEY), HTTP_IDEMPOTENCY_KEY=KEY)
    assert (first.status_code, again.status_code) == (201, 200)
    assert EmailTask.objects.count() == 1


@pytest.mark.django_db
def test_without_a_key_each_request_is_a_send(course, instructor):
    client = signed_in(instructor)
    assert post_send(client, course, compose()).status_code == 201
    assert post_send(client, course, compose()).status_code == 201
    assert EmailTask.objects.count() == 2


@pytest.mark.django_db
def test_a_key_belongs_to_its_user_and_course(course, instructor):
    """Another staff member, or the same one in another course, reusing a key (a guessed or
    copied one) gets a send of their own, never a view of someone else's."""
    colleague = make_user("colleague")
    give_role(colleague, course, CourseAccessRole.STAFF)
    other_course = make_sending_course()
    give_role(instructor, other_course, CourseAccessRole.INSTRUCTOR)
    mine = post_send(signed_in(instructor), course, compose(idempotency_key=KEY))
    theirs = post_send(signed_in(colleague), course, compose(idempotency_key=KEY))
    elsewhere = post_send(signed_in(instructor), other_course, compose(idempotency_key=KEY))
    assert [r.status_code for r in (mine, theirs, elsewhere)] == [201, 201, 201]
    assert len({r.json()["task_id"] for r in (mine, theirs, elsewhere)}) == 3


@pytest.mark.django_db
def test_a_resend_does_not_answer_for_the_key(course, instructor):
    """The key names the first send of the email, not a later resend of its failures."""
    access = staff(course.id, instructor)
    first = api.submit_email(access=access, idempotency_key=KEY, **service_fields()).task
    EmailTask.objects.create(email=first.email, requester=instructor, resend_of=first)
    again = api.submit_email(access=access, idempotency_key=KEY, **service_fields())
    assert again.replayed and again.task.pk == first.pk


def service_fields() -> dict:
    body = compose()
    return {
        "subject": body["subject"],
        "html": body["message"],
        "targets": body["targets"],
        "send_at": datetime.datetime.fromisoformat(body["send_at"]),
    }


@pytest.mark.bad_input
@pytest.mark.django_db
@pytest.mark.parametrize(
    "key",
    [
        "short",
        "x" * 65,
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "key with spaces in it",
        "ключ-на-кириллице",
        "abc\r\nX-Injected: 1",
        12345678,
        ["5f0c8a3e-2b7d"],
    ],
)
def test_a_bad_key_is_refused_and_nothing_is_saved(course, instructor, key):
    response = post_send(signed_in(instructor), course, compose(idempotency_key=key))
    assert response.status_code == 400
    assert response.json()["field"] == "idempotency_key"
    assert response.json()["code"] == "bad_request"
    assert not CourseEmail.objects.exists()


@pytest.mark.bad_input
@pytest.mark.django_db
def test_a_header_and_field_that_differ_are_refused(course, instructor):
    body = compose(idempotency_key=KEY)
    response = post_send(signed_in(instructor), course, body, HTTP_IDEMPOTENCY_KEY=KEY[::-1])
    assert response.status_code == 400
    assert "differ" in response.json()["message"]
    assert not CourseEmail.objects.exists()


@pytest.mark.django_db
def test_an_invalid_email_with_a_key_saves_nothing_and_the_key_stays_free(course, instructor):
    client = signed_in(instructor)
    refused = post_send(client, course, compose(subject="", idempotency_key=KEY))
    assert refused.status_code == 400 and refused.json()["field"] == "subject"
    assert post_send(client, course, compose(idempotency_key=KEY)).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_requests_with_one_key_make_one_send(course, instructor):
    """Twenty threads, each with its own database connection, released together: the
    database's unique constraint lets one insert win; the others answer its task."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL: this runs in the PostgreSQL pass")
    start = threading.Barrier(20)
    answers = []

    def send():
        client = signed_in(instructor)
        start.wait()
        try:
            response = post_send(client, course, compose(idempotency_key=KEY))
            answers.append((response.status_code, response.json()["task_id"]))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 20
    assert sorted(status for status, _ in answers) == [200] * 19 + [201]
    assert len({task_id for _, task_id in answers}) == 1
    assert CourseEmail.objects.count() == 1
    assert EmailTask.objects.count() == 1


# --- Resend to failed recipients: once per send ------------------------------------------------


def ended_with_a_failure(course, instructor) -> EmailTask:
    from bulk_email.models import Batch, RecipientOutcome

    task = api.send_email(access=staff(course.id, instructor), **service_fields())
    EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.SUCCESS)
    batch = Batch.objects.create(task=task, seq=0, user_ids=[instructor.pk], failed=1)
    RecipientOutcome.objects.create(task=task, batch=batch, user=instructor, status="failed")
    return task


def post_resend(client, course, task):
    return client.post(f"/email/courses/{course.id}/api/tasks/{task.pk}/resend/")


@pytest.mark.django_db
def test_a_send_is_resent_once_and_the_second_resend_says_which(course, instructor):
    task = ended_with_a_failure(course, instructor)
    client = signed_in(instructor)
    first = post_resend(client, course, task)
    again = post_resend(client, course, task)
    assert first.status_code == 201
    assert again.status_code == 409 and again.json()["field"] == "state"
    assert f"send {first.json()['task_id']}" in again.json()["message"]
    assert task.resends.count() == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_resends_make_one(course, instructor):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL: this runs in the PostgreSQL pass")
    task = ended_with_a_failure(course, instructor)
    start = threading.Barrier(20)
    statuses = []

    def resend():
        client = signed_in(instructor)
        start.wait()
        try:
            statuses.append(post_resend(client, course, task).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=resend) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201] + [409] * 19
    assert task.resends.count() == 1
