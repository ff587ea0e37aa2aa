"""Benchmark of the Email tab on a 1,000,000-learner course (PostgreSQL, Redis, a real worker).

Seeds the course once with ``seed_course`` (a database that has it already is reused: the
seeding time is printed either way), starts one celery worker (Redis broker and cache, db 3
unless told otherwise), then, through Django's test Client in one process (the whole Django
stack, middleware and templates included, without a network hop):

- the time until the exact group counts and the exact de-duplicated total over every group
  are there, from a page load: on a cold cache; at once after a change (an opt-out, then the
  opt-in back), while the worker's recount it started runs; and once that recount is done
  (with the time from the change until then);
- the page and each JSON endpoint of the tab, ``--runs`` times each (default 50), with the
  counts cached: p50, p95 and max;
- with ``--before``, what the tab cost before: a COUNT per group and the confirm dialog's
  UNION over every group, run the old way (recipients.group_counts, count_recipients).

    python bench/bench_email_tab.py                  # 1,000,000 learners, 50 runs
    python bench/bench_email_tab.py --learners 100000 --before
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    ROOT,
    django_env,
    ensure_database,
    manage,
    seed_sized_course,
    sized_course_id,
    start_celery_worker,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_tab1m"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"
BENCH_SUBJECT = "Bench ✓"


# ---------------------------------------------------------------------------------------------
# The parent: database, seeding, the worker, the child that measures


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    arguments = ["-A", "lms_stub", "worker", "--loglevel", "INFO", "--concurrency", "1",
                 "-Q", "default", "-n", "bench-tab@%h"]  # fmt: skip
    return start_celery_worker(arguments, env=env, log=log)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--learners", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--before", action="store_true", help="also time the old way")
    parser.add_argument("--course-id", help="a course seeded already (make bench's): no seeding")
    parser.add_argument("--report", type=Path, help="the figures, as JSON, into this file")
    tidy_help = "remove the suppressions and sends made here (a shared database)"
    parser.add_argument("--tidy", action="store_true", help=tidy_help)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        run_child(options)
        return
    ensure_database(options.database_url)
    manage(options.database_url, "migrate", "--verbosity=0")
    if options.course_id is None:
        seconds = seed_sized_course(options.database_url, options.learners)
        print(f"seed_course took {seconds:.1f} s (a seeded database is reused: nothing created)")
    env = django_env(options.database_url, CELERY_BROKER_URL=options.redis_url,
                     CACHE_URL=options.redis_url)  # fmt: skip
    log = ROOT / "bench" / ".cache" / "email_tab_worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    worker = start_worker(env, log)
    try:
        child = [sys.executable, __file__, "--child", *argv]
        subprocess.run(child, check=True, cwd=ROOT, env=env)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


# ---------------------------------------------------------------------------------------------
# The child: Django set up against the seeded database, the worker's Redis as broker and cache


def run_child(options) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_stub.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from lms_stub.seeding import course_slug

    course_id = options.course_id or sized_course_id(options.learners)
    slug = course_slug(course_id)
    instructor = get_user_model().objects.get(username=f"{slug}_instructor")
    turn_bulk_email_on(course_id)
    suppress_some(course_id, options.learners // 100)
    forget_earlier_sends(course_id)
    try:
        report = measure(course_id, instructor.pk, options)
    finally:
        if options.tidy:
            tidy(course_id)
    if options.report:
        options.report.write_text(json.dumps(report, indent=2))


def measure(course_id: str, instructor_id: int, options) -> dict:
    """Every figure of the bench, printed as it comes; returned for ``--report``."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from bulk_email import audience, recipients

    instructor = get_user_model().objects.get(pk=instructor_id)
    client = Client(SERVER_NAME="localhost")  # a host the development settings allow
    client.force_login(instructor)
    tab = Tab(client, course_id)
    keys = [group.key for group in recipients.available_groups(course_id=course_id)]

    print(f"\n{course_id}: {len(keys)} groups; cache {audience.cache().__class__.__name__}")
    before = print_before(course_id, instructor.pk, keys) if options.before else None
    waits = time_to_counts(tab, course_id, keys, instructor.pk)
    print_waits(waits)
    endpoints = measure_endpoints(tab, keys, options.runs)
    print_endpoints(endpoints, options.runs)
    print(json.dumps({"waits": waits}))
    return {"course_id": course_id, "groups": len(keys), "runs": options.runs,
            "before": before, "waits": waits, "endpoints": endpoints}  # fmt: skip


def turn_bulk_email_on(course_id: str) -> None:
    """As an operator does in the admin (a fresh database has the feature off)."""
    from bulk_email.models import BulkEmailFlag

    flag = BulkEmailFlag.current()
    flag.enabled, flag.require_course_email_auth = True, False
    flag.save()


