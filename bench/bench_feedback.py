"""Benchmark of the feedback service: a flood of 10,000 messages that came back, through
``process_message`` in one process on PostgreSQL (the issue's goal: at least 500 a second).

    python bench/bench_feedback.py                  # 10,000 messages
    python bench/bench_feedback.py --messages 2000  # fewer

The mix, built before the clock starts: DSNs in Postfix's layout to the VERP address (hard
5.1.1 and soft 4.2.2 delay warnings), complaint reports (ARF) quoting the original message,
mails to the List-Unsubscribe mailto, and messages that change nothing (auto-replies, human
replies, DSNs without a token, forged tokens). Each is a different message (its own
Message-ID) about one of 2,000 learners of one send, so suppressions, opt-outs and the soft
bounce counts build up as they would. The feedback tables of the bench's send are emptied
first, so runs compare. Prints messages/s, the outcomes and SQL queries per message; JSON in
bench/results/feedback.json.
"""

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, django_env, ensure_database, ensure_services, manage

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bulk_email_bench_feedback"
FEEDBACK_DOMAIN = "feedback.bench.example"
COURSE_ID = "course-v1:Bench+Feedback+2026"
LEARNERS = 2000
# Out of every 20 messages: what kind (the mix of a large course's week of feedback).
MIX = ["hard"] * 7 + ["soft"] * 4 + ["arf"] * 2 + ["mailto"] * 2 + ["ignored"] * 5


def setup_django(database_url: str) -> None:
    os.environ.update(django_env(database_url, BULK_EMAIL_FEEDBACK_DOMAIN=FEEDBACK_DOMAIN))
    os.environ["DJANGO_SETTINGS_MODULE"] = "lms_stub.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from lms_stub import events

    events.disconnect()  # the demo site's example receiver (JSON lines) is the site's cost


def seed():
    """The bench's learners and send (created once), with last run's feedback removed."""
    from django.contrib.auth import get_user_model

    from bulk_email.models import CourseEmail, EmailTask, FeedbackEvent, Optout, Suppression

    user_model = get_user_model()
    existing = set(
        user_model.objects.filter(username__startswith="fb_learner").values_list(
            "username", flat=True
        )
    )
    user_model.objects.bulk_create(
        user_model(username=f"fb_learner{n}", email=f"fb_learner{n}@example.com")
        for n in range(LEARNERS)
        if f"fb_learner{n}" not in existing
    )
    learners = list(user_model.objects.filter(username__startswith="fb_learner").order_by("pk"))
    email, _ = CourseEmail.objects.get_or_create(
        course_id=COURSE_ID, subject="Week news", defaults={"html_message": "<p>News</p>"}
    )
    task = EmailTask.objects.filter(email=email).first() or EmailTask.objects.create(
        email=email, state=EmailTask.SUCCESS
    )
    EmailTask.objects.filter(pk=task.pk).update(bounced=0, complained=0)
    FeedbackEvent.objects.all().delete()
    Suppression.objects.filter(address__startswith="fb_learner").delete()
    Optout.objects.filter(course_id=COURSE_ID).delete()
    vacuum(FeedbackEvent, Suppression, Optout, EmailTask, user_model)
    return learners, task


