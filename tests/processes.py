"""Real processes for integration tests: celery workers and the site, started and stopped
the way an operator would, with their output in a log file to read on failure."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def development_env() -> dict:
    """The site as development (the site refuses to start without a real key otherwise),
    signing with this process's key, so that a worker's links verify in the test."""
    from django.conf import settings

    return {
        "DJANGO_SETTINGS_MODULE": "lms_stub.settings",
        "BULK_EMAIL_ENV": "development",
        "SECRET_KEY": settings.SECRET_KEY,
    }


def start(command: list[str], *, env: dict, log_path: Path) -> subprocess.Popen:
    """``env`` over the development environment over this process's."""
    log = open(log_path, "ab")  # noqa: SIM115 (closed with the process by stop())
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **development_env(), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so stop() reaches its children
    )


def start_worker(
    *,
    env: dict,
    log_path: Path,
    name: str,
    concurrency: int = 1,
    queues: str = "default,large",
    beat_schedule: Path | None = None,
) -> subprocess.Popen:
    """``celery worker`` as an operator starts it; with ``beat_schedule``, it also runs the
    periodic dispatcher (``-B``), keeping beat's state in that file."""
    command = [sys.executable, "-m", "celery", "-A", "lms_stub", "worker", "--loglevel", "INFO"]
    command += ["--concurrency", str(concurrency), "-Q", queues, "-n", f"{name}@%h"]
    if beat_schedule is not None:
        command += ["-B", "-s", str(beat_schedule)]
    return start(command, env=env, log_path=log_path)


def wait_for_text(log_path: Path, text: str, *, timeout: float, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.exists() and text in log_path.read_text(errors="replace"):
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.2)
    output = log_path.read_text(errors="replace") if log_path.exists() else "(no log)"
    raise AssertionError(
        f"{text!r} did not appear in {log_path} within {timeout}s:\n{output[-4000:]}"
    )


def stop(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    """Signal the whole process group and wait; kill it if it does not stop in time."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
    return process.returncode
