"""The learner dashboard's Email Settings: the dialog per enrolled course and its endpoint
(session auth, CSRF, JSON for the dialog's script, a form post without script)."""

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from bulk_email import api
from bulk_email.models import Optout
from bulk_email.tokens import make_token
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    return factories.make_sending_course(display_name="Physique générale — 物理")


@pytest.fixture
def learner(course):
    user = factories.make_user(name="Zoë")
    factories.enroll(user, course)
    return user


@pytest.fixture
def signed_in(client, learner):
    client.force_login(learner)
    return client


def settings_url(course_id: str) -> str:
    return reverse("bulk_email:email_settings", args=[course_id])


def post_json(client, course_id: str, body, **headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        settings_url(course_id), data, content_type="application/json", headers=headers
    )


def optout_of(user, course) -> Optout | None:
    return Optout.objects.filter(user=user, course_id=course.id).first()


# --- The endpoint, as the dialog's script uses it -----------------------------------------------


def test_get_reports_the_setting_and_changes_nothing(signed_in, learner, course):
    answer = signed_in.get(settings_url(course.id)).json()
    assert answer["receive_email"] is True
    assert answer["course_name"] == "Physique générale — 物理"
    factories.opt_out(learner, course.id, how=Optout.ONE_CLICK)
    assert signed_in.get(settings_url(course.id)).json()["receive_email"] is False
    assert optout_of(learner, course).how == Optout.ONE_CLICK


def test_unticking_opts_out_from_the_dashboard_and_ticking_opts_in(signed_in, learner, course):
    response = post_json(signed_in, course.id, {"receive_email": False})
    assert response.status_code == 200
    assert response.json()["receive_email"] is False
    assert "no longer receive course email from Physique" in response.json()["message"]
    assert optout_of(learner, course).how == Optout.DASHBOARD
    response = post_json(signed_in, course.id, {"receive_email": True})
    assert response.json()["receive_email"] is True
    assert optout_of(learner, course) is None


def test_the_dashboard_resubscribes_after_a_one_click_unsubscribe(signed_in, learner, course):
    Client().post(
        reverse("bulk_email:one_click", args=[make_token(learner.pk, course.id)]),
        {"List-Unsubscribe": "One-Click"},
    )
    assert optout_of(learner, course).how == Optout.ONE_CLICK
    post_json(signed_in, course.id, {"receive_email": True})
    assert optout_of(learner, course) is None


def test_unticking_again_keeps_how_the_first_opt_out_was_made(signed_in, learner, course):
    factories.opt_out(learner, course.id, how=Optout.LINK)
    post_json(signed_in, course.id, {"receive_email": False})
    assert optout_of(learner, course).how == Optout.LINK


@pytest.mark.parametrize("body", ["{", "[]", '{"receive_email": "no"}', "{}"])
def test_an_unclear_choice_is_400_and_changes_nothing(signed_in, learner, course, body):
    response = post_json(signed_in, course.id, body)
    assert response.status_code == 400
    assert "receive_email" in response.json()["message"]
    assert optout_of(learner, course) is None


def test_a_course_the_learner_is_not_enrolled_in_is_403(signed_in, learner):
    other = factories.make_course(display_name="Other course")
    dropped = factories.make_course(display_name="Dropped course")
    factories.enroll(learner, dropped, is_active=False)
    for course in (other, dropped):
        for response in (
            signed_in.get(settings_url(course.id)),
            post_json(signed_in, course.id, {"receive_email": False}),
        ):
            assert response.status_code == 403
            assert response.json()["message"] == (
                "You can change the email settings only of courses you are enrolled in."
            )
    assert not Optout.objects.exists()


def test_course_staff_who_are_not_enrolled_get_403(client, course):
    instructor = factories.make_user()
    factories.give_role(instructor, course, "instructor")
    client.force_login(instructor)
    assert post_json(client, course.id, {"receive_email": False}).status_code == 403


def test_an_unknown_course_is_404(signed_in):
    response = post_json(signed_in, "course-v1:No+Such+Course", {"receive_email": False})
    assert response.status_code == 404
    assert "There is no course course-v1:No+Such+Course" in response.json()["message"]


def test_anonymous_requests_are_401_and_change_nothing(client, course):
    assert client.get(settings_url(course.id)).status_code == 401
    response = post_json(client, course.id, {"receive_email": False})
    assert response.status_code == 401
    assert response.json()["message"] == "Sign in to change your email settings."
    assert not Optout.objects.exists()


def csrf_token_of(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_posts_need_the_csrf_token(learner, course):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(learner)
    assert post_json(strict, course.id, {"receive_email": False}).status_code == 403
    assert optout_of(learner, course) is None
    token = csrf_token_of(strict.get(reverse("dashboard")).content.decode())
    response = post_json(strict, course.id, {"receive_email": False}, X_CSRFToken=token)
    assert response.status_code == 200
    assert optout_of(learner, course).how == Optout.DASHBOARD


def test_the_answers_are_not_cached(signed_in, course):
    assert "no-store" in signed_in.get(settings_url(course.id))["Cache-Control"]


# --- The same form without script -----------------------------------------------------------


def test_the_form_without_script_saves_and_returns_with_a_message(signed_in, learner, course):
    form = {"next": reverse("dashboard")}  # the checkbox unticked: absent from the form
    response = signed_in.post(settings_url(course.id), form, follow=True)
    assert response.redirect_chain == [(reverse("dashboard"), 302)]
    assert "no longer receive course email from Physique" in response.content.decode()
    assert optout_of(learner, course).how == Optout.DASHBOARD
    signed_in.post(settings_url(course.id), {**form, "receive_email": "on"})
    assert optout_of(learner, course) is None


def test_the_form_never_returns_to_another_site(signed_in, course):
    response = signed_in.post(settings_url(course.id), {"next": "https://evil.example/"})
    assert response.url == api.email_settings_url(course_id=course.id)


def test_the_form_for_a_course_not_enrolled_in_shows_why(signed_in):
    other = factories.make_course()
    response = signed_in.post(settings_url(other.id), {"next": "/dashboard/"})
    assert response.status_code == 403
    assert "only of courses you are enrolled in" in response.content.decode()


def test_the_form_sends_anonymous_people_to_sign_in(client, course):
    response = client.post(settings_url(course.id), {"next": "/dashboard/"})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert not Optout.objects.exists()


# --- The dashboard ------------------------------------------------------------------------------


def dialogs(page: str) -> list[str]:
    return re.findall(r"<dialog.*?</dialog>", page, flags=re.S)


def test_each_enrolled_course_has_a_settings_dialog_showing_its_optout(signed_in, learner, course):
    second = factories.make_sending_course(display_name="Zoology")
    factories.enroll(learner, second)
    factories.make_course(display_name="Not enrolled")
    factories.opt_out(learner, second.id)
    page = signed_in.get(reverse("dashboard")).content.decode()
    physics, zoology = dialogs(page)
    assert "Physique générale — 物理" in physics and " checked" in physics
    assert "Zoology" in zoology and " checked" not in zoology
    assert 'for="email-settings-2-receive">Receive course emails</label>' in zoology
    assert page.count(">Email Settings<") == 2 and "Not enrolled" not in page


def test_the_email_settings_url_opens_that_courses_dialog(signed_in, learner, course):
    second = factories.make_sending_course(display_name="Zoology")
    factories.enroll(learner, second)
    url = api.email_settings_url(course_id=second.id)
    assert url.startswith(reverse("dashboard") + "?")
    physics, zoology = dialogs(signed_in.get(url).content.decode())
    assert "data-bulk-email-settings open" in zoology
    assert " open" not in physics.split(">", 1)[0]
