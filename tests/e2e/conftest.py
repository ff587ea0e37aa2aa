"""Browser tests: Debian's Chromium driven by Playwright for Python (no browser download),
against pytest-django's live server. Screenshots go to tests/artifacts/screenshots/."""

import os
import shutil
import time
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the live server and the test's
# own ORM calls are ordinary synchronous Django, which is safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        message = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI requires it.", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {message}; browser tests did not run.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    # The tab polls progress and history: leave it, and let a request the live server is
    # still finishing end, before the test's database is flushed (a flush while a request
    # holds SQLite's in-memory database fails, and leaves rows for the next test).
    page.goto("about:blank")
    page.wait_for_timeout(500)
    context.close()


@pytest.fixture
def screenshot(page):
    """screenshot("email-tab-compose") saves the page as tests/artifacts/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str, *, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


INK_SCRIPT = """async (url) => {
  const image = new Image();
  image.src = url;
  await image.decode();
  const canvas = new OffscreenCanvas(image.width, image.height);
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height).data;
  let dark = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i] + pixels[i + 1] + pixels[i + 2] < 300) dark++;
  }
  return dark;
}"""


def ink(browser, png: bytes) -> int:
    """How many dark pixels a screenshot has: what a person sees, where the DOM can say a
    frame has its text while the screen shows an empty page. Counted by Chromium itself, in a
    blank page of its own (no image library in the suite)."""
    import base64

    page = browser.new_page()
    try:
        return page.evaluate(INK_SCRIPT, "data:image/png;base64," + base64.b64encode(png).decode())
    finally:
        page.close()


@pytest.fixture(autouse=True)
def counts_without_a_worker(request, monkeypatch):
    """Tests that start no worker (no ``live_pipeline``) have the Email tab's counting tasks
    run in the site's own process when asked for, as celery's eager mode does; with a
    worker, it counts them (test_email_tab_counts.py watches them arrive)."""
    if "live_pipeline" in request.fixturenames:
        return
    from bulk_email import tasks

    for task in (tasks.count_audience, tasks.break_down_group, tasks.recount_audience):
        monkeypatch.setattr(task, "apply_async", lambda args, task=task, **options: task(*args))


# On SQLite the test database is in memory with a shared cache: there a table that another
# thread is using is "locked" at once, with no busy timeout to wait on (a file database in WAL
# mode, what `make run` uses, waits). The test's own writes, made while the live server
# answers the tab's polls, and the server's reads, then fail at random; they are retried here
# for up to LOCKED_RETRY_SECONDS instead, as the file database would wait.
LOCKED_RETRY_SECONDS = 10.0


def retry_when_locked(execute, sql, params, many, context):
    from django.db import OperationalError

    deadline = time.monotonic() + LOCKED_RETRY_SECONDS
    while True:
        try:
            return execute(sql, params, many, context)
        except OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(autouse=True)
def sqlite_waits_for_a_locked_table():
    from django.db import connection

    if connection.vendor != "sqlite":
        yield
        return
    with connection.execute_wrapper(retry_when_locked):
        yield
