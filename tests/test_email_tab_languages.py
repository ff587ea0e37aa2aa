"""The staff side in French and Arabic through Django's test client: the JSON API's errors say
their message in the request's language and keep the code scripts rely on; the tab, its
script's catalog, CKEditor, the states, the checks and the commands follow the language."""

import html
import io
import json
import re

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

from bulk_email import api
from bulk_email.checks import check_site_url
from tests.factories import make_user
from tests.test_checks import VALID
from tests.test_email_tab import api_url, call, in_an_hour

pytestmark = pytest.mark.django_db

INVALID_EMAIL = {
    "subject": "",
    "message": "<p> </p>",
    "targets": [],
    "send_at": "2001-01-01T10:00Z",
}
FRENCH = {
    "subject": "Saisissez un objet.",
    "message": "Rédigez un message : il est vide.",
    "targets": "Choisissez au moins un groupe de destinataires.",
    "send_at": "L'heure prévue est passée ; choisissez-en une plus tardive.",
}


@pytest.fixture(autouse=True)
def back_to_the_sites_language():
    """LocaleMiddleware activates the request's language in this thread and nothing in the test
    client undoes it: the next test would run in French."""
    yield
    translation.deactivate()


def dashboard(client, course, language: str = "en") -> str:
    url = reverse("instructor_dashboard", args=[course.id])
    return client.get(url, {"tab": "email"}, **in_language(language)).content.decode()


def in_language(language: str) -> dict:
    """The headers of a browser whose person reads ``language`` (LocaleMiddleware's choice)."""
    return {"HTTP_ACCEPT_LANGUAGE": language}


# --- The JSON API: translated "message", the same "code" -----------------------------------------


def test_a_french_request_gets_french_messages_and_the_same_code(client, course, instructor):
    client.force_login(instructor)
    english = call(client, "POST", api_url(course, "emails/"), INVALID_EMAIL).json()
    french = call(
        client, "POST", api_url(course, "emails/"), INVALID_EMAIL, **in_language("fr")
    ).json()
    assert french["code"] == english["code"] == "invalid"
    assert french["field"] == english["field"] == "subject"
    assert french["message"] == FRENCH["subject"]
    assert french["errors"] == FRENCH


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_every_kind_of_refusal_keeps_its_code_in_every_language(
    client, course, instructor, language
):
    """Not signed in as staff, an unknown send, a body that is not JSON, a bad parameter:
    each in English and in ``language``, with one code and two wordings."""
    outsider = make_user()
    cases = [
        (outsider, "GET", api_url(course, "tasks/"), None, "not_course_staff", 403),
        (instructor, "GET", api_url(course, "tasks/999999/"), None, "unknown_task", 404),
        (instructor, "GET", api_url(course, "tasks/") + "?limit=-1", None, "bad_request", 400),
        (instructor, "POST", api_url(course, "count/"), {"targets": "x"}, "bad_request", 400),
    ]
    for user, method, url, body, code, status in cases:
        client.force_login(user)
        english = call(client, method, url, body)
        translated = call(client, method, url, body, **in_language(language))
        assert english.status_code == translated.status_code == status, url
        assert english.json()["code"] == translated.json()["code"] == code
        assert (
            translated.json()["message"]
            and translated.json()["message"] != english.json()["message"]
        ), (language, url, translated.json()["message"])


def test_arabic_messages_are_arabic(client, course, instructor):
    client.force_login(instructor)
    data = call(
        client, "POST", api_url(course, "emails/"), INVALID_EMAIL, **in_language("ar")
    ).json()
    assert data["code"] == "invalid" and data["message"] == "أدخل موضوعًا."
    assert data["errors"]["targets"] == "اختر مجموعة واحدة على الأقل للإرسال إليها."


def test_hostile_accept_language_falls_back_to_english(client, course, instructor):
    client.force_login(instructor)
    for header in ["xx-YY", "../../etc/passwd", "fr;q=abc," * 50, "ar\x00"]:
        data = call(
            client, "POST", api_url(course, "emails/"), INVALID_EMAIL, HTTP_ACCEPT_LANGUAGE=header
        ).json()
        assert data["code"] == "invalid"
        assert data["message"] in {"Enter a subject.", FRENCH["subject"], "أدخل موضوعًا."}


