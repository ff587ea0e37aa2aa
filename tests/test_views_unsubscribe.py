"""The footer's unsubscribe page and RFC 8058 one-click unsubscribe, without logging in."""

import re
import time

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from bulk_email import api, views
from bulk_email.models import CourseEmail, Optout
from bulk_email.rendering import Recipient, get_prepared_message
from bulk_email.tokens import make_token
from tests import factories
from tests.sending.batches import send_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    return factories.make_course(display_name="Physique générale — 物理")


@pytest.fixture
def learner(course):
    user = factories.make_user(name="Ana")
    factories.enroll(user, course)
    return user


@pytest.fixture
def token(learner, course):
    return make_token(learner.pk, course.id)


def unsubscribe_url(token: str) -> str:
    return reverse("bulk_email:unsubscribe", args=[token])


def one_click_url(token: str) -> str:
    return reverse("bulk_email:one_click", args=[token])


def optout_of(learner, course) -> Optout | None:
    return Optout.objects.filter(user=learner, course_id=course.id).first()


# --- The footer link ----------------------------------------------------------------------------


def test_get_names_the_course_and_changes_nothing(client, token, learner, course):
    response = client.get(unsubscribe_url(token))
    assert response.status_code == 200
    assert "Physique générale — 物理" in response.content.decode()
    assert b">Unsubscribe</button>" in response.content
    assert optout_of(learner, course) is None


def test_post_unsubscribes_by_link_and_offers_to_resubscribe(client, token, learner, course):
    response = client.post(unsubscribe_url(token), {"action": "unsubscribe"})
    assert response.status_code == 200
    assert b">Resubscribe</button>" in response.content
    assert optout_of(learner, course).how == Optout.LINK


def test_resubscribe_removes_the_opt_out(client, token, learner, course):
    client.post(unsubscribe_url(token), {"action": "unsubscribe"})
    response = client.post(unsubscribe_url(token), {"action": "resubscribe"})
    assert b"subscribed again" in response.content
    assert optout_of(learner, course) is None


def test_an_opted_out_learner_sees_the_resubscribe_button(client, token, learner, course):
    api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.DASHBOARD)
    client.force_login(learner)  # signed in as the link's owner: not just anyone with the link
    assert b">Resubscribe</button>" in client.get(unsubscribe_url(token)).content


def test_a_dashboard_opt_out_is_not_undone_by_anyone_holding_the_link(
    client, token, learner, course
):
    api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.DASHBOARD)
    page = client.get(unsubscribe_url(token)).content.decode()
    assert ">Resubscribe</button>" not in page and "sign in</a>" in page
    assert api.email_settings_url(course_id=course.id) in page
    response = client.post(unsubscribe_url(token), {"action": "resubscribe"})
    assert response.status_code == 403 and b">Resubscribe</button>" not in response.content
    assert optout_of(learner, course).how == Optout.DASHBOARD


def test_a_forwarded_link_cannot_undo_the_owners_unsubscribe(token, learner, course):
    owner, forwarded_to = Client(), Client()
    owner.post(unsubscribe_url(token), {"action": "unsubscribe"})
    response = forwarded_to.post(unsubscribe_url(token), {"action": "resubscribe"})
    assert response.status_code == 403 and optout_of(learner, course) is not None
    assert b">Resubscribe</button>" in owner.get(unsubscribe_url(token)).content
    owner.post(unsubscribe_url(token), {"action": "resubscribe"})
    assert optout_of(learner, course) is None


def test_someone_else_signed_in_cannot_resubscribe_the_owner(client, token, learner, course):
    api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.DASHBOARD)
    client.force_login(factories.make_user())
    assert b">Resubscribe</button>" not in client.get(unsubscribe_url(token)).content
    assert client.post(unsubscribe_url(token), {"action": "resubscribe"}).status_code == 403
    assert optout_of(learner, course) is not None


def test_the_undo_lasts_an_hour(client, token, learner, course, monkeypatch):
    client.post(unsubscribe_url(token), {"action": "unsubscribe"})
    later = time.time() + views.UNDO_SECONDS + 1
    monkeypatch.setattr(views.time, "time", lambda: later)
    assert b">Resubscribe</button>" not in client.get(unsubscribe_url(token)).content
    assert client.post(unsubscribe_url(token), {"action": "resubscribe"}).status_code == 403


def test_the_unsubscribe_form_needs_its_csrf_token(token, learner, course):
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(unsubscribe_url(token), {"action": "unsubscribe"}).status_code == 403
    page = strict.get(unsubscribe_url(token)).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = strict.post(
        unsubscribe_url(token), {"action": "unsubscribe", "csrfmiddlewaretoken": csrf}
    )
    assert response.status_code == 200
    assert optout_of(learner, course) is not None


