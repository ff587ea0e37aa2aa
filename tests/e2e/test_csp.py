"""The Content-Security-Policy in real Chromium: every page of the site carries it; the
dashboards load, CKEditor composes (visual and Source), previews and sends, and the viewer
shows messages, without one violation; remote images in Preview and View load only after
"Show images" (a real HTTP server counts the requests: 0 before the click, 1 after)."""

import datetime
import http.server
import re
import threading
import time
from base64 import b64decode

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from bulk_email import api
from bulk_email.models import EmailTask
from bulk_email.tokens import make_token
from lms_stub.demo import DEMO_COURSE_ID, seed_demo
from tests.e2e.conftest import log_in
from tests.e2e.test_email_tab import TAB, open_tab, type_in_editor, use_source_mode
from tests.e2e.test_email_tab_feedback import a_send_that_bounced
from tests.lms_stub.test_mailbox import deliver_many

pytestmark = pytest.mark.django_db(transaction=True)

# Every violation, in the page and in its frames, is reported on the console by Chromium
# ("Refused to ... because it violates the following Content Security Policy directive").
# The event listener also catches the ones a page reports without a console line.
LISTEN = """document.addEventListener("securitypolicyviolation", (event) => {
  (window.__cspViolations = window.__cspViolations || []).push(
    event.violatedDirective + " " + event.blockedURI);
});"""


@pytest.fixture
def violations(page):
    found = []

    def on_console(message):
        if "Content Security Policy" in message.text or "under this page's CSP" in message.text:
            found.append(message.text)

    page.on("console", on_console)
    page.add_init_script(LISTEN)

    def check() -> list[str]:
        page.wait_for_timeout(300)  # reports are queued: let the last ones arrive
        reported = page.evaluate("window.__cspViolations || []")
        return found + reported

    return check


def visit(page, url: str, *, status: int = 200) -> str:
    """Open ``url``; its CSP header, after checking it forbids inline script."""
    response = page.goto(url)
    assert response.status == status, f"{url} answered {response.status}"
    policy = response.headers.get("content-security-policy", "")
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives.get("script-src") == "'self'", f"{url}: {policy!r}"
    assert directives.get("object-src") == "'none'" and "frame-ancestors" in directives
    page.wait_for_load_state("networkidle")
    return policy


def schedule(subject: str, html: str) -> EmailTask:
    instructor = get_user_model().objects.get(username="instructor")
    access = api.staff_access(user=instructor, course_id=DEMO_COURSE_ID)
    send_at = timezone.now() + datetime.timedelta(days=1)
    return api.send_email(
        access=access, subject=subject, html=html, targets=["myself"], send_at=send_at
    )


def test_every_page_carries_the_policy_and_none_violates_it(
    live_server, page, violations, settings, tmp_path
):
    seed_demo()
    settings.MAILBOX_DIR, settings.MAILBOX_ENABLED = tmp_path, True
    deliver_many(tmp_path, ["A message in the Mailbox"])
    sent = a_send_that_bounced(sent=20, bounced=1, complained=0, failed=1, skipped=1)[0]
    base = live_server.url
    learner = get_user_model().objects.get(username="learner")
    token = make_token(learner.pk, DEMO_COURSE_ID)
    visit(page, base + "/login/")
    visit(page, base + reverse("bulk_email:unsubscribe", args=[token]))
    visit(page, base + reverse("bulk_email:address_confirm", args=["not-a-token"]), status=400)
    log_in(page, live_server, "learner", "learner")
    visit(page, base + "/dashboard/")
    visit(page, base + reverse("bulk_email:email_settings", args=[DEMO_COURSE_ID]))
    log_in(page, live_server, "instructor", "instructor")
    course = f"{base}/courses/{DEMO_COURSE_ID}/instructor/"
    for tab in ("course_info", "membership", "email"):
        visit(page, f"{course}?tab={tab}")
    page.locator("#cke_bulk-email-message .cke_wysiwyg_frame").wait_for()
    row = page.locator(f"#bulk-email-sent tbody tr[data-task-id='{sent.pk}']")
    row.get_by_role("button", name=re.compile("^Delivery report")).click()
    expect(page.locator("#bulk-email-delivery-table tbody tr")).to_have_count(3)
    log_in(page, live_server, "admin", "admin")
    admin_pages = ["", "bulk_email/emailtask/", "bulk_email/sendauditentry/"]
    admin_pages += ["bulk_email/courseemail/add/", "bulk_email/bulkemailflag/"]
    for admin_page in admin_pages:
        visit(page, f"{base}/admin/{admin_page}")
    visit(page, base + "/mailbox/")
    page.get_by_role("link", name="A message in the Mailbox").click()
    page.wait_for_load_state("networkidle")
    assert violations() == []


