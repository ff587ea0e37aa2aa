"""axe-core (through axe-playwright-python, which bundles axe.min.js) on every page state a
person meets: the Email tab (each panel, its dialogs open), Course Info, Membership, the
learner dashboard and its Email Settings dialog, both unsubscribe pages, the Mailbox and one
of its messages, the login and "not found" pages, the admin's changelist, and the email's
own HTML part opened as a page (axe cannot see into the sandboxed frames that show it elsewhere).

The rule: no serious or critical violation anywhere (WCAG 2.1 A and AA, and axe's best
practices). The table of every violation per page is printed (``pytest -s``) and written to
var/a11y/violations.txt; each state's screenshot goes to var/a11y/."""

import datetime
import smtplib
from collections.abc import Callable
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from bulk_email import api, recipients
from bulk_email.models import CourseEmail
from bulk_email.rendering import get_prepared_message, render_message
from bulk_email.tokens import make_token
from lms_stub.demo import DEMO_COURSE_ID, DEMO_COURSE_NAME, seed_demo
from lms_stub.smtp_sink import SMTPSink
from tests.e2e.conftest import log_in
from tests.e2e.test_email_tab import TAB, type_in_editor

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "a11y"
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}
BLOCKING = ("critical", "serious")
IMPACTS = ("critical", "serious", "moderate", "minor")


class Audit:
    """Runs axe on each page state, keeps its violations and a screenshot of it."""

    def __init__(self, page):
        self.page, self.axe, self.results = page, Axe(), {}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def check(self, name: str) -> None:
        # "load", not "networkidle": the Email tab polls a running send every second.
        self.page.wait_for_load_state("load")
        response = self.axe.run(self.page, options=AXE_OPTIONS).response
        self.results[name] = response["violations"]
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def table(self) -> str:
        lines = [f"{'page state':<34} critical serious moderate minor  rules"]
        for name, violations in self.results.items():
            counts = [sum(v["impact"] == impact for v in violations) for impact in IMPACTS]
            rules = ", ".join(f"{v['id']} ({v['impact']}, {len(v['nodes'])})" for v in violations)
            lines.append(f"{name:<34} {counts[0]:>8} {counts[1]:>7} {counts[2]:>8} {counts[3]:>5}"
                         f"  {rules or '-'}")  # fmt: skip
        return "\n".join(lines)

    def blocking(self) -> dict[str, list[str]]:
        found = {}
        for name, violations in self.results.items():
            bad = [describe(v) for v in violations if v["impact"] in BLOCKING]
            if bad:
                found[name] = bad
        return found


def describe(violation: dict) -> str:
    targets = [node["target"] for node in violation["nodes"][:3]]
    return f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}"


@pytest.fixture
def audit(page):
    audit = Audit(page)
    yield audit
    report = audit.table()
    (ARTIFACTS / "violations.txt").write_text(report + "\n", encoding="utf-8")
    print("\n" + report)


def instructor():
    return get_user_model().objects.get(username="instructor")


def learner():
    return get_user_model().objects.get(username="learner")


def scheduled_email(subject: str) -> None:
    access = api.staff_access(user=instructor(), course_id=DEMO_COURSE_ID)
    api.send_email(
        access=access, subject=subject, html="<p>Week 2 starts on Monday.</p>",
        targets=["myself"], send_at=timezone.now() + datetime.timedelta(days=1),
    )  # fmt: skip


def rendered_email_html(subject: str) -> tuple[str, bytes]:
    """The HTML part (and the whole message) the learner would receive for a saved email."""
    email = CourseEmail.objects.create(
        course_id=DEMO_COURSE_ID,
        sender=instructor(),
        subject=subject,
        html_message="<h1>Semaine 1</h1><p>Bonjour %%USER_FULLNAME%%, the course starts today."
        ' <a href="https://example.org/syllabus">Read the syllabus</a>.</p>',
    )
    message = render_message(get_prepared_message(email), recipients.person(user_id=learner().pk))
    return message.html, message.as_bytes()


def walk(page, *steps: Callable[[], None]) -> None:
    for step in steps:
        step()


# --- The instructor's pages ----------------------------------------------------------------------


