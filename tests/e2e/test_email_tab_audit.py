"""The audit trail as staff see it, in real Chromium: a colleague edits the instructor's
scheduled email in the Edit form, then deletes it; the tables name who did each."""

import re

import pytest
from playwright.sync_api import expect

from bulk_email.models import SendAuditEntry
from lms_stub.demo import seed_demo
from tests.e2e.test_csp import schedule
from tests.e2e.test_email_tab import open_tab

pytestmark = pytest.mark.django_db(transaction=True)
AUTHOR, COLLEAGUE = "Prof. Hélène Durand", "Søren Ødegaard"


def test_a_colleagues_edit_and_delete_are_shown_with_their_name(live_server, page, screenshot):
    seed_demo()
    task = schedule("Quiz on Friday", "<p>Bring a pen.</p>")
    open_tab(page, live_server, username="staff")
    row = page.locator("#bulk-email-scheduled tbody tr", has_text="Quiz on Friday")
    row.get_by_role("button", name=re.compile("^Edit")).click()
    expect(page.get_by_label("Subject")).to_have_value("Quiz on Friday")  # the form is loaded
    page.get_by_label("Subject").fill("Quiz moved to Monday")
    page.get_by_role("button", name="Save changes").click()
    row = page.locator("#bulk-email-scheduled tbody tr", has_text="Quiz moved to Monday")
    expect(row).to_contain_text(f"{AUTHOR} (edited by {COLLEAGUE})")
    edit = task.audit_entries.get(action=SendAuditEntry.EDITED)
    # Only what was changed: the time and the message left as shown are saved as stored.
    assert edit.changes == {"subject": ["Quiz on Friday", "Quiz moved to Monday"]}

    row.get_by_role("button", name=re.compile("^View")).click()
    trail = page.locator("#bulk-email-viewer-trail li")
    expect(trail).to_have_count(2)
    expect(trail.first).to_contain_text(f"Scheduled by {AUTHOR}")
    expect(trail.last).to_contain_text(f"Edited by {COLLEAGUE}")
    expect(trail.last).to_contain_text("(changed: subject)")
    screenshot("email-tab-view-trail", full_page=False)
    page.get_by_role("button", name="Close").click()

    row.get_by_role("button", name=re.compile("^Delete")).click()
    page.locator("#bulk-email-confirm-ok").click()
    expect(page.locator("#bulk-email-scheduled tbody tr")).to_have_count(0)
    report = page.locator("#bulk-email-report tbody tr").first
    expect(report).to_contain_text(f"Edited by {COLLEAGUE}")
    expect(report).to_contain_text(f"Revoked by {COLLEAGUE}")
    assert task.audit_entries.get(action=SendAuditEntry.REVOKED).actor.username == "staff"
    page.locator("#bulk-email-report-heading").evaluate("h => h.scrollIntoView()")
    screenshot("email-tab-report-audit", full_page=False)
