"""A learner turns course email off and on from the dashboard, then unsubscribes and
resubscribes through the link of a message the SMTP sink received, in a real browser."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from bulk_email import pipeline
from bulk_email.models import EmailTask, Optout
from lms_stub.demo import DEMO_COURSE_ID, DEMO_COURSE_NAME, seed_demo
from tests.e2e.conftest import log_in
from tests.factories import make_email

pytestmark = pytest.mark.django_db(transaction=True)


def optout_how() -> str | None:
    """How the demo learner opted out of the demo course, or None when subscribed."""
    row = Optout.objects.filter(user__username="learner", course_id=DEMO_COURSE_ID).first()
    return row.how if row else None


def send_to_learners(sink) -> str:
    """Send the demo course's learners an email through the pipeline, in this process; the
    HTML part of the message the demo learner received."""
    instructor = get_user_model().objects.get(username="instructor")
    email = make_email(
        DEMO_COURSE_ID, sender=instructor, targets=("learners",), subject="Semaine 1"
    )
    task = EmailTask.objects.create(email=email, requester=instructor, state=EmailTask.PENDING)
    for job in pipeline.fan_out(task_id=task.pk):
        pipeline.send_batch(batch_id=job.id)
    address = get_user_model().objects.get(username="learner").email
    message = next(m for m in sink.messages if m.rcpt_tos == [address])
    return message.parsed().get_body(("html",)).get_content()


def link_in(html: str, text: str) -> str:
    return re.search(rf'<a href="([^"]+)"[^>]*>{re.escape(text)}', html).group(1)


def test_dashboard_toggle(live_server, page, screenshot):
    seed_demo()
    log_in(page, live_server, "learner", "learner")
    page.get_by_role("link", name=f"Email Settings for {DEMO_COURSE_NAME}").click()
    dialog = page.get_by_role("dialog", name="Email settings")
    checkbox = dialog.get_by_role("checkbox", name="Receive course emails")
    expect(checkbox).to_be_focused()  # keyboard users start on the choice
    expect(checkbox).to_be_checked()
    expect(dialog.get_by_role("button", name="Save")).to_be_hidden()  # saved at once

    page.keyboard.press("Space")
    expect(dialog.get_by_role("status")).to_contain_text("no longer receive course email")
    assert optout_how() == Optout.DASHBOARD
    screenshot("learner-email-settings-dialog")

    page.keyboard.press("Space")
    expect(dialog.get_by_role("status")).to_contain_text("you will receive course email")
    assert optout_how() is None
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Course email: on")).to_be_visible()


def test_dialog_fits_a_narrow_phone(live_server, page, screenshot):
    seed_demo()
    page.set_viewport_size({"width": 360, "height": 740})
    log_in(page, live_server, "learner", "learner")
    page.get_by_role("link", name=f"Email Settings for {DEMO_COURSE_NAME}").click()
    box = page.get_by_role("dialog", name="Email settings").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    screenshot("learner-email-settings-360", full_page=False)


def test_the_links_of_a_received_message(live_server, page, screenshot, smtp_settings, smtp_sink):
    seed_demo()
    smtp_settings.BULK_EMAIL = {**smtp_settings.BULK_EMAIL, "SITE_URL": live_server.url}
    html = send_to_learners(smtp_sink)

    # The footer's "Email settings" link opens the course's dialog on the dashboard.
    log_in(page, live_server, "learner", "learner")
    page.goto(link_in(html, "Email settings for this course"))
    expect(page.get_by_role("dialog", name="Email settings")).to_be_visible()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Sign out").click()

    # The unsubscribe link works signed out; opening it changes nothing.
    page.goto(link_in(html, f"Unsubscribe from {DEMO_COURSE_NAME} emails"))
    expect(
        page.get_by_role("heading", name=f"Unsubscribe from {DEMO_COURSE_NAME}?")
    ).to_be_visible()
    assert optout_how() is None
    screenshot("learner-unsubscribe-page")

    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert optout_how() == Optout.LINK
    screenshot("learner-unsubscribed")

    page.get_by_role("button", name="Resubscribe").click()
    expect(page.get_by_role("heading", name="You are subscribed again")).to_be_visible()
    assert optout_how() is None


def test_without_javascript_the_dialog_is_a_form(live_server, browser):
    seed_demo()
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    page = context.new_page()
    try:
        log_in(page, live_server, "learner", "learner")
        page.get_by_role("link", name=f"Email Settings for {DEMO_COURSE_NAME}").click()
        dialog = page.get_by_role("dialog", name="Email settings")  # rendered open
        dialog.get_by_role("checkbox", name="Receive course emails").uncheck()
        dialog.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_contain_text("no longer receive course email")
        expect(page.get_by_text("Course email: off")).to_be_visible()
        assert optout_how() == Optout.DASHBOARD
    finally:
        context.close()


def test_staff_following_a_learners_link_read_of_that_account_not_their_own(
    live_server, page, screenshot, smtp_settings, smtp_sink
):
    seed_demo()
    smtp_settings.BULK_EMAIL = {**smtp_settings.BULK_EMAIL, "SITE_URL": live_server.url}
    html = send_to_learners(smtp_sink)
    log_in(page, live_server, "instructor", "instructor")
    page.goto(link_in(html, f"Unsubscribe from {DEMO_COURSE_NAME} emails"))
    expect(page.get_by_role("note")).to_contain_text("not to yours")
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="The account is unsubscribed")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("on your dashboard")
    assert optout_how() == Optout.LINK  # the learner's, whoever pressed the button
    screenshot("unsubscribe-signed-in-as-someone-else")
