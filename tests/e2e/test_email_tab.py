"""The Email tab in real Chromium: compose in CKEditor (and its Source mode), preview, send to
two groups and watch a real worker deliver to the SMTP sink; schedule, edit, delete; history,
View, the report download; who is refused; 360 px and the keyboard alone."""

import csv
import datetime
import io
import re
import zoneinfo
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from bulk_email.models import EmailTask
from lms_stub.demo import DEMO_COURSE_ID, seed_demo
from lms_stub.models import CourseAccessRole
from lms_stub.seeding import ensure_user
from tests.e2e.conftest import log_in
from tests.factories import recipient_rows

pytestmark = pytest.mark.django_db(transaction=True)
TAB = f"/courses/{DEMO_COURSE_ID}/instructor/?tab=email"
API = f"/email/courses/{DEMO_COURSE_ID}/api/"
STAFF, VERIFIED = "Staff and Administrators", "Learners in the Verified Certificate Track"
# No daylight saving time there: the expected UTC time is fixed.
KOLKATA = "Asia/Kolkata"


def open_tab(page, live_server, username="instructor"):
    log_in(page, live_server, username, username)
    page.goto(live_server.url + TAB)
    page.locator("#cke_bulk-email-message .cke_wysiwyg_frame").wait_for()


def type_in_editor(page, text: str) -> None:
    body = page.frame_locator("#cke_bulk-email-message .cke_wysiwyg_frame").locator("body")
    body.click()
    page.keyboard.type(text)


def use_source_mode(page, html: str) -> None:
    """Open Source, append raw HTML to what the visual editor made, and go back."""
    page.locator("#cke_bulk-email-message .cke_button__source").click()
    source = page.locator("#cke_bulk-email-message textarea.cke_source")
    source.fill(source.input_value() + html)
    page.locator("#cke_bulk-email-message .cke_button__source").click()
    page.locator("#cke_bulk-email-message .cke_wysiwyg_frame").wait_for()


def demo_instructor_id() -> int:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="instructor").pk


def test_instructor_composes_previews_sends_and_watches_it_arrive(
    live_server, live_pipeline, smtp_sink, page, screenshot
):
    seed_demo()
    live_pipeline.start_worker()
    open_tab(page, live_server)
    page.get_by_label(STAFF).check()
    page.get_by_label(VERIFIED).check()
    subject = "Semaine 1 — bienvenue, 欢迎"
    page.get_by_label("Subject").fill(subject)
    expect(page.locator("#bulk-email-subject-counter")).to_have_text(
        f"{len(subject)} of 128 characters"
    )
    type_in_editor(page, "Bonjour %%USER_FULLNAME%%, the course starts on Monday.")
    use_source_mode(page, '<p><a href="https://example.com/syllabus">Syllabus</a></p>')
    screenshot("email-tab-compose")

    page.get_by_role("button", name="Preview").click()
    frame = page.frame_locator("#bulk-email-viewer-frame")
    expect(frame.locator("body")).to_contain_text("Bonjour Prof. Hélène Durand")
    expect(frame.get_by_role("link", name="Syllabus")).to_be_visible()
    expect(frame.locator("body")).to_contain_text("unsubscribe", ignore_case=True)
    assert page.locator("#bulk-email-viewer-frame").get_attribute("sandbox") == ""
    page.get_by_role("button", name="Close").click()

    audience = {
        "course_id": DEMO_COURSE_ID,
        "sender_id": demo_instructor_id(),
        "target_keys": ["staff", "track:verified"],
    }
    addresses = {row["email"] for row in recipient_rows(**audience)}
    expected = len(addresses)
    page.get_by_role("button", name="Send email").click()
    expect(page.locator("#bulk-email-confirm-text")).to_contain_text(f"to {expected} people")
    page.locator("#bulk-email-confirm-ok").click()
    expect(page.get_by_role("status")).to_contain_text("was queued for sending")
    run = page.locator(".bulk-email-run").first
    expect(run.locator(".bulk-email-state")).to_have_text("Success", timeout=60_000)
    expect(run.locator(".bulk-email-counts")).to_have_text(
        f"{expected} sent, 0 failed, 0 skipped of {expected}"
    )
    assert run.locator("progress").get_attribute("value") == str(expected)
    page.locator("#bulk-email-status").scroll_into_view_if_needed()
    screenshot("email-tab-progress", full_page=False)

    smtp_sink.wait_for(expected, timeout=30)
    received = [address for message in smtp_sink.messages for address in message.rcpt_tos]
    assert sorted(received) == sorted(addresses)
    first = smtp_sink.messages[0].parsed()
    assert first["Subject"] == subject
    assert "Syllabus" in first.get_body(("html",)).get_content()

    sent = page.locator("#bulk-email-sent tbody tr").first
    expect(sent).to_contain_text(f"{expected} sent, 0 failed")
    expect(sent).to_contain_text(f"{STAFF}, {VERIFIED}")
    page.locator("#bulk-email-sent-heading").evaluate("h => h.scrollIntoView()")
    screenshot("email-tab-history", full_page=False)
    sent.get_by_role("button", name=re.compile("^View")).click()
    expect(page.frame_locator("#bulk-email-viewer-frame").locator("body")).to_contain_text(
        "Syllabus"
    )
    page.get_by_role("button", name="Close").click()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the report (CSV)").click()
    report = Path(download_info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(report)))
    assert rows[0][:4] == ["task id", "requester", "created", "state"]
    assert rows[1][1] == "Prof. Hélène Durand" and rows[1][3] == "Success"
    assert rows[1][5:9] == [str(expected), str(expected), "0", "0"]


