"""The Email tab's first hour, in real Chromium: the viewer renders on every opening and
closes with Escape from inside the message; every error shows at once before any question;
the confirm dialog starts on Cancel; a finished send leaves the running list for the history."""

import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from bulk_email import api
from bulk_email.models import EmailTask
from lms_stub.demo import DEMO_COURSE_ID, seed_demo
from tests.e2e.conftest import ink
from tests.e2e.test_email_tab import open_tab, type_in_editor

pytestmark = pytest.mark.django_db(transaction=True)
VIEWER = "#bulk-email-viewer"
MIN_INK = 200  # dark pixels: a line of message text has thousands, an empty page none


def schedule(subject: str, text: str) -> EmailTask:
    instructor = get_user_model().objects.get(username="instructor")
    access = api.staff_access(user=instructor, course_id=DEMO_COURSE_ID)
    send_at = timezone.now() + datetime.timedelta(days=1)
    return api.send_email(
        access=access, subject=subject, html=f"<p>{text}</p>", targets=["myself"], send_at=send_at
    )


def frame_body(page):
    return page.frame_locator(f"{VIEWER}-frame").locator("body")


def expect_viewer_shows(page, text: str) -> None:
    """The text is in the frame's document, and the frame shows it on the screen."""
    expect(page.locator(VIEWER)).to_be_visible()
    expect(frame_body(page)).to_contain_text(text)
    frame = page.locator(f"{VIEWER}-frame")
    for _ in range(30):
        if ink(page.context.browser, frame.screenshot()) > MIN_INK:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the viewer's frame is blank on the screen, though it holds {text!r}")


def close_viewer(page) -> None:
    page.get_by_role("button", name="Close").click()
    expect(page.locator(VIEWER)).to_be_hidden()


def view_row(page, subject: str) -> None:
    row = page.locator("#bulk-email-scheduled tbody tr", has_text=subject)
    row.get_by_role("button", name=re.compile("^View")).click()


def compose(page, subject: str, text: str) -> None:
    page.get_by_label("Myself").check()
    page.get_by_label("Subject").fill(subject)
    type_in_editor(page, text)


def test_view_and_preview_render_the_message_on_every_opening(live_server, page, screenshot):
    seed_demo()
    schedule("First notice", "Text of the first notice")
    schedule("Second notice", "Text of the second notice")
    open_tab(page, live_server)
    for opening in range(3):
        view_row(page, "First notice")
        expect_viewer_shows(page, "Text of the first notice")
        if opening == 2:
            screenshot("email-tab-view-third-opening", full_page=False)
        close_viewer(page)
    view_row(page, "Second notice")
    expect_viewer_shows(page, "Text of the second notice")
    close_viewer(page)
    compose(page, "Previewed", "Bonjour, 欢迎 — previewed text.")
    for _ in range(2):
        page.get_by_role("button", name="Preview").click()
        expect_viewer_shows(page, "Bonjour, 欢迎 — previewed text.")
        close_viewer(page)


def test_escape_closes_the_viewer_with_focus_inside_the_message(live_server, page):
    seed_demo()
    schedule("First notice", "Text of the first notice")
    open_tab(page, live_server)
    compose(page, "Previewed", "Previewed text.")
    page.get_by_role("button", name="Preview").click()
    expect_viewer_shows(page, "Previewed text.")
    page.keyboard.press("Escape")  # as it opened
    expect(page.locator(VIEWER)).to_be_hidden()
    page.get_by_role("button", name="Preview").click()
    expect_viewer_shows(page, "Previewed text.")
    frame_body(page).get_by_text("Previewed text.").click()
    page.keyboard.press("Escape")
    expect(page.locator(VIEWER)).to_be_hidden()
    view_row(page, "First notice")
    expect_viewer_shows(page, "Text of the first notice")
    frame_body(page).get_by_text("Text of the first notice").click()
    page.keyboard.press("Escape")
    expect(page.locator(VIEWER)).to_be_hidden()


def test_every_error_shows_at_once_and_no_question_is_asked(live_server, page, screenshot):
    seed_demo()
    open_tab(page, live_server)
    page.get_by_role("button", name="Send email").click()
    expect(page.locator("#bulk-email-error-subject")).to_have_text("Enter a subject.")
    expect(page.locator("#bulk-email-error-message")).to_have_text("Write a message: it is empty.")
    expect(page.locator("#bulk-email-error-targets")).to_have_text(
        "Choose at least one group to send to."
    )
    expect(page.locator("#bulk-email-confirm")).to_be_hidden()
    screenshot("email-tab-all-errors-at-once")
    page.get_by_label("Subject").fill("x" * 130)
    type_in_editor(page, "Kept text")
    page.get_by_role("button", name="Send email").click()
    expect(page.locator("#bulk-email-error-subject")).to_contain_text("the limit is 128")
    expect(page.locator("#bulk-email-error-targets")).to_be_visible()
    expect(page.locator("#bulk-email-error-message")).to_be_hidden()
    expect(page.locator("#bulk-email-confirm")).to_be_hidden()
    assert EmailTask.objects.count() == 0


def test_the_confirm_dialog_starts_on_cancel(live_server, page):
    seed_demo()
    open_tab(page, live_server)
    compose(page, "Careful", "Nothing goes unless I say so.")
    page.get_by_role("button", name="Send email").click()
    expect(page.locator("#bulk-email-confirm")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "bulk-email-confirm-cancel"
    page.keyboard.press("Enter")
    expect(page.locator("#bulk-email-confirm")).to_be_hidden()
    assert EmailTask.objects.count() == 0


def finish(task: EmailTask) -> None:
    """What the worker does to a send, without a worker: the SQLite pass has none."""
    now = timezone.now()
    tasks = EmailTask.objects.filter(pk=task.pk)
    tasks.transition(to=EmailTask.PENDING)
    tasks.transition(to=EmailTask.STARTED, started_at=now)
    tasks.transition(to=EmailTask.SUCCESS, finished_at=now, fan_out_done=True)


def test_a_finished_send_moves_from_the_running_list_to_the_history(live_server, page, screenshot):
    seed_demo()
    open_tab(page, live_server)
    compose(page, "Soon finished", "It ends.")
    page.get_by_role("button", name="Send email").click()
    page.locator("#bulk-email-confirm-ok").click()
    running = page.locator("#bulk-email-active .bulk-email-run")
    expect(running).to_have_count(1)
    expect(running).to_contain_text("Soon finished")
    finish(EmailTask.objects.get())
    expect(running).to_have_count(0)
    expect(page.locator("#bulk-email-active-empty")).to_be_visible()
    sent = page.locator("#bulk-email-sent tbody tr")
    expect(sent).to_have_count(1)
    expect(sent).to_contain_text("Soon finished")
    page.locator("#bulk-email-active-heading").evaluate("h => h.scrollIntoView()")
    screenshot("email-tab-finished-send-in-history", full_page=False)


def test_an_unknown_keyword_is_named_before_sending(live_server, page, screenshot):
    seed_demo()
    open_tab(page, live_server)
    compose(page, "Hello %%USER_FIRSTNAME%%", "Your id: %%USER_ID%%, %%COURSE_NAME%%.")
    page.get_by_role("button", name="Send email").click()
    text = page.locator("#bulk-email-confirm-text")
    expect(text).to_contain_text("Note: %%USER_FIRSTNAME%%, %%COURSE_NAME%% are not keywords")
    expect(text).not_to_contain_text("%%USER_ID%%, %%COURSE_NAME%% are")
    screenshot("email-tab-unknown-keyword")
    page.keyboard.press("Escape")
    assert EmailTask.objects.count() == 0