def suppress_some(course_id: str, how_many: int) -> None:
    """One learner in a hundred with a suppressed address (a bounce), as a real course has:
    the counts then pay for that rule too. Made once; a re-run finds them."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from bulk_email.models import Suppression
    from lms_stub.seeding import course_slug

    if Suppression.objects.filter(source="bench").exists():
        return
    now = timezone.now()
    learners = get_user_model().objects.filter(username__startswith=course_slug(course_id) + "_l")
    addresses = learners.order_by("pk").values_list("email", flat=True)[: how_many * 7 : 7]
    Suppression.objects.bulk_create(
        Suppression(address=Suppression.normalize(address), reason=Suppression.HARD_BOUNCE,
                    source="bench", first_event=now, last_event=now)
        for address in addresses
    )  # fmt: skip
    from django.db import connection

    with connection.cursor() as cursor:  # as autovacuum would, minutes later
        cursor.execute("ANALYZE bulk_email_suppression, auth_user")


def tidy(course_id: str) -> None:
    """The database as the bench found it: the suppressions it made, its sends (the learner
    it opted out is opted in again by the last change)."""
    from bulk_email.models import Suppression

    Suppression.objects.filter(source="bench").delete()
    forget_earlier_sends(course_id)


def forget_earlier_sends(course_id: str) -> None:
    """The sends an earlier run scheduled (and revoked), so that every run lists as many."""
    from bulk_email.models import CourseEmail

    CourseEmail.objects.filter(course_id=course_id, subject=BENCH_SUBJECT).delete()


class Tab:
    """The tab's page and endpoints, as the browser calls them."""

    def __init__(self, client, course_id: str):
        from django.urls import reverse

        self.client = client
        self.page_url = reverse("instructor_dashboard", args=[course_id]) + "?tab=email"
        self.api = f"/email/courses/{course_id}/api/"

    def page(self):
        return self.client.get(self.page_url)

    def get(self, rest: str, **params):
        return self.client.get(self.api + rest, params)

    def send(self, method: str, rest: str, body: dict | None = None):
        call = getattr(self.client, method.lower())
        return call(self.api + rest, json.dumps(body or {}), content_type="application/json")


def checked(response, *statuses: int):
    if response.status_code not in statuses:
        raise RuntimeError(f"{response.status_code}: {response.content[:500]!r}")
    return response


# --- Before: the old way, a COUNT per group and a UNION for the total ---------------------------


def print_before(course_id: str, sender_id: int, keys: list[str]) -> dict:
    from bulk_email import recipients

    started = time.perf_counter()
    recipients.group_counts(course_id=course_id, sender_id=sender_id)
    per_group = time.perf_counter() - started
    started = time.perf_counter()
    recipients.count_recipients(course_id=course_id, sender_id=sender_id, target_keys=keys)
    union = time.perf_counter() - started
    print(f"before: a COUNT per group {per_group:.2f} s; the total over every group {union:.2f} s")
    return {"per_group_s": per_group, "union_s": union}


# --- Until the counts are there ----------------------------------------------------------------


def time_to_counts(tab: Tab, course_id: str, keys: list[str], sender_id: int) -> dict:
    """Three cases: a cold cache (the tab's first page ever); a page at once after a change
    (the worker's recount that the change started is under way); a page opened once that
    recount is done (``recount_s``: from the change until then)."""
    from bulk_email import app_settings, audience

    waits = {"cold": [], "at once after an opt-out or opt-in": [], "after the worker's recount": []}
    learner = some_learner(course_id)
    for _ in range(3):
        audience.cache().clear()
        waits["cold"].append(wait_for_counts(tab, keys))
    for round_ in range(4):
        change_audience(course_id, learner, opt_out=round_ % 2 == 0)
        waits["at once after an opt-out or opt-in"].append(wait_for_counts(tab, keys))
    for round_ in range(4):
        # A lone change: the recount window of the changes before is over (a change inside
        # a window is recounted at its end, AUDIENCE_RECOUNT_SECONDS at most after the first).
        time.sleep(app_settings.get("AUDIENCE_RECOUNT_SECONDS") + 1)
        started = time.perf_counter()
        change_audience(course_id, learner, opt_out=round_ % 2 == 0)
        recount_s = wait_for_recount(course_id, started)
        waits["after the worker's recount"].append(wait_for_counts(tab, keys) | recount_s)
    return waits


def change_audience(course_id: str, learner: int, *, opt_out: bool) -> None:
    from bulk_email import api
    from bulk_email.models import Optout

    if opt_out:
        api.opt_out(user_id=learner, course_id=course_id, how=Optout.DASHBOARD)
    else:
        api.opt_in(user_id=learner, course_id=course_id)


def wait_for_recount(course_id: str, started: float, limit: float = 120.0) -> dict:
    """Until the worker has recounted the course on its own (no page asks meanwhile)."""
    from bulk_email import api

    while not api.audience.is_counted(course_id=course_id):
        if time.perf_counter() - started > limit:
            raise RuntimeError("No recount after two minutes: is the worker running?")
        time.sleep(0.05)
    return {"recount_s": time.perf_counter() - started}


