"""A CSRF refusal answers in the one JSON error shape where a script asked bulk_email for JSON,
and Django's own page everywhere else (http.csrf_failure, the site's CSRF_FAILURE_VIEW)."""

import json

import pytest
from django.test import Client

from bulk_email.models import EmailTask
from lms_stub.models import CourseAccessRole
from tests.factories import enroll, give_role, make_sending_course, make_user

pytestmark = pytest.mark.django_db

ERROR_SHAPE = {"message", "field", "errors", "code"}


@pytest.fixture
def course():
    return make_sending_course()


@pytest.fixture
def browser():
    """A browser whose requests carry no CSRF token: the checks run as in production."""
    return Client(enforce_csrf_checks=True)


def post_json(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def assert_json_csrf_refusal(response) -> None:
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    refusal = response.json()
    assert set(refusal) == ERROR_SHAPE and refusal["code"] == "csrf"
    assert "X-CSRFToken" in refusal["message"]


def test_the_email_tabs_endpoints_refuse_in_the_json_shape(browser, course):
    instructor = make_user()
    give_role(instructor, course, CourseAccessRole.INSTRUCTOR)
    browser.force_login(instructor)
    body = {"subject": "Hi", "message": "<p>Hi</p>", "targets": ["myself"]}
    assert_json_csrf_refusal(post_json(browser, f"/email/courses/{course.id}/api/emails/", body))
    # curl -X DELETE sends no Content-Type: the endpoint still answers JSON.
    deleted = browser.delete(f"/email/courses/{course.id}/api/tasks/1/")
    assert_json_csrf_refusal(deleted)
    assert not EmailTask.objects.exists()


def test_email_settings_refuse_in_json_when_asked_json_and_with_the_page_otherwise(browser, course):
    learner = make_user()
    enroll(learner, course)
    browser.force_login(learner)
    url = f"/email/settings/{course.id}/"
    assert_json_csrf_refusal(post_json(browser, url, {"receive_email": False}))
    form = browser.post(url, {"receive_email": "on"})
    assert form.status_code == 403 and form["Content-Type"].startswith("text/html")
    assert b"CSRF verification failed" in form.content


def test_pages_outside_bulk_email_keep_djangos_page(browser):
    response = browser.post("/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403 and response["Content-Type"].startswith("text/html")
    assert b"CSRF verification failed" in response.content
    asked_json = browser.post("/login/", "{}", content_type="application/json")
    assert asked_json["Content-Type"].startswith("text/html")