def test_instructor_schedules_edits_and_deletes_in_local_time(live_server, browser, screenshot):
    seed_demo()
    context = browser.new_context(viewport={"width": 1200, "height": 900}, timezone_id=KOLKATA)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        open_tab(page, live_server)
        tomorrow = timezone.now().astimezone(zoneinfo.ZoneInfo(KOLKATA)) + datetime.timedelta(1)
        day = tomorrow.date().isoformat()
        page.get_by_label("Myself").check()
        page.get_by_label("Subject").fill("Reminder: quiz on Friday")
        type_in_editor(page, "Do not forget the quiz.")
        page.get_by_label("At a date and time").check()
        expect(page.locator("#bulk-email-timezone")).to_have_text(
            re.compile("Asia/(Kolkata|Calcutta)")
        )
        page.get_by_label(re.compile("^Date and time")).fill(f"{day}T10:00")
        page.get_by_role("button", name="Schedule email").click()
        page.locator("#bulk-email-confirm-ok").click()
        expect(page.get_by_role("status")).to_contain_text("is scheduled for")

        task = EmailTask.objects.get(state=EmailTask.SCHEDULED)
        assert task.send_at == datetime.datetime.fromisoformat(f"{day}T04:30:00+00:00")
        row = page.locator("#bulk-email-scheduled tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("10:00")
        expect(row).to_contain_text("Reminder: quiz on Friday")

        row.get_by_role("button", name=re.compile("^View")).click()
        expect(page.frame_locator("#bulk-email-viewer-frame").locator("body")).to_contain_text(
            "Do not forget the quiz."
        )
        page.get_by_role("button", name="Close").click()

        row.get_by_role("button", name=re.compile("^Edit")).click()
        expect(page.get_by_label("Subject")).to_have_value("Reminder: quiz on Friday")
        page.get_by_label("Subject").fill("Reminder: quiz moved to Saturday")
        page.get_by_label(re.compile("^Date and time")).fill(f"{day}T11:15")
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_contain_text("Saved")
        expect(row).to_contain_text("Reminder: quiz moved to Saturday")
        expect(row).to_contain_text("11:15")
        task.refresh_from_db()
        assert task.email.subject == "Reminder: quiz moved to Saturday"
        assert task.send_at == datetime.datetime.fromisoformat(f"{day}T05:45:00+00:00")
        expect(page.get_by_label("Subject")).to_have_value("")  # the draft came back: empty

        row.get_by_role("button", name=re.compile("^Delete")).click()
        page.locator("#bulk-email-confirm-ok").click()
        expect(page.locator("#bulk-email-scheduled-empty")).to_be_visible()
        task.refresh_from_db()
        assert task.state == EmailTask.REVOKED
    finally:
        context.close()


def test_errors_show_next_to_their_fields_and_keep_what_was_typed(live_server, page):
    seed_demo()
    open_tab(page, live_server)
    page.get_by_label("Subject").fill("x" * 127 + "🎉")  # 128 code points, as the server counts
    expect(page.locator("#bulk-email-subject-counter")).to_have_text("128 of 128 characters")
    page.get_by_label("Subject").fill("x" * 130)
    expect(page.locator("#bulk-email-subject-counter")).to_contain_text("2 too many")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#bulk-email-error-subject")).to_contain_text("the limit is 128")
    expect(page.get_by_label("Subject")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Subject").fill("")
    page.frame_locator("#cke_bulk-email-message .cke_wysiwyg_frame").locator("body").fill("")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#bulk-email-error-message")).to_have_text("Write a message: it is empty.")
    expect(page.locator("#cke_bulk-email-message")).to_have_class(re.compile("bulk-email-invalid"))
    page.get_by_label("Subject").fill("x" * 130)
    type_in_editor(page, "Kept text")
    page.get_by_role("button", name="Send email").click()
    expect(page.locator("#bulk-email-error-targets")).to_have_text(
        "Choose at least one group to send to."
    )
    expect(page.get_by_label("Subject")).to_have_value("x" * 130)
    body = page.frame_locator("#cke_bulk-email-message .cke_wysiwyg_frame").locator("body")
    expect(body).to_contain_text("Kept text")
    assert EmailTask.objects.count() == 0


def test_a_learner_and_a_beta_tester_get_403_on_the_tab_and_its_endpoints(live_server, page):
    seed_demo()
    beta = ensure_user("beta", "Beta Tester", "beta")
    CourseAccessRole.objects.create(
        user=beta, course_id=DEMO_COURSE_ID, role=CourseAccessRole.BETA_TESTER
    )
    for username in ("learner", "beta"):
        page.context.clear_cookies()
        log_in(page, live_server, username, username)
        assert page.goto(live_server.url + TAB).status == 403
        for endpoint in ("groups/", "tasks/", "report.csv"):
            assert page.request.get(live_server.url + API + endpoint).status == 403, endpoint
        token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
        response = page.request.post(
            live_server.url + API + "emails/",
            data={"subject": "Hi", "message": "<p>Hi</p>", "targets": ["learners"]},
            headers={"X-CSRFToken": token, "Referer": live_server.url + TAB},
        )
        assert response.status == 403
    assert EmailTask.objects.count() == 0


def test_the_tab_at_360px_and_with_the_keyboard_alone(live_server, browser, screenshot):
    seed_demo()
    context = browser.new_context(viewport={"width": 360, "height": 740})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        open_tab(page, live_server)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 360, f"the page is {overflow}px wide at 360px"
        screenshot_at(page, "email-tab-360px")

        # Keyboard only: from the first group checkbox to the confirm dialog and back.
        page.get_by_label("Myself").focus()
        page.keyboard.press("Space")
        page.keyboard.press("Tab")  # Staff and Administrators
        for _ in range(20):
            if page.evaluate("document.activeElement.id") == "bulk-email-subject":
                break
            page.keyboard.press("Tab")
        page.keyboard.type("Sent with the keyboard")
        page.keyboard.press("Tab")  # into CKEditor (toolbar is reached with Alt+F10)
        page.keyboard.type("Typed without a mouse.")
        for _ in range(20):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "bulk-email-submit":
                break
        page.keyboard.press("Enter")
        expect(page.locator("#bulk-email-confirm")).to_be_visible()
        expect(page.locator("#bulk-email-confirm-text")).to_contain_text("to 1 person (Myself)")
        page.keyboard.press("Escape")
        expect(page.locator("#bulk-email-confirm")).to_be_hidden()
        message = page.evaluate("CKEDITOR.instances['bulk-email-message'].getData()")
        assert "Typed without a mouse." in message
        assert EmailTask.objects.count() == 0
    finally:
        context.close()


def screenshot_at(page, name: str) -> None:
    from tests.e2e.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
