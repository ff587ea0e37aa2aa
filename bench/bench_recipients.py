"""Benchmark of recipient resolution on PostgreSQL: All Learners + a track + a cohort, in pages.

For each course size it seeds a course with the foundation's ``seed_course`` (idempotent: a
re-run seeds nothing), then, in a fresh child process so that the peak RSS is the resolution's
own, walks every page and prints total time, pages, recipients, peak RSS, SQL queries per
page, and the EXPLAIN ANALYZE time of one page deep into the course.

    python bench/bench_recipients.py                      # 100,000 and 1,000,000 learners
    python bench/bench_recipients.py --sizes 100000 --explain   # and print the plan
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, ensure_database, manage, seed_sized_course, sized_course_id
from common import django_env as child_env

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bulk_email_bench"


# ---------------------------------------------------------------------------------------------
# The parent: database, seeding, one child per size, the table


def measure_in_child(database_url: str, size: int, page_size: int, explain: bool) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        sized_course_id(size),
        f"--page-size={page_size}",
    ]
    if explain:
        command.append("--explain")
    result = subprocess.run(
        command, check=True, cwd=ROOT, env=child_env(database_url), capture_output=True, text=True
    )
    sys.stderr.write(result.stderr)
    *plan_lines, figures = result.stdout.strip().splitlines()
    if plan_lines:
        print("\n".join(plan_lines))
    return {**json.loads(figures), "size": size}


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'enrollments':>12} {'recipients':>10} {'pages':>6} {'total s':>8} {'ms/page':>8} "
        f"{'max ms':>7} {'deep page ms':>12} {'queries/page':>12} {'RSS start/peak MB':>17}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['size']:>12,} {r['recipients']:>10,} {r['pages']:>6,} {r['total_s']:>8.1f} "
            f"{r['median_page_ms']:>8.1f} {r['max_page_ms']:>7.1f} {r['deep_page_ms']:>12.1f} "
            f"{r['queries_per_page']:>12} {r['rss_at_start_mb']:>8.1f}/{r['peak_rss_mb']:<8.1f}"
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--explain", action="store_true", help="print the deep page's plan")
    parser.add_argument("--child", metavar="COURSE_ID", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        run_child(options.child, options.page_size, options.explain)
        return
    ensure_database(options.database_url)
    manage(options.database_url, "migrate", "--verbosity=0")
    for size in options.sizes:
        seed_sized_course(options.database_url, size)  # seed_course ANALYZEs what it loaded
    rows = [
        measure_in_child(options.database_url, size, options.page_size, options.explain)
        for size in options.sizes
    ]
    print_table(rows)


# ---------------------------------------------------------------------------------------------
# The child: resolve every page of one course and report


def run_child(course_id: str, page_size: int, explain: bool) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_stub.settings")
    import django

    django.setup()
    from bulk_email.lms import get_lms

    cohort = next(c for c in get_lms().course_cohorts(course_id) if not c.is_default)
    keys = ["learners", "track:verified", f"cohort:{cohort.id}"]
    rss_at_start = peak_rss_mb()
    figures = {**walk_pages(course_id, keys, page_size), "rss_at_start_mb": rss_at_start}
    figures["deep_page_ms"] = explain_deep_page(course_id, keys, page_size, figures, explain)
    print(json.dumps(figures))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def walk_pages(course_id: str, keys: list[str], page_size: int) -> dict:
    from django.db import connection

    from bulk_email.recipients import recipient_pages

    queries = []
    counter = lambda execute, *args: queries.append(1) or execute(*args)  # noqa: E731
    page_times, queries_per_page, recipients, last_id = [], set(), 0, 0
    pages = recipient_pages(
        course_id=course_id, sender_id=None, target_keys=keys, page_size=page_size
    )
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        while True:
            before, page_started = len(queries), time.perf_counter()
            page = next(pages, None)
            queries_per_page.add(len(queries) - before)
            if page is None:
                break
            page_times.append(time.perf_counter() - page_started)
            assert page[0].user_id > last_id, "pages must be in user-id order, without repeats"
            recipients, last_id = recipients + len(page), page[-1].user_id
            page_ids = [r.user_id for r in page]
            assert page_ids == sorted(set(page_ids))
        total = time.perf_counter() - started
    return {
        "recipients": recipients,
        "pages": len(page_times),
        "total_s": total,
        "median_page_ms": statistics.median(page_times) * 1000,
        "max_page_ms": max(page_times) * 1000,
        "queries_per_page": "/".join(map(str, sorted(queries_per_page))),
        "peak_rss_mb": peak_rss_mb(),
        "deep_after_id": last_id,
    }


def explain_deep_page(course_id: str, keys, page_size: int, figures: dict, show: bool) -> float:
    """EXPLAIN ANALYZE of the page that starts 90% of the way through the course."""
    from django.db import connection

    from bulk_email.recipients import recipient_id_pages

    audience = {"course_id": course_id, "sender_id": None, "target_keys": keys}
    every_id = [i for page in recipient_id_pages(**audience, page_size=50_000) for i in page]
    after_id = every_id[int(figures["recipients"] * 0.9)]
    sql, params = page_sql(course_id, keys, page_size, after_id)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
    if show:
        print(f"-- plan of the page after user {after_id} of {course_id}")
        print("\n".join(plan))
    return float(next(line for line in plan if line.startswith("Execution Time")).split()[2])


def page_sql(course_id: str, keys, page_size: int, after_id: int):
    from bulk_email import recipients

    # The very query recipient_pages runs for one page.
    ids = recipients.member_ids(
        course_id=course_id,
        sender_id=None,
        target_keys=keys,
        now=None,
        after_id=after_id,
        limit=page_size,
    )
    page = recipients._as_recipients(ids, after_id=after_id)[:page_size]
    return page.query.sql_with_params()


if __name__ == "__main__":
    main(sys.argv[1:])
