"""The Email tab from the keyboard alone, in real Chromium: compose -> preview -> send -> view
with no mouse click. Each step checks where focus is: on a visible ring of at least 3:1, in
CKEditor's text (ringed too) and its toolbar by Alt+F10, back on the button that opened a
dialog once it closes and on Send after sending; and the end of the send is said in the
tab's live region."""

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from bulk_email import api
from bulk_email.models import EmailTask
from lms_stub.demo import DEMO_COURSE_ID, seed_demo
from tests.e2e.test_email_tab import TAB

pytestmark = pytest.mark.django_db(transaction=True)
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "a11y"
MAX_TABS = 60
EDITOR_FRAME = "#cke_bulk-email-message .cke_wysiwyg_frame"

ACTIVE = """() => {
  const e = document.activeElement;
  return {id: e.id, tag: e.tagName, text: (e.innerText || e.value || "").trim(),
          label: e.getAttribute("aria-label") || "", inToolbar: !!e.closest(".cke_top"),
          isEditorFrame: e.matches(".cke_wysiwyg_frame")};
}"""
RING = """(selector) => {
  const e = selector ? document.querySelector(selector) : document.activeElement;
  const s = getComputedStyle(e);
  return {style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor};
}"""


def active(page) -> dict:
    return page.evaluate(ACTIVE)


def tab_to(page, matches, *, key: str = "Tab") -> dict:
    """Press Tab until the focused element ``matches``; fail after MAX_TABS presses."""
    for _ in range(MAX_TABS):
        page.keyboard.press(key)
        focused = active(page)
        if matches(focused):
            return focused
    raise AssertionError(f"{MAX_TABS} presses of {key} never reached it; last: {active(page)}")


def luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = map(channel, rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(color: str, background=(255, 255, 255)) -> float:
    rgb = tuple(int(n) for n in re.findall(r"\d+", color)[:3])
    high, low = sorted([luminance(rgb), luminance(background)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def assert_ring(page, selector: str | None = None) -> None:
    ring = page.evaluate(RING, selector)
    assert ring["style"] != "none" and ring["width"] >= 2, ring
    assert contrast(ring["color"]) >= 3, f"focus ring {ring['color']} is under 3:1 on white"


def sign_in_by_keyboard(page, live_server) -> None:
    page.goto(f"{live_server.url}/login/")
    tab_to(page, lambda f: f["id"] == "id_username")
    page.keyboard.type("instructor")
    page.keyboard.press("Tab")
    page.keyboard.type("instructor")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Sign out").wait_for()


def finish(task: EmailTask, *, state=EmailTask.SUCCESS, error="") -> None:
    """What the worker does to a send, without a worker."""
    now = timezone.now()
    tasks = EmailTask.objects.filter(pk=task.pk)
    tasks.transition(to=EmailTask.PENDING)
    tasks.transition(to=EmailTask.STARTED, started_at=now)
    tasks.transition(to=state, finished_at=now, fan_out_done=True, error=error)


def test_compose_preview_send_and_view_with_the_keyboard_alone(live_server, page):
    seed_demo()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sign_in_by_keyboard(page, live_server)
    page.goto(live_server.url + TAB)
    page.locator(EDITOR_FRAME).wait_for()

    tab_to(page, lambda f: f["id"] == "bulk-email-target-1")  # Myself, the first group
    page.keyboard.press("Space")
    expect(page.get_by_label("Myself")).to_be_checked()
    assert_ring(page)
    tab_to(page, lambda f: f["id"] == "bulk-email-subject")
    page.keyboard.type("Semaine 1 — 键盘")

    # CKEditor: Tab reaches its text, which is ringed; Alt+F10 its toolbar; Escape goes back.
    tab_to(page, lambda f: f["isEditorFrame"])
    page.keyboard.type("Bonjour, typed with the keyboard alone.")
    assert_ring(page, "#cke_bulk-email-message .cke_contents")
    page.screenshot(path=str(ARTIFACTS / "keyboard-editor-focus.png"))
    expect(page.locator("#bulk-email-message-hint")).to_contain_text("Alt+F10")
    page.keyboard.press("Alt+F10")
    assert active(page)["inToolbar"], active(page)
    page.keyboard.press("Escape")
    assert active(page)["isEditorFrame"], active(page)

    # Preview opens on Close; Escape closes it; focus is back on Preview.
    tab_to(page, lambda f: f["id"] == "bulk-email-preview")
    assert_ring(page)
    page.screenshot(path=str(ARTIFACTS / "keyboard-focus-ring.png"))
    page.keyboard.press("Enter")
    viewer = page.locator("#bulk-email-viewer")
    expect(viewer).to_be_visible()
    expect(page.frame_locator("#bulk-email-viewer-frame").locator("body")).to_contain_text(
        "typed with the keyboard alone"
    )
    assert active(page)["id"] == "bulk-email-viewer-close"
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(page.locator("#bulk-email-preview")).to_be_focused()

    # Send: the confirm dialog starts on Cancel; Tab to Send, Enter; focus back on Send email.
    tab_to(page, lambda f: f["id"] == "bulk-email-submit")
    page.keyboard.press("Enter")
    expect(page.locator("#bulk-email-confirm")).to_be_visible()
    assert active(page)["id"] == "bulk-email-confirm-cancel"
    tab_to(page, lambda f: f["id"] == "bulk-email-confirm-ok")
    page.keyboard.press("Enter")
    expect(page.locator("#bulk-email-active .bulk-email-run")).to_have_count(1)
    expect(page.locator("#bulk-email-submit")).to_be_focused()

    # The end of the send is said in the live region, wherever focus is.
    status = page.locator("#bulk-email-status")
    assert status.get_attribute("role") == "status"
    assert status.get_attribute("aria-live") == "polite"
    finish(EmailTask.objects.get())
    expect(status).to_contain_text("“Semaine 1 — 键盘” ended: Success")
    expect(page.locator("#bulk-email-submit")).to_be_focused()

    # View from the history: Enter opens it, Escape closes it, focus is back on that View.
    view = tab_to(page, lambda f: f["label"] == "View “Semaine 1 — 键盘”")
    assert view["text"] == "View"
    page.keyboard.press("Enter")
    expect(viewer).to_be_visible()
    expect(page.frame_locator("#bulk-email-viewer-frame").locator("body")).to_contain_text(
        "typed with the keyboard alone"
    )
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    assert active(page)["label"] == "View “Semaine 1 — 键盘”"


def test_a_failed_send_is_announced_with_its_reason(live_server, page):
    seed_demo()
    sign_in_by_keyboard(page, live_server)
    page.goto(live_server.url + TAB)
    page.locator(EDITOR_FRAME).wait_for()
    access = api.staff_access(
        user=get_user_model().objects.get(username="instructor"), course_id=DEMO_COURSE_ID
    )
    task = api.send_email(access=access, subject="Doomed", html="<p>x</p>", targets=["myself"])
    page.reload()  # the running list adopts it
    expect(page.locator("#bulk-email-active .bulk-email-run")).to_have_count(1)
    finish(task, state=EmailTask.FAILURE, error="The SMTP server refused the login.")
    expect(page.locator("#bulk-email-status")).to_contain_text(
        "“Doomed” ended: Failure — 0 sent, 0 failed, 0 skipped. The SMTP server refused the login."
    )


def wait_until(page, condition, *, seconds: float = 10) -> None:
    for _ in range(int(seconds * 10)):
        if condition():
            return
        page.wait_for_timeout(100)  # lets the page's routes run meanwhile
    raise AssertionError(f"not within {seconds} s")


def test_a_busy_server_does_not_make_the_tab_forget_a_running_send(live_server, page):
    seed_demo()
    sign_in_by_keyboard(page, live_server)
    page.goto(live_server.url + TAB)
    page.locator(EDITOR_FRAME).wait_for()
    access = api.staff_access(
        user=get_user_model().objects.get(username="instructor"), course_id=DEMO_COURSE_ID
    )
    task = api.send_email(access=access, subject="Patient", html="<p>x</p>", targets=["myself"])
    refused = []

    def busy_twice(route):
        if len(refused) < 2:
            refused.append(route.request.url)
            return route.fulfill(status=503, body="busy", content_type="text/plain")
        return route.continue_()

    page.route(re.compile(rf"/tasks/{task.pk}/$"), busy_twice)
    page.reload()
    expect(page.locator("#bulk-email-active .bulk-email-run")).to_have_count(1)
    wait_until(page, lambda: len(refused) == 2)  # two polls answered 503 before the end
    finish(task, state=EmailTask.FAILURE, error="The SMTP server refused the login.")
    expect(page.locator("#bulk-email-status")).to_contain_text("“Patient” ended: Failure")
    assert len(refused) == 2, refused
