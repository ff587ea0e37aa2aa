"""Course keys in URLs: Open edX's old-style Org/Course/Run keys (slashes) work everywhere a
new-style course-v1 key does."""

import pytest
from django.urls import resolve, reverse

from bulk_email import api
from bulk_email.models import Optout
from bulk_email.tokens import make_token
from lms_stub.models import CourseAccessRole
from tests.factories import enroll, give_role, make_sending_course, make_user
from tests.test_email_tab import call, endpoint_calls, schedule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("counts_at_once")]

OLD_STYLE = "MITx/6.002x/2012_Fall"
NEW_STYLE = "course-v1:MITx+6.002x+2012_Fall"


@pytest.mark.parametrize("course_id", [OLD_STYLE, NEW_STYLE])
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("bulk_email:email_settings", {}),
        ("bulk_email:tab_groups", {}),
        ("bulk_email:tab_task_email", {"task_id": 5}),
        ("bulk_email:tab_report_csv", {}),
        ("instructor_dashboard", {}),
    ],
)
def test_every_course_url_reverses_and_resolves_to_the_same_key(course_id, name, extra):
    url = reverse(name, kwargs={"course_id": course_id, **extra})
    assert course_id in url
    match = resolve(url)
    assert match.kwargs == {"course_id": course_id, **extra}


@pytest.mark.parametrize("course_id", [OLD_STYLE, NEW_STYLE])
def test_the_email_tab_endpoints_answer_for_either_key_style(client, course_id):
    course = make_sending_course(course_id=course_id)
    instructor = make_user("prof")
    give_role(instructor, course, CourseAccessRole.INSTRUCTOR)
    client.force_login(instructor)
    assert "?tab=email" in client.get(reverse("instructor_dashboard", args=[course_id])).text
    task = schedule(course, instructor)
    for method, url, body, status in endpoint_calls(course, task):
        assert call(client, method, url, body).status_code == status, (method, url)


def test_a_learner_of_an_old_style_course_changes_settings_and_unsubscribes(client):
    course = make_sending_course(course_id=OLD_STYLE)
    learner = make_user()
    enroll(learner, course)
    client.force_login(learner)
    url = reverse("bulk_email:email_settings", args=[OLD_STYLE])
    assert client.post(url, {}).status_code == 302  # the box unticked: opted out
    assert Optout.objects.filter(user=learner, course_id=OLD_STYLE).exists()
    api.opt_in(user_id=learner.pk, course_id=OLD_STYLE)
    client.logout()
    token = make_token(learner.pk, OLD_STYLE)
    client.post(reverse("bulk_email:unsubscribe", args=[token]), {"action": "unsubscribe"})
    assert Optout.objects.filter(user=learner, course_id=OLD_STYLE).exists()
