"""End-to-end benchmark: 100,000 recipients through the whole pipeline, beside the ceiling,
a peer (django-post-office) and the naive per-recipient path, on the same SMTP sink.

    python bench/bench_pipeline.py                 # make bench: 100,000 learners, 3 runs each
    python bench/bench_pipeline.py --smoke         # 1,000 learners, 1 run, no peer (make test)
    python bench/bench_pipeline.py --verp          # also with FEEDBACK_DOMAIN set (VERP on)

Steps: use (or start) PostgreSQL and Redis; seed a course; start Postfix's smtp-sink; then
measure, each a median of --runs runs (min and max kept):

- ceiling: N processes, each a bare smtplib loop sending pre-built 8 KB messages over one
  persistent connection;
- this project: from the call of ``api.send_email`` to the task's Success, with one celery
  worker of N prefork processes on Redis + PostgreSQL; messages/s, time to the first
  message, peak RSS per worker process, CPU seconds per 1,000 messages, SQL per batch;
- peer: django-post-office in its own virtualenv (bench/.venv-peer): ``send_many`` then
  ``send_queued_mail --processes N`` for the same number of messages;
- with --verp, this project again with ``BULK_EMAIL["FEEDBACK_DOMAIN"]`` set for the worker:
  every message's envelope sender and List-Unsubscribe mailto carry signed tokens (the
  "VERP on" line), and the per-recipient CPU with and without them;
- naive: Django template + premailer + html2text + EmailMultiAlternatives + smtplib per
  recipient, timed on 2,000 recipients and scaled to the project's count over N processes.

Prints one table and the ratios, writes JSON to bench/results/ (git-ignored) and, unless
--no-readme, the table into the README between the bench markers.
"""

import argparse
import datetime
import json
import multiprocessing
import os
import smtplib
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    RESULTS,
    ROOT,
    django_env,
    ensure_database,
    ensure_services,
    free_port,
    manage,
    start_sink,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bulk_email_bench"
PEER_URL = "postgres://postgres@127.0.0.1:5432/bulk_email_bench_peer"
REDIS_URL = "redis://127.0.0.1:6379/13"
COURSE = "course-v1:Bench+E2E{size}+2026"
SUBJECT = "Semaine %%USER_ID%% — %%COURSE_DISPLAY_NAME%%"
PARAGRAPH = (
    "<p>Dear %%USER_FULLNAME%%, this week we study <strong>waves</strong> and "
    '<em>oscillations</em>. <a href="https://lms.example.com/courses/x/wiki">Read the wiki</a>'
    " and bring your questions to the forum.</p>"
)
FEEDBACK_DOMAIN = "feedback.bench.example"
BODY = "<h1>Week news</h1>" + PARAGRAPH * 14 + "<p>The course ends on %%COURSE_END_DATE%%.</p>"


# --- Setup ----------------------------------------------------------------------------------------


def setup_django(database_url: str) -> None:
    os.environ.update(django_env(database_url, CELERY_BROKER_URL=REDIS_URL))
    os.environ["DJANGO_SETTINGS_MODULE"] = "lms_stub.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(database_url: str, learners: int) -> str:
    course_id = COURSE.format(size=learners)
    manage(database_url, "migrate", "--no-input", "-v", "0")
    manage(
        database_url,
        *("seed_course", "--course-id", course_id, "--learners", str(learners)),
        *("--tracks", "audit,verified,professional", "--cohorts", "4"),
    )
    return course_id


def sender_for(course_id: str):
    from django.contrib.auth import get_user_model

    from bulk_email.models import BulkEmailFlag
    from lms_stub.seeding import course_slug

    flag = BulkEmailFlag.current()
    flag.enabled, flag.require_course_email_auth = True, False
    flag.save()
    return get_user_model().objects.get(username=f"{course_slug(course_id)}_instructor")


# --- Ceiling --------------------------------------------------------------------------------------


def eight_kb_message() -> bytes:
    body = ("x" * 76 + "\r\n") * 100
    headers = "From: a@lms.example.com\r\nTo: b@example.com\r\nSubject: ceiling\r\n\r\n"
    return (headers + body).encode()


def ceiling_worker(port: int, count: int, results) -> None:
    payload = eight_kb_message()
    connection = smtplib.SMTP("127.0.0.1", port)
    for n in range(count):
        connection.sendmail("a@lms.example.com", [f"learner{n}@example.com"], payload)
    connection.quit()
    results.put(count)


