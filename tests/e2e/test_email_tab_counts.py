"""The Email tab's group counts in real Chromium, counted by a real worker (Redis broker and
cache, PostgreSQL): the page shows its groups at once, each with "counting…", and the exact
counts come in when the worker has them; after an opt-out the worker recounts the course in
use by itself, and the next page shows the exact counts at once."""

import time

import pytest
from playwright.sync_api import expect

from bulk_email import api, recipients
from bulk_email.models import Optout
from lms_stub.demo import DEMO_COURSE_ID, seed_demo
from tests.e2e.test_email_tab import demo_instructor_id, open_tab

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.1)


def count_text(page, key: str):
    return page.locator(f".bulk-email-count[data-key='{key}']")


def test_counts_arrive_after_the_page_from_the_worker(live_server, live_pipeline, page, screenshot):
    seed_demo()
    open_tab(page, live_server)  # no worker yet: nothing can count
    expect(count_text(page, "learners")).to_have_text("(counting…)")
    expect(page.get_by_label("All Learners")).to_be_enabled()  # the groups are there at once
    screenshot("email-tab-counting")

    live_pipeline.start_worker()
    expected = recipients.group_counts(course_id=DEMO_COURSE_ID, sender_id=demo_instructor_id())
    for key, number in expected.items():
        people = "person" if number == 1 else "people"
        expect(count_text(page, key)).to_have_text(f"({number:,} {people})", timeout=30_000)
    screenshot("email-tab-counted")

    learner = recipients.recipient_id_pages(
        course_id=DEMO_COURSE_ID, sender_id=None, target_keys=["learners"], page_size=1
    )
    api.opt_out(user_id=next(learner)[0], course_id=DEMO_COURSE_ID, how=Optout.DASHBOARD)
    # The course is in use (its tab asked for counts): the worker recounts it after the
    # change without a page asking, and the next page has the exact counts in its HTML.
    wait_until(lambda: api.audience.is_counted(course_id=DEMO_COURSE_ID), seconds=30)
    assert "data-pending" not in page.request.get(page.url).text(), "counted before the page"
    page.reload()
    page.locator("#cke_bulk-email-message .cke_wysiwyg_frame").wait_for()
    fewer = expected["learners"] - 1
    expect(count_text(page, "learners")).to_have_text(f"({fewer:,} people)")

    page.get_by_label("All Learners").check()
    page.get_by_label("Subject").fill("Counts")
    body = page.frame_locator("#cke_bulk-email-message .cke_wysiwyg_frame").locator("body")
    body.click()
    page.keyboard.type("Hello")
    page.get_by_role("button", name="Send email").click()
    expect(page.locator("#bulk-email-confirm-text")).to_contain_text(f"to {fewer:,} people")
    screenshot("email-tab-counts-confirm")
