"""The development Mailbox as a person sees it: one row per message, no stray notices, pages."""

import pytest
from playwright.sync_api import expect

from tests.lms_stub.test_mailbox import deliver_many

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def maildir(tmp_path, settings):
    settings.MAILBOX_DIR = tmp_path
    settings.MAILBOX_ENABLED = True
    settings.MAILBOX_PAGE_SIZE = 2
    return tmp_path


def test_the_mailbox_lists_a_page_of_messages_and_no_python_objects(
    live_server, page, screenshot, maildir
):
    deliver_many(maildir, ["Semaine 1 — 物理", "Semaine 2", "Semaine 3"])
    page.goto(f"{live_server.url}/mailbox/")
    expect(page.locator("main")).to_contain_text("3 messages in all")
    assert "Summary(" not in page.locator("body").inner_text()
    expect(page.locator("ul.messages")).to_have_count(0)
    expect(page.locator("tbody tr")).to_have_count(2)
    screenshot("mailbox-page-1")
    page.get_by_role("link", name="Older", exact=False).click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_role("link", name="Semaine 1 — 物理")).to_be_visible()
    screenshot("mailbox-page-2")
