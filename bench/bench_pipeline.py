"""End-to-end benchmark: 100,000 recipients through the whole pipeline, beside the ceiling,
a peer (django-post-office) and the naive per-recipient path, on the same SMTP sink.

    python bench/bench_pipeline.py                 # make bench: 100,000 learners, 3 runs each
    python bench/bench_pipeline.py --smoke         # 1,000 learners, 1 run, no peer (make test)
    python bench/bench_pipeline.py --verp          # also with FEEDBACK_DOMAIN set (VERP on)
    python bench/bench_pipeline.py --learners 1000000 --runs 1 --no-peer --dkim
                                                   # a million, and the DKIM line

Steps: use (or start) PostgreSQL and Redis; seed a course; start Postfix's smtp-sink; then
measure, each a median of --runs runs (min and max kept):

- ceiling: N processes, each a bare smtplib loop sending pre-built 8 KB messages over one
  persistent connection;
- the physical limit: Postfix's own client ``smtp-source`` (C, one connection per session
  reused for every message, 8 KB messages) with N sessions into the same sink;
- this project: from the call of ``api.send_email`` to the task's Success, with one celery
  worker of N prefork processes on Redis + PostgreSQL; messages/s, time to the first
  message, peak RSS per worker process, CPU seconds per 1,000 messages; the worker counts
  its SQL statements and times its tasks (bench/counted_worker.py): SQL per batch task and
  the fan-out's time and statements, in that run;
- peer: django-post-office in its own virtualenv (bench/.venv-peer): ``send_many`` then
  ``send_queued_mail --processes N`` for the same number of messages;
- with --verp, this project again with ``BULK_EMAIL["FEEDBACK_DOMAIN"]`` set for the worker:
  every message's envelope sender and List-Unsubscribe mailto carry signed tokens (the
  "VERP on" line), and the per-recipient CPU with and without them;
- with --dkim, this project on a course of --dkim-learners twice, unsigned then DKIM-signed
  (an RSA-2048 key the bench generates): the ratio signed / unsigned, and the per-recipient
  CPU with the signature;
- naive: Django template + premailer + html2text + EmailMultiAlternatives + smtplib per
  recipient, timed on 2,000 recipients and scaled to the project's count over N processes.

The seeding of each course is timed (a course already seeded only checks its count).
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
    postfix_env,
    smtp_source_binary,
    start_celery_worker,
    start_sink,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bulk_email_bench"
PEER_URL = "postgres://postgres@127.0.0.1:5432/bulk_email_bench_peer"
# The Redis database the bench flushes and uses; --redis-url (or BENCH_REDIS_URL) changes it.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
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


def seed(database_url: str, learners: int, seeding: dict) -> str:
    """The course of ``learners``; the seconds its seeding took go into ``seeding``."""
    course_id = COURSE.format(size=learners)
    if f"{learners:,}" in seeding:  # seeded in this run already (the smoke's DKIM course)
        return course_id
    manage(database_url, "migrate", "--no-input", "-v", "0")
    started = time.perf_counter()
    manage(
        database_url,
        *("seed_course", "--course-id", course_id, "--learners", str(learners)),
        *("--tracks", "audit,verified,professional", "--cohorts", "4"),
    )
    seeding[f"{learners:,}"] = time.perf_counter() - started
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


def smtp_source_available() -> bool:
    binary = smtp_source_binary()
    if binary is None or not binary.exists():
        print("smtp-source unavailable: no physical-limit line", flush=True)
        return False
    return True


def measure_smtp_source(port: int, total: int, sessions: int) -> dict:
    """Postfix's smtp-source: ``sessions`` connections, each reused for its messages (-d),
    8 KB each, a distinct recipient each (-N)."""
    binary = smtp_source_binary()
    command = [str(binary), "-d", "-N", "-s", str(sessions), "-l", "8192", "-m", str(total)]
    command += ["-f", "a@lms.example.com", "-t", "learner@example.com", f"127.0.0.1:{port}"]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=postfix_env(binary), stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    return {"messages": total, "seconds": elapsed, "rate": total / elapsed}


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
    database_url: str, port: int, processes: int, log: Path, *, verp: bool = False,
    dkim: dict | None = None,
) -> subprocess.Popen:  # fmt: skip
    bench = str(ROOT / "bench")
    env = django_env(
        database_url,
        CELERY_BROKER_URL=REDIS_URL,
        BENCH_COUNTS_URL=REDIS_URL,
        PYTHONPATH=os.pathsep.join(filter(None, [bench, os.environ.get("PYTHONPATH")])),
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        # Set or emptied explicitly: "VERP off" must not inherit it from the shell.
        BULK_EMAIL_FEEDBACK_DOMAIN=FEEDBACK_DOMAIN if verp else "",
        # The same: "unsigned" is unsigned whatever the shell says.
        **(dkim or {"DKIM_DOMAIN": ""}),
    )
    arguments = ["-A", "counted_worker", "worker", "--loglevel", "INFO"]
    arguments += ["--concurrency", str(processes), "-Q", "default,large", "-n", "bench@%h"]
    return start_celery_worker(arguments, env=env, log=log)


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


def measure_project(
    database_url, course_id, port, processes, log, *, verp=False, dkim=None
) -> dict:
    import redis

    counts = redis.Redis.from_url(REDIS_URL)
    worker = start_worker(database_url, port, processes, log, verp=verp, dkim=dkim)
    try:
        counts.delete(COUNTS_KEY)
        pids = worker_processes(worker.pid)
        cpu_before = cpu_seconds(pids)
        result = send_and_wait(course_id, sender_for(course_id))
        cpu = cpu_seconds(pids) - cpu_before
        result["cpu_seconds_per_1000"] = cpu / result["messages"] * 1000
        result["peak_rss_mb_per_worker"] = max(peak_rss_mb(pid) for pid in pids[1:])
        result.update(task_counts(counts, result["task_id"]))
    finally:
        worker.terminate()
        worker.wait(30)
    return result


COUNTS_KEY = "bench:task-counts"  # bench/counted_worker.py's


def task_counts(counts, task_id: int) -> dict:
    """The worker's own counts for the send: SQL statements per batch task (all of them,
    retries included), the fan-out's wall time and statements. A batch's counts land just
    after its task returns, so the last ones are waited for (briefly)."""
    from bulk_email.models import EmailTask

    batches = EmailTask.objects.get(pk=task_id).batches_total
    deadline = time.monotonic() + 10
    while True:
        found = {k.decode(): float(v) for k, v in counts.hgetall(COUNTS_KEY).items()}
        if found.get("send_batch:tasks", 0) >= batches or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    batch_tasks = found.get("send_batch:tasks") or 1
    return {
        "batches": batches,
        "sql_per_batch_task": found.get("send_batch:statements", 0) / batch_tasks,
        "seconds_per_batch_task": found.get("send_batch:seconds", 0) / batch_tasks,
        "fan_out_seconds": found.get("fan_out:seconds", 0),
        "fan_out_statements": found.get("fan_out:statements", 0),
    }


def per_recipient_cpu(course_id: str, count: int = 5000, dkim: dict | None = None) -> dict:
    """CPU a recipient costs in this process, sockets to the SMTP server and celery apart:
    personalising + the message's bytes (VERP off, and on: FEEDBACK_DOMAIN set and a task),
    the two signed feedback addresses alone, and the progress note in Redis (its system
    calls included), alone and the two in turn as a worker runs them; with ``dkim``
    (BULK_EMAIL["DKIM"]) also personalise + bytes signed. Best of 5 passes over ``count``
    of the course's learners. The bytes are the SMTP DATA's (dot-stuffed), as sent."""
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

    def render_all(prepared=prepared, task_id=None, people=people):
        for person in people:
            rendering.render_message(prepared, person, task_id=task_id).as_stuffed_bytes()

    def note_all():
        for cursor in range(1, len(people) + 1):
            notes.note(cursor)

    def render_and_note_all():
        # As a worker runs them: a recipient's message, then its note (whose reply, read at
        # the next note, has arrived meanwhile, as it has after an SMTP round trip).
        for cursor, person in enumerate(people, 1):
            rendering.render_message(prepared, person).as_stuffed_bytes()
            notes.note(cursor)

    work = {"render_us": render_all, "note_us": note_all, "together_us": render_and_note_all,
            "verp_render_us": lambda: render_all(verp_prepared, task_id=123_456),
            "tokens_us": lambda: feedback_addresses(people)}  # fmt: skip
    found = {key: best_cpu_seconds(run) / len(people) * 1e6 for key, run in work.items()}
    if dkim:  # over 1,000 of them: a slow signer (dkimpy, ~8 ms) must not take minutes
        signed, some = prepared_signed(email, dkim), people[:1000]
        found["dkim_render_us"] = (
            best_cpu_seconds(lambda: render_all(signed, people=some)) / len(some) * 1e6
        )
        found["dkim_unsigned_us"] = (
            best_cpu_seconds(lambda: render_all(people=some)) / len(some) * 1e6
        )
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


def prepared_signed(email, dkim: dict):
    """The email prepared with BULK_EMAIL["DKIM"] set (its own cache entry, as above)."""
    from django.conf import settings
    from django.test.utils import override_settings

    from bulk_email import rendering

    with override_settings(BULK_EMAIL={**settings.BULK_EMAIL, "DKIM": dkim}):
        return rendering.get_prepared_message(email)


# --- DKIM -----------------------------------------------------------------------------------------

DKIM_DOMAIN, DKIM_SELECTOR = "lms.example.com", "bench"


def dkim_key_file() -> Path:
    """A fresh RSA-2048 key (PEM) for the signed send, under bench/results."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = RESULTS / "bench-dkim-rsa2048.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def dkim_worker_env(key_file: Path) -> dict:
    """lms_stub's settings read DKIM from these (settings.py)."""
    return {"DKIM_DOMAIN": DKIM_DOMAIN, "DKIM_SELECTOR": DKIM_SELECTOR,
            "DKIM_PRIVATE_KEY_FILE": str(key_file)}  # fmt: skip


