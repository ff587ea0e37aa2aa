"""The suppression list in the Django admin, in real Chromium: an operator finds an address,
removes it giving a reason (none given: nothing removed), and the reason is in the log."""

import pytest
from django.contrib.admin.models import LogEntry
from playwright.sync_api import expect

from bulk_email.models import Suppression
from lms_stub.demo import seed_demo
from tests.e2e.conftest import log_in
from tests.factories import suppress

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_removes_an_address_with_a_reason(live_server, page, screenshot):
    seed_demo()
    suppress("kept@example.org", reason=Suppression.COMPLAINT)
    row = suppress("bounced@example.org")
    Suppression.objects.filter(pk=row.pk).update(
        status_code="5.1.1", diagnostic='=HYPERLINK("http://evil.example") <b>550</b>'
    )
    log_in(page, live_server, "admin", "admin")
    page.goto(live_server.url + "/admin/bulk_email/suppression/?q=BOUNCED@example.org")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.locator("#result_list tbody input[type=checkbox]").check()
    page.locator("select[name=action]").select_option("remove_with_reason")
    page.get_by_title("Run the selected action").click()

    expect(page.get_by_role("heading", name="Remove from the suppression list")).to_be_visible()
    expect(page.get_by_text("bounced@example.org — Hard bounce (5.1.1)")).to_be_visible()
    page.get_by_label("Reason").fill("   ")
    page.get_by_label("Reason").evaluate("field => field.removeAttribute('required')")
    page.get_by_role("button", name="Remove").click()
    expect(page.locator(".errornote")).to_contain_text("Say why")
    assert Suppression.objects.filter(pk=row.pk).exists()

    page.get_by_label("Reason").fill("Learner wrote to support: mailbox fixed (ticket 4711)")
    screenshot("admin-suppression-remove", full_page=False)
    page.get_by_role("button", name="Remove").click()
    removed = "Removed 1 address from the suppression list."
    expect(page.locator(".messagelist")).to_contain_text(removed)
    assert list(Suppression.objects.values_list("address", flat=True)) == ["kept@example.org"]
    entry = LogEntry.objects.get()
    assert entry.user.username == "admin"
    assert entry.change_message.endswith("mailbox fixed (ticket 4711)")