@pytest.mark.parametrize("bad", ["forged", "other_course", "damaged", "deleted_user"])
def test_a_bad_token_gets_a_clear_400_page(client, learner, course, bad):
    token = {
        "forged": make_token(learner.pk, course.id)[:-4] + "AAAA",
        "other_course": ".".join(
            [
                make_token(learner.pk, course.id).split(".")[0],
                make_token(learner.pk, "course-v1:X+Y+Z").split(".")[1],
                make_token(learner.pk, course.id).split(".")[2],
            ]
        ),
        "damaged": "not-a-token",
        "deleted_user": make_token(999_999, course.id),
    }[bad]
    for response in (client.get(unsubscribe_url(token)), client.post(unsubscribe_url(token))):
        assert response.status_code == 400
        assert b"This unsubscribe link does not work" in response.content
        assert b"Traceback" not in response.content
    assert not Optout.objects.exists()


# --- RFC 8058 one-click -------------------------------------------------------------------------


def test_one_click_form_encoded_unsubscribes_with_200_and_no_redirect(token, learner, course):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(one_click_url(token), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert not response.cookies
    assert optout_of(learner, course).how == Optout.ONE_CLICK


def test_one_click_multipart_unsubscribes(token, learner, course):
    strict = Client(enforce_csrf_checks=True)
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    )
    response = strict.post(
        one_click_url(token), body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 200
    assert optout_of(learner, course).how == Optout.ONE_CLICK


def test_one_click_twice_keeps_one_row(client, token, learner, course):
    for _ in range(2):
        client.post(one_click_url(token), {"List-Unsubscribe": "One-Click"})
    assert Optout.objects.filter(user=learner).count() == 1


def test_one_click_without_its_body_changes_nothing(client, token, learner, course):
    assert client.post(one_click_url(token), {}).status_code == 400
    assert optout_of(learner, course) is None


def test_one_click_with_a_forged_token_is_400(client, token):
    response = client.post(one_click_url(token[:-2] + "zz"), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert not Optout.objects.exists()


def test_opening_the_one_click_url_in_a_browser_only_asks(client, token, learner, course):
    response = client.get(one_click_url(token))
    assert b">Unsubscribe</button>" in response.content
    assert optout_of(learner, course) is None


# --- From a received message to an opt-out ------------------------------------------------------


def test_the_links_in_a_received_message_unsubscribe(smtp_settings, smtp_sink, learner, course):
    email = CourseEmail.objects.create(course_id=course.id, subject="Hi", html_message="<p>x</p>")
    send_batch(get_prepared_message(email), [Recipient(learner.pk, learner.email, "Ana")])
    message = smtp_sink.wait_for(1)[0].parsed()
    one_click = re.search(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"])).group(1)
    path = one_click.split("//", 1)[1].partition("/")[2]
    response = Client().post("/" + path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert optout_of(learner, course).how == Optout.ONE_CLICK


# --- The services -------------------------------------------------------------------------------


def test_opt_out_keeps_the_first_way_it_was_made(learner, course):
    api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.DASHBOARD)
    api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.LINK)
    assert optout_of(learner, course).how == Optout.DASHBOARD
    api.opt_in(user_id=learner.pk, course_id=course.id)
    assert not api.is_opted_out(user_id=learner.pk, course_id=course.id)


# --- Every kind of broken link, on both URLs ---------------------------------------------------


def broken_tokens(good: str) -> dict[str, str]:
    user_part, course_part, signature = good.split(".")
    return {
        "truncated": good[: len(good) // 2],
        "signature cut": good[:-1],
        "no signature": f"{user_part}.{course_part}.",
        "extra part": good + ".x",
        "other user": f"{int(user_part, 36) + 1:x}.{course_part}.{signature}",
        "course part not base64": f"{user_part}.%%%.{signature}",
        "not utf-8": f"{user_part}.__8.{signature}",
        "older format": "MQ:1tZxyz:abcdefghijklmnopqrstuvwxyz0123456789",
        "huge user id": f"{'z' * 40}.{course_part}.{signature}",
        "non-ascii": "ünïcødé.тест.签名",
        "very long": "A" * 3000,
    }


@pytest.mark.parametrize("kind", list(broken_tokens("a.b.c")))
def test_every_broken_link_gets_a_clear_400_and_changes_nothing(client, token, kind):
    bad = broken_tokens(token)[kind]
    for response in (
        client.get(unsubscribe_url(bad)),
        client.post(unsubscribe_url(bad), {"action": "unsubscribe"}),
        client.get(one_click_url(bad)),
    ):
        assert response.status_code == 400
        assert b"This unsubscribe link does not work" in response.content
    response = client.post(one_click_url(bad), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
    assert not Optout.objects.exists()


def test_a_post_that_is_not_one_of_the_buttons_changes_nothing(client, token, learner, course):
    response = client.post(unsubscribe_url(token), {"action": "delete-account"})
    assert response.status_code == 400
    assert b">Unsubscribe</button>" in response.content
    assert optout_of(learner, course) is None


def test_the_pages_are_never_cached(client, token):
    for response in (client.get(unsubscribe_url(token)), client.get(one_click_url(token))):
        assert "no-store" in response["Cache-Control"]


def test_the_link_works_whoever_is_signed_in(client, token, learner, course):
    client.force_login(factories.make_user())  # e.g. a shared computer: the token decides
    client.post(unsubscribe_url(token), {"action": "unsubscribe"})
    assert optout_of(learner, course).how == Optout.LINK


def test_signed_in_as_someone_else_the_page_speaks_of_the_links_owner(client, token, learner):
    client.force_login(factories.make_user("prof"))  # staff following a learner's link
    confirm = client.get(unsubscribe_url(token)).content.decode()
    assert "not to yours" in confirm and "You will no longer" not in confirm
    done = client.post(unsubscribe_url(token), {"action": "unsubscribe"}).content.decode()
    assert "Email Settings" in done and "on your dashboard" not in done
    assert "You are unsubscribed" not in done and "owner, signed in, can also change" in done


def test_signed_in_as_the_links_owner_the_page_points_to_their_email_settings(
    client, token, learner
):
    client.force_login(learner)
    done = client.post(unsubscribe_url(token), {"action": "unsubscribe"}).content.decode()
    assert "You are unsubscribed" in done and "on your dashboard" in done


# --- One-click: nothing but the opt-out ---------------------------------------------------------


def test_one_click_sets_no_cookie_and_leaves_a_session_alone(token, learner, course):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(learner)
    stored = Session.objects.filter(pk=browser.session.session_key)
    session_before = list(stored.values_list("session_data", "expire_date"))
    response = browser.post(one_click_url(token), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and not response.cookies
    assert "Set-Cookie" not in str(response.serialize_headers())
    assert list(stored.values_list("session_data", "expire_date")) == session_before
    assert response.content == b"Unsubscribed." and "Location" not in response
    assert optout_of(learner, course).how == Optout.ONE_CLICK


@pytest.mark.parametrize(
    "body,content_type",
    [
        ("List-Unsubscribe=one-click", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=", "application/x-www-form-urlencoded"),
        ("Unsubscribe=One-Click", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=One-Click", "text/plain"),
        ('{"List-Unsubscribe": "One-Click"}', "application/json"),
        ("", "application/x-www-form-urlencoded"),
    ],
)
def test_one_click_with_a_wrong_body_is_400(token, learner, course, body, content_type):
    response = Client().post(one_click_url(token), body, content_type=content_type)
    assert response.status_code == 400
    assert response.content == b"Expected List-Unsubscribe=One-Click."
    assert optout_of(learner, course) is None


def test_one_click_keeps_an_earlier_opt_out_as_it_was(client, token, learner, course):
    factories.opt_out(learner, course.id, how=Optout.DASHBOARD)
    assert client.post(one_click_url(token), {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert optout_of(learner, course).how == Optout.DASHBOARD


def test_only_one_click_is_exempt_from_csrf():
    from bulk_email import urls

    exempt = [p.name for p in urls.urlpatterns if getattr(p.callback, "csrf_exempt", False)]
    assert exempt == ["one_click"]


# --- The learner's language ---------------------------------------------------------------------


def test_logged_out_the_page_speaks_the_link_owners_preferred_language(client, token, learner):
    from lms_stub.models import UserProfile

    UserProfile.objects.filter(user=learner).update(language="ar")
    page = client.get(unsubscribe_url(token), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="ar" dir="rtl">' in page and ">إلغاء الاشتراك</button>" in page
    response = client.post(
        one_click_url(token), {"List-Unsubscribe": "One-Click"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.content.decode() == "أُلغي الاشتراك."


def test_with_no_preferred_language_the_page_follows_the_browser(client, token):
    page = client.get(unsubscribe_url(token), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<html lang="fr" dir="ltr">' in page and ">Se désabonner</button>" in page


def test_someone_else_signed_in_reads_it_in_their_own_language(client, token, learner):
    from lms_stub.models import UserProfile

    UserProfile.objects.filter(user=learner).update(language="ar")
    client.force_login(factories.make_user())
    page = client.get(unsubscribe_url(token), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<html lang="fr"' in page