def test_ckeditor_composes_previews_and_sends_under_the_policy(
    live_server, page, violations, screenshot
):
    seed_demo()
    task = schedule("Already scheduled", "<p>Stored <strong>message</strong></p>")
    open_tab(page, live_server)
    page.get_by_label("Myself").check()
    page.get_by_label("Subject").fill("Under a strict policy")
    type_in_editor(page, "A heading")
    # The Format drop-down: a panel in a frame CKEditor writes, wired by its handlers.
    page.locator("#cke_bulk-email-message .cke_combo__format .cke_combo_button").click()
    page.frame_locator("iframe.cke_panel_frame").get_by_text("Heading 2").click()
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.keyboard.type("Typed in CKEditor.")
    page.locator("#cke_bulk-email-message .cke_button__bold").click()
    page.keyboard.type(" Bold too.")
    # The Link and Image dialogs: CKEditor's own forms, wired by handlers too.
    page.keyboard.type(" Read the ")
    page.locator("#cke_bulk-email-message .cke_button__link").click()
    link = page.get_by_role("dialog", name="Link")
    link.get_by_label("Display Text").fill("syllabus")
    link.get_by_label("URL").fill("example.com/syllabus")
    link.get_by_role("button", name="OK").click()
    page.locator("#cke_bulk-email-message .cke_button__image").click()
    image = page.get_by_role("dialog", name="Image Properties")
    image.get_by_label("URL*").fill(live_server.url + "/static/lms_stub/favicon.svg")
    image.get_by_label("Alternative Text").fill("the course logo")
    image.get_by_role("button", name="OK").click()
    use_source_mode(page, "<p><em>From the Source mode.</em></p>")
    page.get_by_role("button", name="Preview").click()
    frame = page.frame_locator("#bulk-email-viewer-frame")
    expect(frame.locator("body")).to_contain_text("From the Source mode.")
    expect(page.locator("#bulk-email-viewer-images")).to_be_hidden()  # no image: no button
    screenshot("email-tab-preview-under-csp", full_page=False)
    page.get_by_role("button", name="Close").click()
    page.get_by_role("button", name="Send email").click()
    page.locator("#bulk-email-confirm-ok").click()
    expect(page.get_by_role("status")).to_contain_text("was queued for sending")
    sent = EmailTask.objects.exclude(pk=task.pk).get()
    assert "Typed in CKEditor." in sent.email.html_message
    assert "<strong>" in sent.email.html_message and "Source mode" in sent.email.html_message
    assert "<h2>A heading</h2>" in sent.email.html_message
    assert 'href="http://example.com/syllabus"' in sent.email.html_message
    assert 'alt="the course logo"' in sent.email.html_message
    row = page.locator("#bulk-email-scheduled tbody tr", has_text="Already scheduled")
    row.get_by_role("button", name="View “Already scheduled”").click()
    expect(frame.locator("strong", has_text="message")).to_be_visible()
    page.get_by_role("button", name="Close").click()
    assert violations() == []


# --- Remote images wait for "Show images" ----------------------------------------------------

