"""The learner's side in French and in Arabic, in a real browser whose own language is
English: the profile's language at sign-in, the dashboard's Email Settings (the dialog and
its script's messages), the mail's footer, and the unsubscribe page reached signed out from
that mail. No English word of the interface is left; Arabic is right-to-left."""

import re
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from bulk_email import pipeline
from bulk_email.models import EmailTask, Optout
from lms_stub.demo import DEMO_COURSE_ID, seed_demo
from lms_stub.models import UserProfile
from tests.factories import make_email

pytestmark = pytest.mark.django_db(transaction=True)

DOCS_SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"
# Words of the English interface; none may show on a French or Arabic page.
ENGLISH_UI_WORDS = [
    "Email Settings", "Email settings", "Receive course emails", "Save", "Close", "Saved",
    "Saving", "Not saved", "Unsubscribe", "Resubscribe", "unsubscribed", "Course email",
    "course email", "My courses", "Dashboard", "dashboard", "Sign out", "Sign in", "Mailbox",
    "You are", "You will", "track", "Messages the course team", "Language",
]  # fmt: skip
APOSTROPHE = "\N{RIGHT SINGLE QUOTATION MARK}"
WORDS = {
    "fr": {
        "settings": f"Paramètres d{APOSTROPHE}e-mail",
        "receive": "Recevoir les e-mails du cours",
        "saved": "vous ne recevrez plus",
        "unsubscribe": "Se désabonner",
        "unsubscribed": "Vous êtes désabonné(e)",
        "footer": "Vous recevez cet e-mail parce que",
        "on": "activés",
    },
    "ar": {
        "settings": "إعدادات البريد",
        "receive": "تلقي رسائل المقرر",
        "saved": "لن تتلقى بعد الآن",
        "unsubscribe": "إلغاء الاشتراك",
        "unsubscribed": "أُلغي اشتراكك",
        "footer": "تصلك هذه الرسالة لأنك",
        "on": "مفعَّل",
    },
}


def english_words_on(page) -> list[str]:
    text = page.locator("body").inner_text()
    return [word for word in ENGLISH_UI_WORDS if re.search(rf"\b{re.escape(word)}\b", text)]


def assert_page_language(page, language: str) -> None:
    direction = "rtl" if language == "ar" else "ltr"
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("html")).to_have_attribute("dir", direction)
    assert english_words_on(page) == []


def sign_in(page, live_server, username: str) -> None:
    """The sign-in page is in the browser's English; the dashboard after it in the
    profile's language."""
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(username)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/")


def footer_and_unsubscribe_link(sink) -> tuple[str, str]:
    """Send the demo course's learners an email through the pipeline in this process; the
    demo learner's footer text and unsubscribe link."""
    instructor = get_user_model().objects.get(username="instructor")
    email = make_email(DEMO_COURSE_ID, sender=instructor, targets=("learners",), subject="S1")
    task = EmailTask.objects.create(email=email, requester=instructor, state=EmailTask.PENDING)
    for job in pipeline.fan_out(task_id=task.pk):
        pipeline.send_batch(batch_id=job.id)
    address = get_user_model().objects.get(username="learner").email
    message = next(m for m in sink.messages if m.rcpt_tos == [address]).parsed()
    html = message.get_body(("html",)).get_content()
    link = re.search(r'href="([^"]+/email/unsubscribe/[^"]+)"', html).group(1)
    return html, link


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_the_learners_email_settings_and_unsubscribe_in_their_language(
    language, live_server, page, screenshot, smtp_settings, smtp_sink
):
    seed_demo()
    smtp_settings.BULK_EMAIL = {**smtp_settings.BULK_EMAIL, "SITE_URL": live_server.url}
    UserProfile.objects.filter(user__username="learner").update(language=language)
    words = WORDS[language]

    sign_in(page, live_server, "learner")
    assert_page_language(page, language)
    page.locator("a[data-bulk-email-dialog]").first.click()
    dialog = page.get_by_role("dialog", name=words["settings"])
    checkbox = dialog.get_by_role("checkbox", name=words["receive"])
    expect(checkbox).to_be_checked()
    page.keyboard.press("Space")  # the script saves at once and says so
    expect(dialog.get_by_role("status")).to_contain_text(words["saved"])
    assert Optout.objects.filter(user__username="learner", course_id=DEMO_COURSE_ID).exists()
    assert_page_language(page, language)
    path = screenshot(f"learner-email-settings-{language}")
    page.keyboard.press("Space")  # on again, for the mail below
    # The summary changes only once the server has stored it: the send below must not race
    # that request (SQLite's live server shares one database with this thread).
    expect(page.locator("[data-bulk-email-summary]").first).to_have_text(words["on"])
    expect(dialog.get_by_role("status")).not_to_contain_text(words["saved"])
    page.keyboard.press("Escape")

    html, link = footer_and_unsubscribe_link(smtp_sink)
    direction = "rtl" if language == "ar" else "ltr"
    assert f'lang="{language}" dir="{direction}"' in html and words["footer"] in html

    # Signed out, the cookie gone, an English browser: the page follows the link's owner.
    page.context.clear_cookies()
    page.goto(link)
    assert_page_language(page, language)
    unsubscribe_path = screenshot(f"learner-unsubscribe-{language}")
    page.get_by_role("button", name=words["unsubscribe"]).click()
    expect(page.get_by_role("heading", name=words["unsubscribed"])).to_be_visible()
    assert_page_language(page, language)
    if language == "ar":  # the README's pictures of the right-to-left learner pages
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_SCREENSHOTS / "learner-email-settings-ar.png")
        shutil.copy(unsubscribe_path, DOCS_SCREENSHOTS / "learner-unsubscribe-ar.png")