def dkim_setting(key_file: Path) -> dict:
    return {"domain": DKIM_DOMAIN, "selector": DKIM_SELECTOR,
            "private_key": key_file.read_text()}  # fmt: skip


def feedback_addresses(people) -> None:
    """What VERP adds per recipient: its bounce and its unsubscribe address, signed."""
    from bulk_email.tokens import BOUNCE, UNSUBSCRIBE, feedback_address

    for person in people:
        feedback_address(BOUNCE, person.user_id, 123_456, FEEDBACK_DOMAIN)
        feedback_address(UNSUBSCRIBE, person.user_id, 123_456, FEEDBACK_DOMAIN)


PASSES = 5


def best_cpu_seconds(work, passes: int = PASSES) -> float:
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
        # The machine may be shared: how busy it was as this measure ended (1-minute load).
        results[-1]["load_average"] = os.getloadavg()[0]
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
    ]
    if report.get("smtp_source"):
        lines.append(
            f"| physical limit: Postfix smtp-source, {report['processes']} sessions, 8 KB | "
            f"{figure(report['smtp_source'], 'rate')} | "
            f"{figure(report['smtp_source'], 'seconds', '{:.1f}')} | | | |"
        )
    lines += [
        f"| ceiling: bare smtplib, pre-built 8 KB | {figure(c, 'rate')} | "
        f"{figure(c, 'seconds', '{:.1f}')} | | | |",
        project_row("**bulk_email** (send_email → Success)", p),
    ]
    if report.get("project_verp"):
        lines.append(project_row("**bulk_email**, VERP on (FEEDBACK_DOMAIN set)",
                                 report["project_verp"]))  # fmt: skip
    if report.get("dkim"):
        d = report["dkim"]
        lines.append(project_row(f"bulk_email, {d['learners']:,} learners, unsigned",
                                 d["unsigned"]))  # fmt: skip
        lines.append(project_row(f"bulk_email, {d['learners']:,} learners, DKIM RSA-2048",
                                 d["signed"]))  # fmt: skip
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
    loads = {"bulk_email": p, "smtp-source": report.get("smtp_source"), "smtplib": c}
    lines.append(
        f"Load average (1 min, {report['machine']}) as each measure ended: "
        + ", ".join(f"{k} {median(v, 'load_average'):.1f}" for k, v in loads.items() if v)
        + "."
    )
    lines.append(
        f"In the bulk_email run (the worker's own counts): {median(p, 'batches'):,.0f} batches, "
        f"{median(p, 'sql_per_batch_task'):.1f} SQL statements per batch task "
        f"({median(p, 'seconds_per_batch_task'):.2f} s each); fan-out "
        f"{median(p, 'fan_out_seconds'):.1f} s in {median(p, 'fan_out_statements'):,.0f} "
        "statements, the first batch out after the first page."
    )
    if report.get("seeding"):
        seeded = ", ".join(f"{k} learners {v:.1f} s" for k, v in report["seeding"].items())
        lines.append(f"Seeding (seed_course; a course already there is only counted): {seeded}.")
    if report.get("per_recipient_cpu"):
        cpu = report["per_recipient_cpu"]
        lines.append(
            f"CPU per recipient in one process, SMTP sockets and celery apart: personalise + "
            f"bytes {cpu['render_us']:.0f} µs, progress note in Redis {cpu['note_us']:.0f} µs "
            f"(notes back to back, each waiting for Redis); the two in turn, as a worker runs "
            f"them, {cpu.get('together_us', 0):.0f} µs a recipient "
            f"(best of {PASSES} over {cpu['recipients']:,} learners)."
        )
        if "dkim_render_us" in cpu:
            lines.append(
                f"DKIM-signed (RSA-2048): personalise + bytes + signature "
                f"{cpu['dkim_render_us']:.0f} µs, the signing step "
                f"{cpu['dkim_render_us'] - cpu.get('dkim_unsigned_us', cpu['render_us']):.0f} µs "
                "a message (over 1,000 learners, against the same unsigned)."
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
    if len(report.get("rate_by_size") or {}) > 1:
        rates = ", ".join(f"{k} learners: {v:,.0f}" for k, v in report["rate_by_size"].items())
        lines.append(f"bulk_email messages/s by course size, in this run: {rates}.")
    if report.get("email_tab"):
        lines += email_tab_lines(report["email_tab"])
    return "\n".join(lines)


def project_row(label: str, p: dict) -> str:
    return (
        f"| {label} | {figure(p, 'rate')} | "
        f"{figure(p, 'seconds', '{:.1f}')} | {figure(p, 'first_message_seconds', '{:.2f}')} | "
        f"{figure(p, 'peak_rss_mb_per_worker', '{:.0f}')} | "
        f"{figure(p, 'cpu_seconds_per_1000', '{:.2f}')} |"
    )


def median(result: dict, key: str) -> float:
    return result.get(key, {}).get("median", 0)


def naive_cores(report: dict) -> int:
    return min(report["processes"], os.cpu_count() or 1)


def write_readme(text: str) -> None:
    sys.path.insert(0, str(ROOT))
    from scripts.readme_section import write_section

    write_section("bench", text)


def ratios(report: dict) -> dict:
    project = report["project"]["rate"]["median"]
    found = {"project/ceiling": project / report["ceiling"]["rate"]["median"]}
    if report.get("smtp_source"):
        found["project/smtp-source"] = project / report["smtp_source"]["rate"]["median"]
    if report.get("peer"):
        found["project/peer"] = project / report["peer"]["rate"]["median"]
    found["project/naive"] = project / report["naive"]["scaled_rate"]["median"]
    if report.get("project_verp"):
        found["VERP on/off"] = report["project_verp"]["rate"]["median"] / project
    rates = report.get("rate_by_size") or {}
    others = [size for size in rates if size != f"{report['learners']:,}"]
    if others:  # the course sizes as "1,000,000": the largest other is the last
        found[f"rate {report['learners']:,}/{others[-1]}"] = (
            rates[f"{report['learners']:,}"] / rates[others[-1]]
        )
    if report.get("dkim"):
        dkim = report["dkim"]
        found["DKIM signed/unsigned"] = (
            dkim["signed"]["rate"]["median"] / dkim["unsigned"]["rate"]["median"]
        )
    return found


def main(argv: list[str]) -> None:
    global REDIS_URL  # one Redis database for the whole run, the worker's included
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive", type=int, default=2000)
    parser.add_argument("--rss-sizes", default="10000", help="extra course sizes for RSS")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--redis-url", default=REDIS_URL, help="a Redis database the bench flushes")
    parser.add_argument("--dkim", action="store_true", help="also a DKIM-signed send (RSA-2048)")
    parser.add_argument("--dkim-learners", type=int, default=20_000,
                        help="the course of the signed and unsigned sends compared")  # fmt: skip
    parser.add_argument("--no-smtp-source", action="store_true")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--verp", action="store_true", help="also send with FEEDBACK_DOMAIN set")
    parser.add_argument("--no-readme", action="store_true")
    tab_help = "also the Email tab on the course sent to (bench_email_tab.py)"
    parser.add_argument("--email-tab", action="store_true", help=tab_help)
    parser.add_argument("--smoke", action="store_true", help="1,000 learners, 1 run, no peer")
    parser.add_argument("--retable", type=Path, help="rebuild the table from a saved report")
    args = parser.parse_args(argv)
    if args.retable:
        retable(args.retable, write=not args.no_readme)
        return
    if args.smoke:
        args.learners, args.runs, args.naive, args.no_peer = 1000, 1, 100, True
        args.no_readme, args.rss_sizes, args.processes = True, "", 2
        args.dkim, args.dkim_learners, args.email_tab = True, 1000, True
    REDIS_URL = args.redis_url
    ensure_services()
    ensure_database(args.database_url)
    seeding = {}
    course_id = seed(args.database_url, args.learners, seeding)
    extra_courses = {
        int(s): seed(args.database_url, int(s), seeding) for s in args.rss_sizes.split(",") if s
    }
    dkim_course = None
    if args.dkim:
        dkim_course = seed(args.database_url, args.dkim_learners, seeding)
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
        smtp_source = None
        if not args.no_smtp_source and smtp_source_available():
            print("smtp-source:", flush=True)
            smtp_source = repeat(args.runs, lambda: measure_smtp_source(
                port, messages, args.processes))  # fmt: skip
        print("ceiling:", flush=True)
        ceiling = repeat(args.runs, lambda: measure_ceiling(port, messages, args.processes))
        print("naive:", flush=True)
        naive = repeat(args.runs, lambda: scale(measure_naive(port, args.naive), messages,
                                                args.processes))  # fmt: skip
        peer = None
        if not args.no_peer:
            print("peer:", flush=True)
            peer = repeat(args.runs, lambda: measure_peer(port, messages, args.processes))
        by_size = {}
        for size, course in extra_courses.items():
            print(f"project, {size:,} learners:", flush=True)
            by_size[size] = repeat(1, lambda course=course: measure_project(
                args.database_url, course, port, args.processes, log))  # fmt: skip
        by_size[args.learners] = project
        dkim = None
        if args.dkim:
            key_file = dkim_key_file()
            dkim = {"learners": args.dkim_learners}
            for label, env in (("unsigned", None), ("signed", dkim_worker_env(key_file))):
                if label == "unsigned" and args.runs == 1 and args.dkim_learners in by_size:
                    dkim[label] = by_size[args.dkim_learners]  # measured just before
                    continue
                print(f"project, {args.dkim_learners:,} learners, {label}:", flush=True)
                dkim[label] = repeat(args.runs, lambda env=env: measure_project(
                    args.database_url, dkim_course, port, args.processes, log, dkim=env
                ))  # fmt: skip
        per_recipient = per_recipient_cpu(
            course_id, dkim=dkim_setting(key_file) if args.dkim else None
        )
    finally:
        sink.terminate()
        sink.wait()
    email_tab = None
    if args.email_tab:
        tab_runs = 5 if args.smoke else 50
        email_tab = measure_email_tab(args.database_url, course_id, args.learners, tab_runs)
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
        "smtp_source": smtp_source,
        "dkim": dkim,
        "naive": naive,
        "peer": peer,
        "seeding": seeding,
        "per_recipient_cpu": per_recipient,
        "rss_by_size": {
            f"{k:,}": median(v, "peak_rss_mb_per_worker") for k, v in sorted(by_size.items())
        },
        "rate_by_size": {f"{k:,}": median(v, "rate") for k, v in sorted(by_size.items())},
        "email_tab": email_tab,
    }
    report["ratios"] = ratios(report)
    text = table(report)
    print("\n" + text)
    stamp = report["when"].replace(":", "")
    (RESULTS / f"pipeline-{stamp}.json").write_text(json.dumps(report, indent=2))
    if not args.no_readme:
        write_readme(text)