def some_learner(course_id: str) -> int:
    from bulk_email import recipients

    page = next(recipients.recipient_id_pages(course_id=course_id, sender_id=None,
                                              target_keys=["learners"], page_size=10))  # fmt: skip
    return page[-1]


def wait_for_counts(tab: Tab, keys: list[str]) -> dict:
    """From the page load: when the group counts and the total over every group are exact."""
    started = time.perf_counter()
    page = checked(tab.page(), 200)
    page_seconds = time.perf_counter() - started
    counts = poll(lambda: tab.get("groups/"))
    counts_seconds = time.perf_counter() - started
    total = poll(lambda: tab.send("POST", "count/", {"targets": keys}))
    total_seconds = time.perf_counter() - started
    pending = b"data-pending" in page.content
    learners = next(group["count"] for group in counts["groups"] if group["key"] == "learners")
    return {
        "page_s": page_seconds, "counts_s": counts_seconds, "total_s": total_seconds,
        "page_had_counts": not pending, "total": total["total"], "learners": learners,
    }  # fmt: skip


def poll(ask, every: float = 0.25, limit: float = 120.0) -> dict:
    """Ask until counted, every quarter second as the tab's script does."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        response = checked(ask(), 200, 202)
        if response.status_code == 200:
            return response.json()
        time.sleep(every)
    raise RuntimeError("No counts after two minutes: is the worker running?")


def print_waits(waits: dict) -> None:
    print("\nuntil exact counts (s, from the page load)   page   group counts   total over all")
    for name, rounds in waits.items():
        for r in rounds:
            notes = [f"total {r['total']:,}", f"All Learners {r['learners']:,}"]
            if r["page_had_counts"]:
                notes.append("in the page")
            if "recount_s" in r:
                notes.append(f"recounted {r['recount_s']:.2f} s after the change")
            print(f"  {name:<42} {r['page_s']:>6.3f} {r['counts_s']:>13.2f} {r['total_s']:>16.2f}"
                  f"   ({'; '.join(notes)})")  # fmt: skip


# --- Each endpoint, counts cached --------------------------------------------------------------


def measure_endpoints(tab: Tab, keys: list[str], runs: int) -> dict[str, list[float]]:
    poll(lambda: tab.get("groups/"))
    poll(lambda: tab.get("groups/", key="learners"))
    sends = []
    soon = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=300)).isoformat()
    message = {"subject": BENCH_SUBJECT, "message": "<p>Hello %%USER_FULLNAME%%</p>"}
    scheduled = {**message, "targets": ["learners"], "send_at": soon}
    calls = {
        "page (dashboard ?tab=email)": lambda: checked(tab.page(), 200),
        "GET groups/": lambda: checked(tab.get("groups/"), 200),
        "GET groups/?key=learners (why?)": lambda: checked(tab.get("groups/", key="learners"), 200),
        "POST count/ (every group)": lambda: checked(
            tab.send("POST", "count/", {"targets": keys}), 200
        ),
        "POST preview/": lambda: checked(tab.send("POST", "preview/", message), 200),
        "POST emails/ (schedule, all learners)": lambda: sends.append(
            checked(tab.send("POST", "emails/", scheduled), 201).json()["task_id"]
        ),
        "GET tasks/": lambda: checked(tab.get("tasks/"), 200),
        "GET tasks/<id>/": lambda: checked(tab.get(f"tasks/{sends[-1]}/"), 200),
        "GET tasks/<id>/email/": lambda: checked(tab.get(f"tasks/{sends[-1]}/email/"), 200),
        "GET tasks/<id>/recipients/": lambda: checked(
            tab.get(f"tasks/{sends[-1]}/recipients/"), 200
        ),
        "GET report.csv": lambda: checked(tab.get("report.csv"), 200),
        "DELETE tasks/<id>/ (revoke)": lambda: checked(
            tab.send("DELETE", f"tasks/{sends.pop()}/"), 200
        ),
    }
    timings = {}
    for name, call in calls.items():
        call()  # warm: imports, templates, the connection
        timings[name] = timed(call, runs)
    return timings


def timed(call, runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        response = call()
        if hasattr(response, "streaming") and response.streaming:
            b"".join(response.streaming_content)
        seconds.append(time.perf_counter() - started)
    return seconds


def print_endpoints(timings: dict[str, list[float]], runs: int) -> None:
    print(f"\nendpoint ({runs} runs each, counts cached)      p50 ms   p95 ms   max ms")
    for name, seconds in timings.items():
        p50, p95, most = milliseconds(seconds)
        print(f"  {name:<42} {p50:>7.1f} {p95:>8.1f} {most:>8.1f}")


def milliseconds(seconds: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max of an endpoint's timings, in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms), ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))], ms[-1]


if __name__ == "__main__":
    main(sys.argv[1:])