PIXEL = b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class PixelServer:
    """A real HTTP server on 127.0.0.1 answering a 1x1 PNG that no cache may keep, counting
    the requests for it: what a sender's tracking pixel would see."""

    def __init__(self):
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(PIXEL)))
                self.end_headers()
                self.wfile.write(PIXEL)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/pixel.png"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while self.requests < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.requests

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pixel_server():
    server = PixelServer()
    yield server
    server.close()


def test_view_loads_remote_images_only_after_show_images(
    live_server, page, pixel_server, screenshot
):
    seed_demo()
    schedule(
        "With a pixel", f'<p>Look at this</p><p><img src="{pixel_server.url}" alt="a pixel"></p>'
    )
    open_tab(page, live_server)
    row = page.locator("#bulk-email-scheduled tbody tr", has_text="With a pixel")
    row.get_by_role("button", name="View “With a pixel”").click()
    frame = page.frame_locator("#bulk-email-viewer-frame")
    expect(frame.locator("body")).to_contain_text("Look at this")
    page.wait_for_timeout(1000)
    assert pixel_server.requests == 0
    show = page.get_by_role("button", name="Show images")
    expect(show).to_be_visible()
    screenshot("email-tab-view-images-held", full_page=False)
    show.click()
    assert pixel_server.wait_for(1) == 1
    expect(frame.locator("body")).to_contain_text("Look at this")
    expect(show).to_be_hidden()
    page.wait_for_timeout(500)
    assert pixel_server.requests == 1
    page.get_by_role("button", name="Close").click()
    row.get_by_role("button", name="View “With a pixel”").click()  # held back again
    expect(frame.locator("body")).to_contain_text("Look at this")
    page.wait_for_timeout(1000)
    assert pixel_server.requests == 1


def test_preview_loads_remote_images_only_after_show_images(live_server, page, pixel_server):
    seed_demo()
    open_tab(page, live_server)
    page.get_by_label("Subject").fill("Preview with a pixel")
    type_in_editor(page, "Composed here.")
    use_source_mode(page, f'<p><img src="{pixel_server.url}" alt="a pixel"></p>')
    page.wait_for_timeout(1000)
    composing = pixel_server.requests  # the editor shows the author's own image
    page.get_by_role("button", name="Preview").click()
    expect(page.frame_locator("#bulk-email-viewer-frame").locator("body")).to_contain_text(
        "Composed here."
    )
    page.wait_for_timeout(1000)
    assert pixel_server.requests == composing
    page.get_by_role("button", name="Show images").click()
    assert pixel_server.wait_for(composing + 1) == composing + 1


def test_the_viewer_frame_inherits_the_pages_policy(live_server, page, pixel_server, monkeypatch):
    """A srcdoc frame has no policy of its own but the one it inherits: with the dashboard's
    remote-image widening taken away, even "Show images" loads nothing."""
    from lms_stub import views

    monkeypatch.setitem(views.INSTRUCTOR_DASHBOARD_CSP, "img-src", [])
    seed_demo()
    schedule("Inherited", f'<p>Look</p><p><img src="{pixel_server.url}" alt="a pixel"></p>')
    open_tab(page, live_server)
    row = page.locator("#bulk-email-scheduled tbody tr", has_text="Inherited")
    row.get_by_role("button", name="View “Inherited”").click()
    page.get_by_role("button", name="Show images").click()
    expect(page.frame_locator("#bulk-email-viewer-frame").locator("body")).to_contain_text("Look")
    page.wait_for_timeout(1500)
    assert pixel_server.requests == 0


def test_the_instructor_dashboard_is_the_only_page_with_inline_styles(live_server, page):
    """CKEditor's one widening, and only where CKEditor is."""
    seed_demo()
    log_in(page, live_server, "instructor", "instructor")
    dashboard = visit(page, live_server.url + TAB)
    learner = visit(page, live_server.url + "/dashboard/")
    assert "style-src 'self' 'unsafe-inline'" in dashboard
    assert "'unsafe-inline'" not in learner
