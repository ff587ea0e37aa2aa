"""`make run` as a newcomer uses it: the site comes up on the embedded defaults with a real
worker, the demo logins work, and Ctrl-C stops everything."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browsing import Browser
from tests.processes import ROOT, start, stop, wait_for_text

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get("DATABASE_URL")),
        reason="make run's embedded defaults (SQLite) are exercised in the SQLite pass",
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def running_site(tmp_path):
    port = free_port()
    env = {"PY": sys.executable, "PORT": str(port), "VAR_DIR": str(tmp_path)}
    env.update({"EMAIL_HOST": "", "EMAIL_PORT": str(free_port())})
    env.update({"DATABASE_URL": "", "CELERY_BROKER_URL": ""})
    # Nothing of the test suite's development setup: run.sh must set what it needs itself.
    env.update({"BULK_EMAIL_ENV": "", "DEBUG": "", "SECRET_KEY": ""})
    log = tmp_path / "run.log"
    site = start(["bash", "scripts/run.sh"], env=env, log_path=log)
    try:
        wait_for_text(log, "Quit the server with", timeout=120, process=site)
        wait_for_text(tmp_path / "log" / "worker.log", "ready.", timeout=60, process=site)
        yield site, Browser(f"http://127.0.0.1:{port}"), log
    finally:
        stop(site)


def test_make_run_serves_the_demo_to_its_logins(running_site):
    _site, browser, log = running_site
    output = log.read_text()
    for login in ("instructor / instructor", "staff / staff", "learner / learner"):
        assert login in output
    browser.log_in("instructor", "instructor")
    status, page = browser.get("/courses/course-v1:DemoX+PHY101+2026/instructor/")
    assert status == 200 and "Physique générale — 物理" in page

    admin = Browser(browser.base_url)
    admin.log_in("admin", "admin")
    status, page = admin.get("/admin/bulk_email/bulkemailflag/")
    assert status == 200 and "Bulk email enabled" in page


def test_ctrl_c_stops_the_site_and_the_worker(running_site):
    site, browser, _log = running_site
    assert browser.get("/login/")[0] == 200
    assert stop(site, sig=signal.SIGINT) is not None
    with pytest.raises(OSError):
        browser.get("/login/")
    assert group_ends(site.pid, within=20), "a process of make run outlived Ctrl-C"


def test_a_process_that_dies_is_named_with_its_log(running_site, tmp_path):
    """Not a silent stop: the sink killed under the site, make run says which and where."""
    site, _browser, log = running_site
    os.kill(process_in_group(site.pid, "lms_stub.smtp_sink"), signal.SIGKILL)
    assert site.wait(30) != 0
    said = log.read_text()
    assert "The SMTP sink stopped" in said and str(tmp_path / "log" / "smtp-sink.log") in said
    assert group_ends(site.pid, within=20), "the other processes outlived the sink"


def process_in_group(group: int, command_part: str) -> int:
    """The pid of the group's process whose command line holds ``command_part``."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            in_group = entry.name.isdigit() and os.getpgid(int(entry.name)) == group
            if in_group and command_part in command:
                return int(entry.name)
        except (OSError, ProcessLookupError):
            continue
    raise AssertionError(f"no process of group {group} runs {command_part}")


def group_ends(group: int, *, within: float) -> bool:
    """Whether every process of the group (site, worker, beat, sink) is gone in time."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def busy_port():
    """A port something else listens on, as another `make run` or SMTP server would."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def make_run_output(tmp_path, **ports: str) -> subprocess.CompletedProcess:
    env = {"PY": sys.executable, "VAR_DIR": str(tmp_path), "EMAIL_HOST": "", **ports}
    env.update({"DATABASE_URL": "", "CELERY_BROKER_URL": ""})
    return subprocess.run(
        ["bash", "scripts/run.sh"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


def test_a_busy_smtp_port_stops_make_run_at_once_saying_how_to_pick_another(tmp_path, busy_port):
    run = make_run_output(tmp_path, PORT=str(free_port()), EMAIL_PORT=str(busy_port))
    assert run.returncode != 0
    said = run.stdout + run.stderr
    assert f"port {busy_port}" in said and "EMAIL_PORT=" in said and "make run" in said
    assert not (tmp_path / "db.sqlite3").exists()  # said before migrating anything


def test_a_busy_web_port_stops_make_run_at_once_saying_how_to_pick_another(tmp_path, busy_port):
    run = make_run_output(tmp_path, PORT=str(busy_port), EMAIL_PORT=str(free_port()))
    assert run.returncode != 0
    said = run.stdout + run.stderr
    assert f"port {busy_port}" in said and "PORT=" in said and "make run" in said
    assert not (tmp_path / "db.sqlite3").exists()