def measure_ceiling(port: int, total: int, processes: int) -> dict:
    results = multiprocessing.Queue()
    share = -(-total // processes)
    workers = [
        multiprocessing.Process(target=ceiling_worker, args=(port, share, results))
        for _ in range(processes)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    sent = sum(results.get() for _ in workers)
    return {"messages": sent, "seconds": elapsed, "rate": sent / elapsed}


# --- This project ---------------------------------------------------------------------------------


def start_worker(
    database_url: str, port: int, processes: int, log: Path, *, verp: bool = False
) -> subprocess.Popen:
    env = django_env(
        database_url,
        CELERY_BROKER_URL=REDIS_URL,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        # Set or emptied explicitly: "VERP off" must not inherit it from the shell.
        BULK_EMAIL_FEEDBACK_DOMAIN=FEEDBACK_DOMAIN if verp else "",
    )
    command = [sys.executable, "-m", "celery", "-A", "lms_stub", "worker", "--loglevel", "INFO"]
    command += ["--concurrency", str(processes), "-Q", "default,large", "-n", "bench@%h"]
    output = open(log, "wb")  # noqa: SIM115 (lives as long as the worker)
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while " ready." not in log.read_text(errors="replace"):
        if time.monotonic() > deadline or worker.poll() is not None:
            raise RuntimeError(f"The worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return worker


def worker_processes(main_pid: int) -> list[int]:
    children = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()
    return [main_pid, *map(int, children)]


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def send_and_wait(course_id: str, sender) -> dict:
    """From the service call to Success, polling the task every 10 ms until the first message
    (its time is a figure), then every 100 ms: polling shares the 2 cores with the send."""
    from bulk_email import api
    from bulk_email.models import EmailTask

    started = time.perf_counter()
    task = api.send_email(
        access=api.staff_access(user=sender, course_id=course_id),
        subject=SUBJECT,
        html=BODY,
        targets=["learners"],
    )
    first = None
    while True:
        status = api.task_status(task=task)
        now = time.perf_counter()
        if first is None and status.sent:
            first = now - started
        if status.state in EmailTask.FINAL_STATES:
            break
        time.sleep(0.01 if first is None else 0.1)
    if status.state != EmailTask.SUCCESS:
        raise RuntimeError(f"The send ended {status.state}: {status.error}")
    elapsed = now - started
    return {"messages": status.sent, "seconds": elapsed, "rate": status.sent / elapsed,
            "first_message_seconds": first, "task_id": task.pk}  # fmt: skip


def measure_project(database_url, course_id, port, processes, log, *, verp=False) -> dict:
    worker = start_worker(database_url, port, processes, log, verp=verp)
    try:
        pids = worker_processes(worker.pid)
        cpu_before = cpu_seconds(pids)
        result = send_and_wait(course_id, sender_for(course_id))
        cpu = cpu_seconds(pids) - cpu_before
        result["cpu_seconds_per_1000"] = cpu / result["messages"] * 1000
        result["peak_rss_mb_per_worker"] = max(peak_rss_mb(pid) for pid in pids[1:])
    finally:
        worker.terminate()
        worker.wait(30)
    return result


def sql_per_batch(course_id: str, port: int) -> dict:
    """One batch sent in this process with every SQL statement counted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    from bulk_email import pipeline, sending
    from bulk_email.models import Batch, EmailTask
    from tests.factories import make_email

    sender = sender_for(course_id)
    email = make_email(course_id, sender=sender, targets=["learners"], html_message=BODY)
    task = EmailTask.objects.create(email=email, requester=sender, state=EmailTask.PENDING)
    first_job = next(pipeline.fan_out(task_id=task.pk))
    smtp = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port}
    with override_settings(EMAIL_BACKEND=sending.DJANGO_SMTP_BACKEND, **smtp):
        with CaptureQueriesContext(connection) as queries:
            pipeline.send_batch(batch_id=first_job.id)
        sending.close_session()
    size = len(Batch.objects.get(pk=first_job.id).user_ids)
    EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.REVOKED)
    return {"recipients": size, "queries": len(queries), "per_recipient": len(queries) / size}


def per_recipient_cpu(course_id: str, count: int = 5000) -> dict:
    """CPU a recipient costs in this process, sockets to the SMTP server and celery apart:
    personalising + the message's bytes (VERP off, and on: FEEDBACK_DOMAIN set and a task),
    the two signed feedback addresses alone, and the progress note in Redis (its system
    calls included). Best of 3 passes over ``count`` of the course's learners."""
    from types import SimpleNamespace

    from bulk_email import progress, recipients, rendering
    from tests.factories import make_email

    sender = sender_for(course_id)
    email = make_email(course_id, sender=sender, targets=["learners"], subject=SUBJECT,
                       html_message=BODY)  # fmt: skip
    prepared, verp_prepared = prepared_without_and_with_verp(email)
    audience = recipients.email_audience(email=email)
    people = next(recipients.recipient_pages(**audience, page_size=count))
    batch = SimpleNamespace(pk=0, seq=1, created=datetime.datetime.now(datetime.UTC))
    notes = progress.notes_for(batch=batch, token="bench", redis_url=REDIS_URL)
    notes.adopt()

    def render_all(prepared=prepared, task_id=None):
        for person in people:
            rendering.render_message(prepared, person, task_id=task_id).as_bytes()

    def note_all():
        for cursor in range(1, len(people) + 1):
            notes.note(cursor)

    work = {"render_us": render_all, "note_us": note_all,
            "verp_render_us": lambda: render_all(verp_prepared, task_id=123_456),
            "tokens_us": lambda: feedback_addresses(people)}  # fmt: skip
    found = {key: best_cpu_seconds(run) / len(people) * 1e6 for key, run in work.items()}
    notes.forget()
    return {**found, "recipients": len(people)}


def prepared_without_and_with_verp(email) -> tuple:
    """The email prepared twice: the settings snapshot keys the cache, so FEEDBACK_DOMAIN
    set gives its own prepared message."""
    from django.conf import settings
    from django.test.utils import override_settings

    from bulk_email import rendering

    plain = rendering.get_prepared_message(email)
    with override_settings(BULK_EMAIL={**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": FEEDBACK_DOMAIN}):
        return plain, rendering.get_prepared_message(email)


def feedback_addresses(people) -> None:
    """What VERP adds per recipient: its bounce and its unsubscribe address, signed."""
    from bulk_email.tokens import BOUNCE, UNSUBSCRIBE, feedback_address

    for person in people:
        feedback_address(BOUNCE, person.user_id, 123_456, FEEDBACK_DOMAIN)
        feedback_address(UNSUBSCRIBE, person.user_id, 123_456, FEEDBACK_DOMAIN)


def best_cpu_seconds(work, passes: int = 3) -> float:
    times = []
    for _ in range(passes):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times)


# --- The naive per-recipient path -----------------------------------------------------------------


def measure_naive(port: int, count: int) -> dict:
    import html2text
    import premailer
    from django.core.mail import EmailMultiAlternatives
    from django.template import Context, Template

    template = Template(
        "<html><head><style>p { color: #333; } h1 { font-size: 20px; }</style></head><body>"
        "{{ body|safe }}<p>You get this as a learner of {{ course }}. "
        '<a href="{{ unsubscribe }}">Unsubscribe</a>. 1 Rue de l\'École, Paris</p></body></html>'
    )
    connection = smtplib.SMTP("127.0.0.1", port)
    started = time.perf_counter()
    for n in range(count):
        body = BODY.replace("%%USER_FULLNAME%%", f"Learnér {n}")
        context = {"body": body, "course": "Physique", "unsubscribe": f"https://x/u/{n}"}
        html = premailer.transform(template.render(Context(context)))
        message = EmailMultiAlternatives(
            "Week news", html2text.html2text(html), "a@lms.example.com", [f"l{n}@example.com"]
        )
        message.attach_alternative(html, "text/html")
        connection.sendmail(
            "a@lms.example.com", [f"l{n}@example.com"], message.message().as_bytes()
        )
    elapsed = time.perf_counter() - started
    connection.quit()
    return {"messages": count, "seconds": elapsed, "rate": count / elapsed}


# --- The peer: django-post-office -----------------------------------------------------------------


PEER_VENV = ROOT / "bench" / ".venv-peer"
PEER_REQUIREMENTS = ["Django>=5.2,<5.3", "django-post-office>=3.9", "psycopg[binary]>=3.1"]


def peer_python() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS], check=True)
    return python


def measure_peer(port: int, count: int, processes: int) -> dict:
    ensure_database(PEER_URL)
    command = [str(peer_python()), str(ROOT / "bench" / "peer_post_office.py")]
    command += ["--port", str(port), "--count", str(count), "--processes", str(processes)]
    env = {**os.environ, "PEER_DATABASE_URL": PEER_URL}
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(output.stdout.strip().splitlines()[-1])


# --- Runs, table, README --------------------------------------------------------------------------


def median_of(runs: list[dict]) -> dict:
    summary = {}
    for key in runs[0]:
        values = [run[key] for run in runs if isinstance(run.get(key), int | float)]
        if values and key != "task_id":
            summary[key] = {"median": statistics.median(values), "min": min(values),
                            "max": max(values)}  # fmt: skip
    return summary


def repeat(runs: int, measure) -> dict:
    results = []
    for number in range(runs):
        results.append(measure())
        print(f"  run {number + 1}: {results[-1]}", flush=True)
    return median_of(results)


def figure(result: dict, key: str, form: str = "{:,.0f}") -> str:
    value = result.get(key)
    if not value:
        return "—"
    low, high = form.format(value["min"]), form.format(value["max"])
    return f"{form.format(value['median'])} ({low} to {high})"


def table(report: dict) -> str:
    p, c = report["project"], report["ceiling"]
    lines = [
        f"Machine: {report['machine']}; {report['messages']:,} messages; "
        f"{report['processes']} processes; sink: {report['sink']}; "
        f"median of {report['runs']} runs (min to max).",
        "",
        "| | messages/s | time (s) | first message (s) | peak RSS/worker (MB) | CPU s/1,000 msgs |",
        "|---|---|---|---|---|---|",
        f"| ceiling: bare smtplib, pre-built 8 KB | {figure(c, 'rate')} | "
        f"{figure(c, 'seconds', '{:.1f}')} | | | |",
        f"| **bulk_email** (send_email → Success) | {figure(p, 'rate')} | "
        f"{figure(p, 'seconds', '{:.1f}')} | {figure(p, 'first_message_seconds', '{:.2f}')} | "
        f"{figure(p, 'peak_rss_mb_per_worker', '{:.0f}')} | "
        f"{figure(p, 'cpu_seconds_per_1000', '{:.2f}')} |",
    ]
    if report.get("project_verp"):
        v = report["project_verp"]
        lines.append(
            f"| **bulk_email**, VERP on (FEEDBACK_DOMAIN set) | {figure(v, 'rate')} | "
            f"{figure(v, 'seconds', '{:.1f}')} | {figure(v, 'first_message_seconds', '{:.2f}')} | "
            f"{figure(v, 'peak_rss_mb_per_worker', '{:.0f}')} | "
            f"{figure(v, 'cpu_seconds_per_1000', '{:.2f}')} |"
        )
    if report.get("peer"):
        peer = report["peer"]
        lines.append(
            f"| django-post-office (send_many + send_queued_mail) | {figure(peer, 'rate')} | "
            f"{figure(peer, 'seconds', '{:.1f}')} | | | |"
        )
    naive = report["naive"]
    lines.append(
        f"| naive per-recipient render (2,000, scaled to {naive_cores(report)} cores) | "
        f"{figure(naive, 'scaled_rate')} | {figure(naive, 'scaled_seconds', '{:.1f}')} | | | |"
    )
    lines += ["", "Ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in report["ratios"].items())]
    sql = report["sql_per_batch"]
    lines.append(
        f"SQL per batch of {sql['recipients']}: {sql['queries']} statements "
        f"({sql['per_recipient']:.2f} per recipient; progress is noted in Redis after each "
        "message and written to the row at checkpoints)."
    )
    if report.get("per_recipient_cpu"):
        cpu = report["per_recipient_cpu"]
        lines.append(
            f"CPU per recipient in one process, SMTP sockets and celery apart: personalise + "
            f"bytes {cpu['render_us']:.0f} µs, progress note in Redis {cpu['note_us']:.0f} µs "
            f"(best of 3 over {cpu['recipients']:,} learners)."
        )
        if "verp_render_us" in cpu:
            lines.append(
                f"With VERP (FEEDBACK_DOMAIN set): personalise + bytes {cpu['verp_render_us']:.1f} "
                f"µs against {cpu['render_us']:.1f} µs, of which the two signed feedback "
                f"addresses {cpu['tokens_us']:.1f} µs."
            )
    if report.get("rss_by_size"):
        sizes = ", ".join(f"{k} learners: {v:.0f} MB" for k, v in report["rss_by_size"].items())
        lines.append(f"Worker peak RSS by course size: {sizes}.")
    return "\n".join(lines)


def naive_cores(report: dict) -> int:
    return min(report["processes"], os.cpu_count() or 1)


def write_readme(text: str) -> None:
    sys.path.insert(0, str(ROOT))
    from scripts.readme_section import write_section

    write_section("bench", text)


def ratios(report: dict) -> dict:
    project = report["project"]["rate"]["median"]
    found = {"project/ceiling": project / report["ceiling"]["rate"]["median"]}
    if report.get("peer"):
        found["project/peer"] = project / report["peer"]["rate"]["median"]
    found["project/naive"] = project / report["naive"]["scaled_rate"]["median"]
    if report.get("project_verp"):
        found["VERP on/off"] = report["project_verp"]["rate"]["median"] / project
    return found


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive", type=int, default=2000)
    parser.add_argument("--rss-sizes", default="10000", help="extra course sizes for RSS")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--verp", action="store_true", help="also send with FEEDBACK_DOMAIN set")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="1,000 learners, 1 run, no peer")
    parser.add_argument("--retable", type=Path, help="rebuild the table from a saved report")
    args = parser.parse_args(argv)
    if args.retable:
        retable(args.retable, write=not args.no_readme)
        return
    if args.smoke:
        args.learners, args.runs, args.naive, args.no_peer = 1000, 1, 100, True
        args.no_readme, args.rss_sizes, args.processes = True, "", 2
    ensure_services()
    ensure_database(args.database_url)
    course_id = seed(args.database_url, args.learners)
    extra_courses = {
        int(s): seed(args.database_url, int(s)) for s in args.rss_sizes.split(",") if s
    }
    setup_django(args.database_url)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    port = free_port()
    sink, sink_name = start_sink(port)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / "bench-worker.log"
    try:
        print("project:", flush=True)
        project = repeat(args.runs, lambda: measure_project(
            args.database_url, course_id, port, args.processes, log))  # fmt: skip
        project_verp = None
        if args.verp:
            print("project, VERP on:", flush=True)
            project_verp = repeat(args.runs, lambda: measure_project(
                args.database_url, course_id, port, args.processes, log, verp=True))  # fmt: skip
        messages = int(project["messages"]["median"])
        print("ceiling:", flush=True)
        ceiling = repeat(args.runs, lambda: measure_ceiling(port, messages, args.processes))
        print("naive:", flush=True)
        naive = repeat(args.runs, lambda: scale(measure_naive(port, args.naive), messages,
                                                args.processes))  # fmt: skip
        peer = None
        if not args.no_peer:
            print("peer:", flush=True)
            peer = repeat(args.runs, lambda: measure_peer(port, messages, args.processes))
        rss_by_size = {
            size: measure_project(args.database_url, course, port, args.processes, log)[
                "peak_rss_mb_per_worker"
            ]
            for size, course in extra_courses.items()
        }
        rss_by_size[args.learners] = project["peak_rss_mb_per_worker"]["median"]
        sql = sql_per_batch(course_id, port)
        per_recipient = per_recipient_cpu(course_id)
    finally:
        sink.terminate()
        sink.wait()
    report = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores",
        "sink": sink_name,
        "learners": args.learners,
        "messages": messages,
        "processes": args.processes,
        "runs": args.runs,
        "project": project,
        "project_verp": project_verp,
        "ceiling": ceiling,
        "naive": naive,
        "peer": peer,
        "sql_per_batch": sql,
        "per_recipient_cpu": per_recipient,
        "rss_by_size": {f"{k:,}": v for k, v in sorted(rss_by_size.items())},
    }
    report["ratios"] = ratios(report)
    text = table(report)
    print("\n" + text)
    stamp = report["when"].replace(":", "")
    (RESULTS / f"pipeline-{stamp}.json").write_text(json.dumps(report, indent=2))
    if not args.no_readme:
        write_readme(text)


def scale(naive: dict, messages: int, processes: int) -> dict:
    """The naive path's time for the project's message count over the same processes. It is
    CPU-bound, so it can scale to at most one process per core; assumed perfect up to there
    (generous to it)."""
    rate = naive["rate"] * min(processes, os.cpu_count() or 1)
    return {**naive, "scaled_rate": rate, "scaled_seconds": messages / rate}


def retable(path: Path, write: bool) -> None:
    """Rebuild the table (and the ratios) from a saved JSON report, e.g. after a change of
    how the naive figure is scaled; the measurements themselves are not redone."""
    report = json.loads(path.read_text())
    per_process = report["naive"]["rate"]
    runs = [{"rate": per_process[k]} for k in ("median", "min", "max")]
    scaled = [scale(run, report["messages"], report["processes"]) for run in runs]
    for key in ("scaled_rate", "scaled_seconds"):
        values = [run[key] for run in scaled]
        report["naive"][key] = {"median": values[0], "min": min(values), "max": max(values)}
    report["ratios"] = ratios(report)
    path.write_text(json.dumps(report, indent=2))
    text = table(report)
    print(text)
    if write:
        write_readme(text)


if __name__ == "__main__":
    main(sys.argv[1:])
