"""Benchmark of the ESP webhooks: 10,000 SendGrid events, posted 100 to a request (as SendGrid
batches them) to the site's real anymail endpoint, through Django's whole request stack in
one process on PostgreSQL (no HTTP server: what is measured is the site's own work).

    python bench/bench_esp_webhooks.py                # 10,000 events
    python bench/bench_esp_webhooks.py --events 2000  # fewer

The mix, built before the clock starts: hard bounces, deferrals, drops of known-bad
addresses, spam reports, and the events that are no feedback (delivered, opened), each
about one of 2,000 learners of one send, with that learner's signed Message-ID as SendGrid's
``smtp-id`` (so every event is attributed, as over SendGrid's SMTP relay). The feedback
tables of the bench's send are emptied first, so runs compare. Prints events/s and SQL
queries per event; JSON in bench/results/esp_webhooks.json.
"""

import argparse
import base64
import collections
import json
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_feedback import seed
from common import RESULTS, ROOT, django_env, ensure_database, ensure_services, manage

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bulk_email_bench_esp"
SECRET = "bench:webhook-secret-0123456789"
PER_POST = 100
# Out of every 20 events: which (a large course's day of SendGrid events, opens included).
MIX = ["bounce"] * 4 + ["deferred"] * 4 + ["dropped"] * 2 + ["spamreport"] + ["delivered"] * 6
MIX += ["open"] * 3


def setup_django(database_url: str) -> None:
    os.environ.update(
        django_env(database_url, BULK_EMAIL_ESP_WEBHOOKS="true", ANYMAIL_WEBHOOK_SECRET=SECRET)
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "lms_stub.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build_events(count: int, learners, task) -> list[dict]:
    from bulk_email.tokens import make_message_id

    events = []
    for n in range(count):
        learner, kind = learners[n % len(learners)], MIX[n % len(MIX)]
        event = {
            "email": learner.email,
            "timestamp": 1764800000 + n,
            "smtp-id": make_message_id(task.email_id, learner.pk, "bench.example"),
            "event": kind,
            "sg_event_id": f"bench-{n}",
            "sg_message_id": f"bench-message-{n}",
        }
        event.update(DETAILS.get(kind, {}))
        events.append(event)
    return events


DETAILS = {
    "bounce": {"status": "5.1.1", "reason": "550 5.1.1 No such user", "type": "bounce"},
    "deferred": {"response": "451 4.2.2 Mailbox full", "attempt": "1"},
    "dropped": {"reason": "Bounced Address", "status": "5.0.0"},
}


def run(events) -> dict:
    from django.db import connection
    from django.test import Client

    client = Client(SERVER_NAME="localhost")
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    posts = [
        json.dumps(events[start : start + PER_POST]) for start in range(0, len(events), PER_POST)
    ]
    statuses, queries = collections.Counter(), [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    connection.ensure_connection()
    started, cpu_started = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(count), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anymail's "SendGrid is no longer supported", per post
        for body in posts:
            response = client.post(
                "/webhooks/anymail/sendgrid/tracking/",
                data=body,
                content_type="application/json",
                HTTP_AUTHORIZATION=auth,
            )
            statuses[response.status_code] += 1
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {
        "events": len(events),
        "posts": len(posts),
        "seconds": round(seconds, 3),
        "events_per_second": round(len(events) / seconds),
        "cpu_ms_per_event": round(cpu_seconds * 1000 / len(events), 3),
        "queries_per_event": round(queries[0] / len(events), 2),
        "statuses": dict(statuses),
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }


def outcomes(task) -> dict:
    from bulk_email.models import EmailTask, FeedbackEvent, Suppression

    task = EmailTask.objects.get(pk=task.pk)
    kinds = collections.Counter(FeedbackEvent.objects.values_list("kind", flat=True))
    return {
        "feedback_events": dict(sorted(kinds.items())),
        "suppressions": Suppression.objects.filter(address__startswith="fb_learner").count(),
        "task_bounced": task.bounced,
        "task_complained": task.complained,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_ESP_URL", DEFAULT_URL))
    args = parser.parse_args()

    ensure_services()
    ensure_database(args.database_url)
    manage(args.database_url, "migrate", "--no-input", "-v", "0")
    setup_django(args.database_url)
    learners, task = seed()
    events = build_events(args.events, learners, task)
    figures = run(events)
    figures.update(outcomes(task))
    print(
        f"{figures['events']} events in {figures['posts']} posts: {figures['seconds']} s, "
        f"{figures['events_per_second']} events/s, {figures['cpu_ms_per_event']} ms CPU and "
        f"{figures['queries_per_event']} queries an event (load {figures['load_average']:.2f} "
        f"on {figures['cpus']} CPUs)"
    )
    print(f"  statuses {figures['statuses']}, recorded {figures['feedback_events']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "esp_webhooks.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
