"""The README's "Try it" steps, as a newcomer takes them, against `make run` itself (its
script, on the embedded defaults: SQLite, the filesystem broker, a real worker, the local
SMTP sink): sign in as the instructor, send to All Learners, open the Mailbox, read the
message, follow its unsubscribe link, unsubscribe."""

import os
import sys

import pytest
from playwright.sync_api import expect

from tests.integration.test_make_run import free_port
from tests.processes import start, stop, wait_for_text

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="make run's embedded defaults (SQLite) are exercised in the SQLite pass",
)


@pytest.fixture
def make_run(tmp_path):
    port = free_port()
    env = {"PY": sys.executable, "PORT": str(port), "VAR_DIR": str(tmp_path)}
    env.update({"DATABASE_URL": "", "CELERY_BROKER_URL": "", "EMAIL_HOST": ""})
    env.update({"EMAIL_PORT": str(free_port()), "DEBUG": "true"})
    log = tmp_path / "run.log"
    site = start(["bash", "scripts/run.sh"], env=env, log_path=log)
    try:
        wait_for_text(log, "Quit the server with", timeout=120, process=site)
        wait_for_text(tmp_path / "log" / "worker.log", "ready.", timeout=60, process=site)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(site)


def test_the_readme_steps_from_sign_in_to_unsubscribe(make_run, page, screenshot):
    site = make_run
    page.goto(site + "/login/")
    page.get_by_label("Username").fill("instructor")
    page.get_by_label("Password").fill("instructor")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Instructor dashboard").click()
    page.get_by_role("link", name="Email", exact=True).click()
    page.locator("#cke_bulk-email-message .cke_wysiwyg_frame").wait_for()

    page.get_by_label("Subject").fill("Bienvenue — semaine 1")
    editor = page.frame_locator("#cke_bulk-email-message .cke_wysiwyg_frame").locator("body")
    editor.click()
    page.keyboard.type("Bonjour %%USER_FULLNAME%%, the course starts on Monday.")
    page.get_by_label("All Learners").check()
    page.get_by_role("button", name="Send email").click()
    page.locator("#bulk-email-confirm-ok").click()
    run = page.locator(".bulk-email-run").first
    expect(run.locator(".bulk-email-state")).to_have_text("Success", timeout=90_000)

    page.get_by_role("link", name="Mailbox", exact=True).click()
    page.get_by_role("link", name="Bienvenue — semaine 1").first.click()
    expect(page.locator(".mail-text")).to_contain_text("Bonjour")
    screenshot("mailbox-message")
    link = page.locator(".mail-links a[href*='/email/unsubscribe/']").first
    link.focus()  # keyboard, as the README's path must work without a mouse too
    page.keyboard.press("Enter")
    page.wait_for_url("**/email/unsubscribe/**")
    expect(page.get_by_role("button", name="Unsubscribe")).to_be_visible()
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("button", name="Resubscribe")).to_be_visible()
    screenshot("unsubscribed-from-the-mailbox")
