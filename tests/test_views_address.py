"""A learner whose address bounced: the dashboard says so; "Send me a test message" (POST,
CSRF, rate-limited) mails a real message through the site's email backend to a real SMTP
server; its link (GET changes nothing, POST with CSRF) clears the suppression. A complaint is
cleared only by turning course email back on."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.core import signing
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from bulk_email import api
from bulk_email.models import Suppression
from lms_stub.smtp_sink import Fault
from tests import factories

pytestmark = pytest.mark.django_db
TEST_URL = reverse("bulk_email:address_test")


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def course():
    return factories.make_course(display_name="Physique générale — 物理")


@pytest.fixture
def learner(course):
    user = factories.make_user("zoe", email="Zoe@Example.org", name="Zoë")
    factories.enroll(user, course)
    return user


@pytest.fixture
def signed_in(client, learner):
    client.force_login(learner)
    return client


def bounced(address="zoe@example.org", **fields) -> Suppression:
    row = factories.suppress(address)
    fields = {"status_code": "5.2.2", "diagnostic": "552 5.2.2 Mailbox full", **fields}
    Suppression.objects.filter(pk=row.pk).update(**fields)
    row.refresh_from_db()
    return row


def dashboard(client) -> str:
    return client.get("/dashboard/").content.decode()


def link_in(message) -> str:
    text = message.parsed().get_body(("plain",)).get_content()
    return re.search(r"https?://\S+/email/address/confirm/\S+/", text).group(0)


def path_of(link: str) -> str:
    return link.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


# --- What the dashboard says --------------------------------------------------------------------


def test_nothing_is_shown_when_mail_reaches_the_address(signed_in):
    assert "Course email is not reaching you" not in dashboard(signed_in)


def test_a_bounced_address_is_shown_with_the_servers_words(signed_in):
    bounced()
    page = dashboard(signed_in)
    assert "Course email is not reaching you" in page
    assert "Zoe@Example.org" in page and "5.2.2" in page and "552 5.2.2 Mailbox full" in page
    assert "Send me a test message" in page


def test_a_hostile_diagnostic_is_text(signed_in):
    bounced(diagnostic='<img src=x onerror="alert(1)"> 550')
    page = dashboard(signed_in)
    assert "<img src=x" not in page and "&lt;img src=x" in page


def test_a_complaint_says_that_resubscribing_clears_it(signed_in):
    factories.suppress("zoe@example.org", reason=Suppression.COMPLAINT)
    page = dashboard(signed_in)
    assert "reported as spam" in page and "turn it back on in a course" in page
    assert "Send me a test message" not in page


def test_an_operators_suppression_sends_the_learner_to_the_team(signed_in):
    factories.suppress("zoe@example.org", reason=Suppression.MANUAL)
    page = dashboard(signed_in)
    assert "Ask them to restore it" in page and "Send me a test message" not in page


# --- The test message and its link -------------------------------------------------------------


def test_the_test_message_goes_out_and_its_link_clears_the_suppression(
    signed_in, learner, smtp_settings, smtp_sink
):
    row = bounced()
    response = signed_in.post(TEST_URL, {"next": "/dashboard/"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    (message,) = smtp_sink.wait_for(1)
    assert message.rcpt_tos == ["Zoe@Example.org"]
    assert message.parsed()["Subject"] == "Test message: does course email reach you?"
    assert "We sent a test message to Zoe@Example.org" in dashboard(signed_in)
    link = path_of(link_in(message))

    page = Client().get(link)  # a mail scanner, or the learner on another device
    assert page.status_code == 200 and "Your address works" in page.content.decode()
    assert Suppression.objects.filter(pk=row.pk).exists()  # GET changes nothing

    strict = Client(enforce_csrf_checks=True)
    assert strict.post(link).status_code == 403  # no CSRF token: nothing changes
    assert Suppression.objects.filter(pk=row.pk).exists()
    token = strict.get(link).cookies["csrftoken"].value
    done = strict.post(link, {"csrfmiddlewaretoken": token})
    assert done.status_code == 200 and "Course email will reach you again" in done.content.decode()
    assert not Suppression.objects.exists()
    entry = LogEntry.objects.get()
    assert entry.user_id == learner.pk and "a test message reached it" in entry.change_message
    assert "Course email is not reaching you" not in dashboard(signed_in)

    again = Client().post(link)
    assert again.status_code == 400 and "no longer works" in again.content.decode()


def test_the_link_stops_working_when_the_address_bounces_again(signed_in, smtp_settings, smtp_sink):
    row = bounced()
    signed_in.post(TEST_URL)
    link = path_of(link_in(smtp_sink.wait_for(1)[0]))
    Suppression.objects.filter(pk=row.pk).update(count=row.count + 1)  # the test bounced
    assert Client().post(link).status_code == 400
    assert Suppression.objects.filter(pk=row.pk).exists()


def test_the_link_stops_working_when_the_learner_changes_address(
    signed_in, learner, smtp_settings, smtp_sink
):
    bounced()
    signed_in.post(TEST_URL)
    link = path_of(link_in(smtp_sink.wait_for(1)[0]))
    learner.email = "zoe@elsewhere.example"
    learner.save()
    assert Client().post(link).status_code == 400 and Suppression.objects.exists()


@pytest.mark.parametrize("token", ["x", "a" * 500, "eyJ:forged:sig", "../../admin"])
def test_a_forged_link_changes_nothing(client, token):
    bounced()
    response = client.post(f"/email/address/confirm/{token}/")
    assert response.status_code in (400, 404) and Suppression.objects.exists()


def test_a_link_signed_for_another_suppression_does_not_clear_this_one(client, learner):
    other = bounced("someone@example.org")
    mine = bounced()
    token = signing.dumps([learner.pk, other.pk, other.count], salt="bulk_email.address_test")
    assert client.post(f"/email/address/confirm/{token}/").status_code == 400
    assert Suppression.objects.filter(pk__in=[other.pk, mine.pk]).count() == 2


def test_an_old_link_has_expired(client, learner, monkeypatch):
    row = bounced()
    token = signing.dumps([learner.pk, row.pk, row.count], salt="bulk_email.address_test")
    real = signing.time.time
    monkeypatch.setattr(signing.time, "time", lambda: real() + 8 * 86400)
    response = client.post(f"/email/address/confirm/{token}/")
    assert response.status_code == 400 and "expired" in response.content.decode()
    assert Suppression.objects.exists()


# --- Refusals of the test message ----------------------------------------------------------------


def test_the_test_needs_post_csrf_and_a_session(learner, smtp_settings, smtp_sink):
    bounced()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(learner)
    assert strict.get(TEST_URL).status_code == 405
    assert strict.post(TEST_URL).status_code == 403
    anonymous = Client()
    assert anonymous.post(TEST_URL).status_code == 302  # to the login page
    refused = anonymous.post(TEST_URL, HTTP_ACCEPT="application/json")
    assert refused.status_code == 401 and refused.json()["code"] == "not_signed_in"
    assert smtp_sink.messages == []


def test_tests_are_rate_limited(signed_in, smtp_settings, smtp_sink):
    bounced()
    for _ in range(3):
        assert signed_in.post(TEST_URL, HTTP_ACCEPT="application/json").status_code == 200
    refused = signed_in.post(TEST_URL, HTTP_ACCEPT="application/json")
    assert refused.status_code == 429
    assert set(refused.json()) == {"message", "field", "errors", "code"}
    assert refused.json()["code"] == "rate_limited"
    form = signed_in.post(TEST_URL, {"next": "/dashboard/"}, follow=True)
    assert "3 test messages this hour already" in form.content.decode()
    assert len(smtp_sink.wait_for(3)) == 3


def test_no_test_for_an_address_not_suppressed_or_complained(signed_in, smtp_settings, smtp_sink):
    assert signed_in.post(TEST_URL, HTTP_ACCEPT="application/json").status_code == 400
    factories.suppress("zoe@example.org", reason=Suppression.COMPLAINT)
    refused = signed_in.post(TEST_URL, HTTP_ACCEPT="application/json")
    assert (
        refused.status_code == 400
        and "reported a course email as spam" in refused.json()["message"]
    )
    assert smtp_sink.messages == [] and Suppression.objects.exists()


def test_a_refused_test_says_what_the_server_said_and_keeps_the_block(
    signed_in, smtp_settings, smtp_sink
):
    bounced()
    smtp_sink.faults.append(Fault.reject("Zoe@Example.org", "550 5.1.1 No such user here"))
    refused = signed_in.post(TEST_URL, HTTP_ACCEPT="application/json")
    assert refused.status_code == 400 and refused.json()["code"] == "test_not_sent"
    assert (
        "550 No such user here" in refused.json()["message"] or "550" in refused.json()["message"]
    )
    assert Suppression.objects.exists()


def test_an_unreachable_mail_server_is_a_clear_message(signed_in, settings):
    bounced()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    page = signed_in.post(TEST_URL, {"next": "/dashboard/"}, follow=True).content.decode()
    assert "could not be sent just now" in page and "Traceback" not in page


# --- A complaint is cleared by turning course email back on ---------------------------------------


def test_resubscribing_clears_a_complaint(course, learner):
    factories.suppress("zoe@example.org", reason=Suppression.COMPLAINT)
    access = api.learner_access(user=learner, course_id=course.id)
    api.set_receive_email(access=access, receive=False)
    assert Suppression.objects.exists()
    api.set_receive_email(access=access, receive=True)
    assert not Suppression.objects.exists()
    assert "turned course email back on" in LogEntry.objects.get().change_message


def test_resubscribing_leaves_a_bounce_alone(course, learner):
    bounced()
    api.set_receive_email(
        access=api.learner_access(user=learner, course_id=course.id), receive=True
    )
    assert Suppression.objects.exists()
