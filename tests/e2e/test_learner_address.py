"""A learner whose address bounced, in real Chromium: the dashboard says so, "Send me a test
message" mails a real message to the SMTP sink, and its link, confirmed, clears the block."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from bulk_email.models import Suppression
from lms_stub.demo import seed_demo
from tests.e2e.conftest import log_in
from tests.factories import suppress

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    from django.core.cache import cache

    cache.clear()


def test_the_learner_clears_a_bounce_after_a_test_message(
    live_server, page, screenshot, smtp_settings, smtp_sink
):
    smtp_settings.BULK_EMAIL = {**smtp_settings.BULK_EMAIL, "SITE_URL": live_server.url}
    seed_demo()
    address = get_user_model().objects.get(username="learner").email
    row = suppress(address)
    Suppression.objects.filter(pk=row.pk).update(
        status_code="5.2.2", diagnostic="552 5.2.2 <learner>: mailbox full, try later"
    )
    log_in(page, live_server, "learner", "learner")
    notice = page.locator(".bulk-email-address")
    expect(notice).to_contain_text("Course email is not reaching you")
    expect(notice).to_contain_text("552 5.2.2 <learner>: mailbox full, try later")
    screenshot("learner-address-bounced", full_page=False)
    page.set_viewport_size({"width": 360, "height": 740})  # a narrow phone: nothing overflows
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot("learner-address-bounced-360", full_page=False)
    page.set_viewport_size({"width": 1200, "height": 900})

    notice.get_by_role("button", name="Send me a test message").click()
    expect(page.locator(".messages")).to_contain_text(f"We sent a test message to {address}")
    (message,) = smtp_sink.wait_for(1)
    assert message.rcpt_tos == [address]
    text = message.parsed().get_body(("plain",)).get_content()
    link = re.search(r"http://\S+/email/address/confirm/\S+/", text).group(0)
    assert Suppression.objects.exists()

    page.goto(link)
    expect(page.get_by_role("heading", name="Your address works")).to_be_visible()
    screenshot("learner-address-confirm", full_page=False)
    page.get_by_role("button", name="Send course email to this address again").click()
    expect(page.get_by_role("heading", name="Course email will reach you again")).to_be_visible()
    assert not Suppression.objects.exists()

    page.goto(live_server.url + "/dashboard/")
    expect(page.get_by_role("heading", name="My courses")).to_be_visible()
    expect(page.locator(".bulk-email-address")).to_have_count(0)


def test_a_complaint_is_cleared_by_turning_course_email_back_on(live_server, page):
    seed_demo()
    address = get_user_model().objects.get(username="learner").email
    suppress(address, reason=Suppression.COMPLAINT)
    log_in(page, live_server, "learner", "learner")
    notice = page.locator(".bulk-email-address")
    expect(notice).to_contain_text("reported as spam")
    expect(notice.get_by_role("button")).to_have_count(0)
    page.get_by_role("link", name=re.compile("Email Settings")).first.click()
    checkbox = page.get_by_label("Receive course emails").first
    checkbox.uncheck()
    expect(page.locator(".bulk-email-settings[open] [role=status]")).to_contain_text("Saved")
    checkbox.check()
    expect(page.locator(".bulk-email-settings[open] [role=status]")).to_contain_text(
        "you will receive course email"
    )
    assert not Suppression.objects.exists()
