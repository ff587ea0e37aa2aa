"""Benchmark of ``poll_feedback`` over IMAP: the feedback flood of bench_feedback.py (the same
mix of DSNs, complaints, mailed unsubscribes and ignored mail) delivered into a private
Dovecot, then read by one ``poll_feedback`` run over IMAPS on PostgreSQL: fetch, process,
take out (flag and UID EXPUNGE), message by message.

    python bench/bench_poll_feedback.py                  # 2,000 messages
    python bench/bench_poll_feedback.py --messages 500

Needs root (tests/dovecot.py runs Debian's Dovecot in a private mount namespace). Prints
messages/s and the outcomes; JSON in bench/results/poll_feedback.json.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_feedback import DEFAULT_URL, build_messages, seed, setup_django
from common import RESULTS, ROOT, ensure_database, ensure_services, manage


def measure(messages) -> dict:
    from django.conf import settings

    from bulk_email.feedback.poll import poll_feedback
    from tests.dovecot import PrivateDovecot, ensure_binaries

    ensure_binaries()
    with PrivateDovecot() as dovecot:
        for _, raw in messages:
            dovecot.deliver(raw)
        settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_IMAP": dovecot.settings()}
        started = time.perf_counter()
        report = poll_feedback(limit=len(messages))
        seconds = time.perf_counter() - started
    return {
        "messages": sum(report.outcomes.values()),
        "seconds": round(seconds, 3),
        "messages_per_second": round(sum(report.outcomes.values()) / seconds),
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "outcomes": dict(sorted(report.outcomes.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_FEEDBACK_URL", DEFAULT_URL))
    args = parser.parse_args()

    ensure_services()
    ensure_database(args.database_url)
    manage(args.database_url, "migrate", "--no-input", "-v", "0")
    setup_django(args.database_url)
    sys.path.insert(0, str(ROOT))
    learners, task = seed()
    figures = measure(build_messages(args.messages, learners, task))
    for outcome, count in figures["outcomes"].items():
        print(f"  {count:>6}  {outcome}")
    print(
        f"poll_feedback over IMAPS: {figures['messages']} messages in {figures['seconds']} s: "
        f"{figures['messages_per_second']} messages/s (load average "
        f"{figures['load_average']:.1f} on {figures['cpus']} CPUs)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "poll_feedback.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
