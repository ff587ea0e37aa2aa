"""The benchmark's small version, so that `make bench` cannot rot unnoticed."""

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the benchmark measures PostgreSQL + Redis: it runs in the PostgreSQL pass",
    ),
]


def test_the_benchmark_runs_end_to_end(redis_url):
    url = os.environ["DATABASE_URL"] + "_bench_smoke"  # beside the run's own database
    command = [sys.executable, "bench/bench_pipeline.py", "--smoke", "--database-url", url,
               "--redis-url", redis_url]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| **bulk_email** (send_email → Success) |" in done.stdout
    assert "Ratios: project/ceiling" in done.stdout
    assert "project/smtp-source" in done.stdout
    assert "DKIM signed/unsigned" in done.stdout
    assert "SQL statements per batch task" in done.stdout
    assert "Seeding (seed_course" in done.stdout
    assert "CPU per recipient in one process" in done.stdout
    assert "| at once after an opt-out or opt-in (4 runs) |" in done.stdout
    assert "| POST count/ (every group) |" in done.stdout


def test_the_feedback_benchmark_runs():
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/bulk_email_bench_feedback_smoke"
    command = [sys.executable, "bench/bench_feedback.py", "--messages", "200",
               "--database-url", url, "--no-results"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "70  hard -> suppressed" in done.stdout
    assert "50  ignored -> ignored" in done.stdout
    assert "20  mailto -> opted_out" in done.stdout
    assert "200 feedback messages in" in done.stdout