def measure_email_tab(database_url: str, course_id: str, learners: int, runs: int) -> dict:
    """bench_email_tab.py on the course just sent to (its own worker on the run's Redis, after
    the sends, so it takes nothing from them); its suppressions and sends removed after it."""
    print("the Email tab:", flush=True)
    report = RESULTS / "email-tab.json"
    script = ROOT / "bench" / "bench_email_tab.py"
    subprocess.run(
        [sys.executable, str(script), "--database-url", database_url, "--course-id", course_id,
         "--learners", str(learners), "--redis-url", REDIS_URL, "--runs", str(runs),
         "--before", "--tidy", "--report", str(report)],
        check=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(report.read_text())


def email_tab_lines(tab: dict) -> list[str]:
    """The tab's figures under the send's table: until exact counts, and each endpoint."""
    lines = [
        "",
        f"The Email tab on this course ({tab['groups']} groups; one worker process; "
        "`bench/bench_email_tab.py`), from the page load until the counts are exact:",
        "",
        "| | page (s) | group counts (s) | total over every group (s) |",
        "|---|---|---|---|",
    ]
    for case, rounds in tab["waits"].items():
        spans = [span(rounds, key) for key in ("page_s", "counts_s", "total_s")]
        lines.append(f"| {case} ({len(rounds)} runs) | " + " | ".join(spans) + " |")
    if tab.get("before"):
        before = tab["before"]
        lines.append(f"| before: a COUNT per group; a UNION of every group | | "
                     f"{before['per_group_s']:.2f} | {before['union_s']:.2f} |")  # fmt: skip
    recounted = [r for rounds in tab["waits"].values() for r in rounds if "recount_s" in r]
    if recounted:
        lines += ["", f"The worker's own recount after a change, nobody asking, was done "
                  f"{span(recounted, 'recount_s')} s after the change."]  # fmt: skip
    runs = tab["runs"]
    lines += ["", f"| endpoint, counts cached ({runs} runs each) | p50 ms | p95 ms | max ms |",
              "|---|---|---|---|"]  # fmt: skip
    from bench_email_tab import milliseconds  # the tab bench's own p50, p95, max

    for name, seconds in tab["endpoints"].items():
        p50, p95, most = milliseconds(seconds)
        lines.append(f"| {name} | {p50:.1f} | {p95:.1f} | {most:.1f} |")
    return lines


def span(rounds: list[dict], key: str) -> str:
    values = [r[key] for r in rounds]
    return f"{min(values):.2f} to {max(values):.2f}"


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
