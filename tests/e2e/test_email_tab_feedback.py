"""What came back, in real Chromium: the sent history shows bounced and complained with their
rates and a warning past a threshold, and keeps updating after the send ended; the delivery
report of a send pages, filters and downloads."""

import csv
import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from bulk_email.models import EmailTask, FeedbackEvent, RecipientOutcome
from lms_stub.demo import DEMO_COURSE_ID, seed_demo
from lms_stub.models import Course
from tests.e2e.conftest import log_in
from tests.factories import finished_task, make_user, record_feedback, record_outcome

pytestmark = pytest.mark.django_db(transaction=True)
TAB = f"/courses/{DEMO_COURSE_ID}/instructor/?tab=email"
SUBJECT = "Semaine 3 : le mouvement circulaire"
HOSTILE_NAME = '<img src=x onerror="document.title=1">Zoë'  # a name is a stranger's text


@pytest.fixture
def fast_history(settings):
    """The tab asks for its tables every second instead of every 30."""
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "HISTORY_REFRESH_SECONDS": 1}


def a_send_that_bounced(*, sent=200, bounced=12, complained=1, failed=2, skipped=3):
    """A send of the demo course that ended, then heard back: 6 % bounced (past 5 %) and
    0.5 % complained (past 0.1 %)."""
    seed_demo()
    instructor = get_user_model().objects.get(username="instructor")
    task = finished_task(
        Course.objects.get(pk=DEMO_COURSE_ID), instructor, sent=sent, subject=SUBJECT
    )
    people = iter(make_user(f"reader{i}", name=f"Lecteur n°{i}") for i in range(10_000))
    for _ in range(failed):
        record_outcome(task, next(people), code=550, detail="550 5.1.1 <x>: Recipient unknown")
    for _ in range(skipped):
        detail = "The address is suppressed (hard bounce)."
        record_outcome(task, next(people), status=RecipientOutcome.SKIPPED, detail=detail)
    EmailTask.objects.filter(pk=task.pk).update(suppressed=4)  # left out at fan-out
    for _ in range(bounced):
        record_feedback(task, next(people))
    for _ in range(complained):
        record_feedback(task, make_user(name=HOSTILE_NAME), kind=FeedbackEvent.COMPLAINT,
                        status_code="", diagnostic=HOSTILE_NAME, source="arf")  # fmt: skip
    return task, people


def open_tab(page, live_server):
    log_in(page, live_server, "instructor", "instructor")
    page.goto(live_server.url + TAB)


def test_history_shows_what_came_back_and_keeps_updating(
    live_server, page, screenshot, fast_history
):
    task, people = a_send_that_bounced()
    open_tab(page, live_server)
    sent = page.locator(f"#bulk-email-sent tbody tr[data-task-id='{task.pk}']")
    expect(sent).to_contain_text("200 sent, 2 failed, 3 skipped, 4 skipped: suppressed")
    expect(sent).to_contain_text("12 bounced (6%), 1 complained (0.5%)")
    warnings = sent.locator(".bulk-email-warning")
    expect(warnings).to_have_count(2)
    expect(warnings.nth(0)).to_contain_text("High bounce rate: 6%, above 5%")
    expect(warnings.nth(1)).to_contain_text("High complaint rate: 0.5%, above 0.1%")
    report = page.locator("#bulk-email-report tbody tr").first
    expect(report).to_contain_text("12")
    expect(report.locator("td").nth(9)).to_have_text("4")  # skipped: suppressed
    expect(report.locator("td").nth(12)).to_have_text("6%")  # Intl.NumberFormat, English
    page.locator("#bulk-email-sent-heading").evaluate("h => h.scrollIntoView()")
    screenshot("email-tab-feedback-history", full_page=False)

    # A bounce arrives after the send ended: the row follows without a reload.
    record_feedback(task, next(people))
    expect(sent).to_contain_text("13 bounced (6.5%)")
    expect(report.locator("td").nth(10)).to_have_text("13")


def test_the_delivery_report_pages_filters_and_downloads(live_server, page, screenshot):
    task, _ = a_send_that_bounced(bounced=140)  # 2 + 3 + 140 + 1 = 146 rows: two pages
    open_tab(page, live_server)
    row = page.locator(f"#bulk-email-sent tbody tr[data-task-id='{task.pk}']")
    row.get_by_role("button", name=f"Delivery report “{SUBJECT}”").click()
    dialog = page.locator("#bulk-email-delivery")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#bulk-email-delivery-title")).to_have_text(
        f"Delivery report: “{SUBJECT}”"
    )
    expect(page.locator("#bulk-email-delivery-counts")).to_have_text(
        "2 failed · 3 skipped · 140 bounced · 1 complained"
    )
    rows = page.locator("#bulk-email-delivery-table tbody tr")
    expect(rows).to_have_count(100)
    expect(rows.first).to_contain_text("Failed")
    expect(rows.first).to_contain_text("550 5.1.1 <x>: Recipient unknown")
    expect(rows.nth(2)).to_contain_text("The address is suppressed (hard bounce).")
    screenshot("email-tab-delivery-report", full_page=False)

    page.get_by_role("button", name="Show more").click()
    expect(rows).to_have_count(146)
    expect(page.get_by_role("button", name="Show more")).to_be_hidden()
    expect(rows.last).to_contain_text("Complained")

    page.get_by_label("Show").select_option("complained")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Marked as spam.")
    expect(rows.first).to_contain_text(HOSTILE_NAME)  # shown as text, never as markup
    expect(dialog.locator("img")).to_have_count(0)
    assert page.title() != "1"
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download as CSV").click()
    table = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_text("utf-8"))))
    assert table[0][:3] == ["kind", "name", "email"]
    assert [line[0] for line in table[1:]] == ["complained"]

    page.get_by_label("Show").select_option("")
    expect(rows).to_have_count(100)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download as CSV").click()
    everything = Path(download_info.value.path()).read_text("utf-8")
    assert len(list(csv.reader(io.StringIO(everything)))) == 1 + 146
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