def vacuum(*models) -> None:
    """Autovacuum is off on this project's machines: without this, each run would find the
    last run's dead rows in the tables and indexes it writes, and be slower than the last."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def build_messages(count: int, learners, task) -> list[tuple[str, bytes]]:
    from bulk_email.tokens import BOUNCE, UNSUBSCRIBE, feedback_address
    from tests.feedback.mail import arf, dsn, mail_to

    originals = Originals(task)
    messages = []
    for n in range(count):
        kind, learner = MIX[n % len(MIX)], learners[(n * 7919) % len(learners)]
        verp = feedback_address(BOUNCE, learner.pk, task.pk, FEEDBACK_DOMAIN)
        message_id = f"<{n}.bench@mta.example.net>"
        if kind == "hard":
            raw = dsn(to=verp, recipient=learner.email, message_id=message_id)
        elif kind == "soft":
            raw = dsn(to=verp, recipient=learner.email, action="delayed", status="4.2.2",
                      diagnostic="smtp; 452 4.2.2 mailbox full", message_id=message_id)  # fmt: skip
        elif kind == "arf":
            raw = arf(original=originals.of(learner), message_id=message_id)
        elif kind == "mailto":
            address = feedback_address(UNSUBSCRIBE, learner.pk, task.pk, FEEDBACK_DOMAIN)
            raw = mail_to(address, message_id=message_id)
        else:
            raw = ignored_message(n, verp, learner, message_id)
        messages.append((kind, raw))
    return messages


def ignored_message(n: int, verp: str, learner, message_id: str) -> bytes:
    from tests.feedback.mail import dsn, mail_to

    variant = n % 4
    if variant == 0:  # a vacation notice to the envelope sender
        return mail_to(verp, subject="Out of office", message_id=message_id,
                       headers={"Auto-Submitted": "auto-replied"})  # fmt: skip
    if variant == 1:  # a human's reply
        return mail_to(verp, subject="Re: Week news", message_id=message_id)
    if variant == 2:  # a DSN with no token
        return dsn(to="postmaster@feedback.bench.example", recipient=learner.email,
                   message_id=message_id)  # fmt: skip
    forged = verp[: verp.index("@") - 4] + "aaaa" + verp[verp.index("@") :]
    return dsn(to=forged, recipient=learner.email, message_id=message_id)


class Originals:
    """The message each learner got (rendered once per learner, as the worker did)."""

    def __init__(self, task):
        import dataclasses

        from tests.messages import UNICODE_COURSE, EmailData, prepare

        course = dataclasses.replace(UNICODE_COURSE, course_id=COURSE_ID)
        self.prepared = prepare(EmailData(pk=task.email_id, course_id=COURSE_ID), course)
        self.task = task

    def of(self, learner) -> bytes:
        from bulk_email.rendering import Recipient, render_message

        recipient = Recipient(learner.pk, learner.email, learner.username)
        rendered = render_message(self.prepared, recipient, task_id=self.task.pk)
        return f"Return-Path: <{rendered.envelope_from}>\r\n".encode() + rendered.as_bytes()


def run(messages) -> dict:
    from django.db import connection

    from bulk_email.feedback import process_message

    outcomes, queries = collections.Counter(), [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    connection.ensure_connection()
    started, cpu_started = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(count):
        for kind, raw in messages:
            outcomes[f"{kind} -> {process_message(raw, source='bench').outcome}"] += 1
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {
        "messages": len(messages),
        "seconds": round(seconds, 3),
        "messages_per_second": round(len(messages) / seconds),
        # This process's own CPU (parsing, classifying, Django's ORM), without PostgreSQL's.
        "cpu_ms_per_message": round(cpu_seconds * 1000 / len(messages), 3),
        # Statements besides BEGIN and COMMIT (one transaction per message).
        "queries_per_message": round(queries[0] / len(messages), 2),
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "outcomes": dict(sorted(outcomes.items())),
    }


def commit_ceiling(transactions: int = 1000) -> dict:
    """The rate of the cheapest durable transaction on the same database and connection: one
    one-row INSERT and its COMMIT (fsync). One transaction per message can go no faster; on
    a shared machine it tells how much of the figure is the database's."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_commit_ceiling (n integer)")
    started = time.perf_counter()
    for n in range(transactions):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_commit_ceiling (n) VALUES (%s)", [n])
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_commit_ceiling")
    return {"transactions_per_second": round(transactions / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_FEEDBACK_URL", DEFAULT_URL))
    parser.add_argument("--no-results", action="store_true", help="Write no JSON file.")
    args = parser.parse_args()

    ensure_services()
    ensure_database(args.database_url)
    manage(args.database_url, "migrate", "--no-input", "-v", "0",
           BULK_EMAIL_FEEDBACK_DOMAIN=FEEDBACK_DOMAIN)  # fmt: skip
    setup_django(args.database_url)
    learners, task = seed()
    messages = build_messages(args.messages, learners, task)
    size = sum(len(raw) for _, raw in messages)
    print(f"{len(messages)} messages built ({size / len(messages) / 1024:.1f} KB on average)")
    ceiling_before = commit_ceiling()
    figures = run(messages)
    ceiling_after = commit_ceiling()
    figures["commit_ceiling_per_second"] = round(
        (ceiling_before["transactions_per_second"] + ceiling_after["transactions_per_second"]) / 2
    )
    for line, count in figures["outcomes"].items():
        print(f"  {count:>6}  {line}")
    print(
        f"{figures['messages']} feedback messages in {figures['seconds']} s: "
        f"{figures['messages_per_second']} messages/s, "
        f"{figures['cpu_ms_per_message']} ms of this process's CPU a message, "
        f"{figures['queries_per_message']} SQL statements a message besides BEGIN/COMMIT "
        f"(goal: >= 500/s; load average {figures['load_average']:.1f} on {figures['cpus']} CPUs)"
    )
    print(
        f"the same database's bare one-row INSERT + COMMIT, before and after: "
        f"{figures['commit_ceiling_per_second']} transactions/s (no one-transaction-per-message "
        f"service can go faster here)"
    )
    if not args.no_results:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "feedback.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