def test_a_task_lists_its_state_in_the_request_language(client, course, instructor):
    api.send_email(
        access=api.staff_access(user=instructor, course_id=course.id),
        subject="Quiz",
        html="<p>Quiz</p>",
        targets=["myself"],
        send_at=in_an_hour(),
    )
    client.force_login(instructor)
    tasks = call(client, "GET", api_url(course, "tasks/"), **in_language("fr")).json()["tasks"]
    assert tasks[0]["state"] == "SCHEDULED" and tasks[0]["state_label"] == "Programmé"
    assert tasks[0]["groups"] == ["Moi-même"]


# --- The tab ------------------------------------------------------------------------------------


def test_the_french_tab_is_french_with_plural_counts(client, course, instructor):
    client.force_login(instructor)
    page = dashboard(client, course, "fr")
    assert 'lang="fr" dir="ltr"' in page
    assert "Envoyer un e-mail" in page and "Moi-même" in page and "(1 personne)" in page
    assert "Tous les apprenants" in page and "Send email" not in page


def test_the_arabic_tab_is_right_to_left_with_six_plural_forms(client, course, instructor):
    client.force_login(instructor)
    page = dashboard(client, course, "ar")
    assert 'lang="ar" dir="rtl"' in page
    assert "إرسال رسالة" in page and "(1 شخص)" in page  # "Myself": one person, Arabic's form 1


def test_the_tab_loads_the_script_catalog_before_its_modules(client, course, instructor):
    client.force_login(instructor)
    page = dashboard(client, course)
    catalog = page.index('<script src="/email/jsi18n/">')
    assert catalog < page.index('<script type="module" src="/static/bulk_email/email_tab.js"')


@pytest.mark.parametrize("language,words", [("fr", "Envoyer l'e-mail ?"), ("ar", "إرسال الرسالة؟")])
def test_the_script_catalog_serves_the_tabs_words(client, language, words):
    script = client.get("/email/jsi18n/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert json.dumps(words)[1:-1] in script or words in script
    assert "pluralidx" in script


@pytest.mark.parametrize("language", ["en", "fr", "ar"])
def test_ckeditor_speaks_the_users_language(client, course, instructor, language):
    client.force_login(instructor)
    page = dashboard(client, course, language)
    config = json.loads(html.unescape(re.search(r'data-config="([^"]*)"', page).group(1)))
    assert config["language"] == language


# --- Checks and commands ------------------------------------------------------------------------


def test_a_check_message_follows_the_active_language():
    with (
        override_settings(BULK_EMAIL={**VALID, "SITE_URL": "example.com"}),
        translation.override("fr"),
    ):
        (error,) = check_site_url()
    assert error.id == "bulk_email.E007"
    assert error.msg.startswith('BULK_EMAIL["SITE_URL"] doit être une URL http(s) absolue')


def test_a_command_speaks_the_active_language():
    out = io.StringIO()
    with translation.override("ar"):
        call_command("bulk_email_status", stdout=out)
    assert out.getvalue().strip() == "لا توجد عمليات إرسال."


def test_the_delivery_report_says_why_in_the_readers_language(client, course, instructor):
    """The reasons the pipeline writes are translated for the reader; a mail server's reply,
    which no catalog has, is shown as it came."""
    from bulk_email.models import RecipientOutcome
    from bulk_email.pipeline.batches import OPTED_OUT
    from tests.factories import finished_task, record_feedback, record_outcome

    task = finished_task(course, instructor, sent=3)
    record_outcome(task, make_user("gone"), code=550, detail="550 5.1.1 No such user")
    record_outcome(task, make_user("out"), status=RecipientOutcome.SKIPPED, detail=OPTED_OUT)
    record_feedback(task, make_user("bounced"))
    client.force_login(instructor)
    url = api_url(course, f"tasks/{task.pk}/recipients/")
    rows = call(client, "GET", url, **in_language("fr")).json()["recipients"]
    why = {row["kind"]: row["why"] for row in rows}
    assert why["skipped"] == "S'est désinscrit des e-mails de ce cours."
    assert why["failed"] == "550 5.1.1 No such user"
    assert why["bounced"].startswith("Rebond.")
    assert {row["kind"] for row in rows} == {"failed", "skipped", "bounced"}  # codes stay