def test_the_email_tab_in_each_state_has_no_serious_violation(live_server, page, audit):
    seed_demo()
    scheduled_email("Week 2 notice")
    log_in(page, live_server, "instructor", "instructor")
    page.goto(f"{live_server.url}/courses/{DEMO_COURSE_ID}/instructor/?tab=course_info")
    page.get_by_role("link", name="How many receive the Email tab's All Learners").click()
    expect(page.locator("#course-info-all-learners")).to_contain_text("will receive it")
    audit.check("course-info")
    page.goto(f"{live_server.url}/courses/{DEMO_COURSE_ID}/instructor/?tab=membership")
    audit.check("membership")

    page.goto(live_server.url + TAB)
    page.locator("#cke_bulk-email-message .cke_wysiwyg_frame").wait_for()
    expect(page.locator("#bulk-email-scheduled tbody tr")).to_have_count(1)
    for details in page.locator("details.bulk-email-why").all():
        details.locator("summary").click()
        expect(details.locator("p")).to_contain_text("will receive it")
    learners = page.locator('details.bulk-email-why[data-key="learners"] p')
    expect(learners).to_have_text(
        "42 will receive it: 2 left out — 2 have not logged in for 18 months."
    )
    page.locator("#bulk-email-targets").screenshot(path=str(ARTIFACTS / "email-tab-why.png"))
    audit.check("email-tab-compose")

    page.get_by_role("button", name="Send email").click()
    expect(page.locator("#bulk-email-error-subject")).to_be_visible()
    audit.check("email-tab-errors")

    page.get_by_label("Myself").check()
    page.get_by_label("Subject").fill("Bienvenue — 欢迎")
    type_in_editor(page, "Bonjour, the course starts today.")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#bulk-email-viewer")).to_be_visible()
    audit.check("email-tab-preview-dialog")
    page.keyboard.press("Escape")

    page.locator("#bulk-email-scheduled tbody tr").get_by_role("button", name="View").click()
    expect(page.locator("#bulk-email-viewer")).to_be_visible()
    audit.check("email-tab-view-dialog")
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Send email").click()
    expect(page.locator("#bulk-email-confirm")).to_be_visible()
    audit.check("email-tab-confirm-dialog")
    page.locator("#bulk-email-confirm-ok").click()
    expect(page.locator("#bulk-email-active .bulk-email-run")).to_have_count(1)
    audit.check("email-tab-after-send")

    assert not audit.blocking(), audit.blocking()


def test_the_history_with_feedback_and_the_delivery_report_have_no_serious_violation(
    live_server, page, audit
):
    from tests.e2e.test_email_tab_feedback import SUBJECT, a_send_that_bounced

    task, _ = a_send_that_bounced()
    log_in(page, live_server, "instructor", "instructor")
    page.goto(live_server.url + TAB)
    row = page.locator(f"#bulk-email-sent tbody tr[data-task-id='{task.pk}']")
    expect(row.locator(".bulk-email-warning")).to_have_count(2)
    audit.check("email-tab-history-feedback")
    row.get_by_role("button", name=f"Delivery report “{SUBJECT}”").click()
    expect(page.locator("#bulk-email-delivery-table tbody tr").first).to_be_visible()
    audit.check("email-tab-delivery-report")
    page.keyboard.press("Escape")
    expect(page.locator("#bulk-email-delivery")).to_be_hidden()
    # Focus is back on the button that opened it.
    expect(row.get_by_role("button", name=f"Delivery report “{SUBJECT}”")).to_be_focused()
    assert not audit.blocking(), audit.blocking()


def test_the_admin_changelist_has_no_serious_violation_of_ours(live_server, page, audit):
    seed_demo()
    scheduled_email("Week 2 notice")
    log_in(page, live_server, "admin", "admin")
    page.goto(f"{live_server.url}/admin/bulk_email/courseemail/")
    expect(page.locator("#result_list")).to_be_visible()
    audit.check("admin-changelist")
    assert not audit.blocking(), audit.blocking()


# --- The learner's pages ----------------------------------------------------------------------


def test_the_learner_pages_have_no_serious_violation(live_server, page, audit):
    seed_demo()
    page.goto(f"{live_server.url}/login/")
    audit.check("login")
    page.goto(f"{live_server.url}/no/such/page/")
    audit.check("not-found")
    log_in(page, live_server, "learner", "learner")
    audit.check("learner-dashboard")
    page.get_by_role("link", name=f"Email Settings for {DEMO_COURSE_NAME}").click()
    expect(page.get_by_role("dialog", name="Email settings")).to_be_visible()
    audit.check("learner-email-settings-dialog")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Sign out").click()

    token = make_token(learner().pk, DEMO_COURSE_ID)
    page.goto(live_server.url + reverse("bulk_email:unsubscribe", args=[token]))
    audit.check("unsubscribe-confirm")
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    audit.check("unsubscribe-done")
    assert not audit.blocking(), audit.blocking()


def test_the_email_itself_and_the_mailbox_have_no_serious_violation(
    live_server, page, audit, tmp_path, settings
):
    seed_demo()
    settings.MAILBOX_DIR, settings.MAILBOX_ENABLED = tmp_path, True
    html, raw = rendered_email_html("Bienvenue, %%USER_FULLNAME%% — semaine 1")
    page.set_content(html)
    expect(page).to_have_title("Bienvenue, Zoë Learner-学生 — semaine 1")
    audit.check("email-html-part")

    with SMTPSink(maildir=tmp_path) as sink, smtplib.SMTP("127.0.0.1", sink.port) as client:
        client.sendmail("no-reply@lms.example.com", ["learner@example.com"], raw)
    page.goto(f"{live_server.url}/mailbox/")
    expect(page.locator("tbody tr")).to_have_count(1)
    audit.check("mailbox-list")
    page.locator("tbody tr a").first.click()
    expect(page.locator("iframe")).to_have_count(1)
    audit.check("mailbox-message")
    assert not audit.blocking(), audit.blocking()
