"""Benchmark of retention (manage.py purge_sends) on PostgreSQL: 1,000,000 failed/skipped rows.

Seeds a course of 100,000 learners once (``seed_course``, idempotent), then, on every run,
ten finished sends to all of them 100 days old, each with 200 batches of 500 and a skipped row
per learner (1,000,000 ``RecipientOutcome`` rows, written by SQL), and times the dry run and the
purge itself, checking that every send's counts are the same afterwards.

    python bench/bench_purge.py                   # 10 sends x 100,000 learners
    python bench/bench_purge.py --sends 2         # a quicker look
"""

import argparse
import datetime
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, ensure_database, manage

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bulk_email_bench_purge"
COURSE_ID = "course-v1:Bench+Purge+2026"
LEARNERS = 100_000
BATCH = 500


def setup_django(database_url: str) -> None:
    os.environ.update({"DATABASE_URL": database_url, "BULK_EMAIL_ENV": "development", "DEBUG": "0"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_stub.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed_sends(count: int) -> list[int]:
    """``count`` finished sends of the course, 100 days old, with their batches and a skipped
    row per learner; earlier runs' sends are deleted first."""
    from django.db import connection
    from django.utils import timezone

    from bulk_email.models import Batch, CourseEmail, EmailTask
    from lms_stub.models import CourseEnrollment

    CourseEmail.objects.filter(course_id=COURSE_ID, subject="bench purge").delete()
    learners = list(
        CourseEnrollment.objects.filter(course_id=COURSE_ID)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    old = timezone.now() - datetime.timedelta(days=100)
    task_ids = []
    for _ in range(count):
        email = CourseEmail.objects.create(course_id=COURSE_ID, subject="bench purge")
        task = EmailTask.objects.create(
            email=email, state=EmailTask.SUCCESS, total=len(learners), finished_at=old
        )
        pages = [learners[i : i + BATCH] for i in range(0, len(learners), BATCH)]
        Batch.objects.bulk_create(
            Batch(task=task, seq=seq, user_ids=ids, state=Batch.DONE, cursor=len(ids),
                  sent=len(ids) - 1, skipped=1)
            for seq, ids in enumerate(pages)
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bulk_email_recipientoutcome (task_id, batch_id, user_id, status,"
                " detail, created) SELECT b.task_id, b.id, ids.id::bigint, 'skipped', 'bench',"
                " now() FROM bulk_email_batch b, jsonb_array_elements_text(b.user_ids) ids(id)"
                " WHERE b.task_id = %s",
                [task.pk],
            )
        task_ids.append(task.pk)
    return task_ids


def counts_of(task_ids: list[int]) -> list:
    from bulk_email.models import EmailTask

    return [t.counts() for t in EmailTask.objects.filter(pk__in=task_ids).order_by("pk")]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--sends", type=int, default=10)
    args = parser.parse_args(argv)
    ensure_database(args.database_url)
    manage(args.database_url, "migrate", "--verbosity=0")
    print(f"seeding {COURSE_ID} with {LEARNERS:,} learners (idempotent) ...", flush=True)
    manage(args.database_url, "seed_course", f"--course-id={COURSE_ID}", f"--learners={LEARNERS}")
    setup_django(args.database_url)
    from bulk_email import api
    from bulk_email.models import RecipientOutcome

    started = time.perf_counter()
    task_ids = seed_sends(args.sends)
    rows = RecipientOutcome.objects.filter(task_id__in=task_ids).count()
    print(
        f"seeded {args.sends} sends, {rows:,} outcome rows in {time.perf_counter() - started:.1f} s"
    )
    before = counts_of(task_ids)

    started = time.perf_counter()
    dry = api.purge_sends(older_than_days=30, dry_run=True)
    dry_seconds = time.perf_counter() - started
    started = time.perf_counter()
    purge = api.purge_sends(older_than_days=30)
    seconds = time.perf_counter() - started

    assert counts_of(task_ids) == before, "counts changed"
    assert not RecipientOutcome.objects.filter(task_id__in=task_ids).exists()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"dry run: {dry_seconds:.2f} s ({dry.outcomes:,} outcomes, {dry.batches:,} batches)")
    print(
        f"purge: {seconds:.2f} s for {purge.sends} sends, {purge.batches:,} batches, "
        f"{purge.outcomes:,} outcome rows ({purge.outcomes / seconds:,.0f} rows/s); "
        f"counts unchanged; peak RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
