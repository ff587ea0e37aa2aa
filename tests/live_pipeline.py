"""The send pipeline for real: celery worker processes (with the beat dispatcher) on Redis,
sharing the test's PostgreSQL database, sending to the test's SMTP sink.

Used through the ``live_pipeline`` fixture (tests/conftest.py) by the integration and
browser tests. Only the PostgreSQL pass runs it: the SQLite test database lives in this
process's memory, where no worker can reach it."""

import collections
import datetime
import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from bulk_email import api
from bulk_email.models import BulkEmailFlag, EmailTask, Optout
from lms_stub.models import CourseAccessRole, CourseEnrollment
from lms_stub.seeding import SeedPlan, course_slug, seed_course
from tests.factories import staff
from tests.processes import start_worker, stop, wait_for_text

_names = itertools.count(1)


def database_url() -> str:
    """The URL of the test database this process uses (pytest-django's test_<name>)."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def point_celery_at(broker_url: str) -> None:
    """This process enqueues (api.send_email's on_commit) to the workers' broker."""
    from lms_stub.celery import app

    if app.conf.broker_url == broker_url:
        return
    if app._pool is not None:  # connections made for the old broker: drop them
        app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None
    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = {"visibility_timeout": 60}


@dataclass
class LivePipeline:
    tmp_path: Path
    env: dict
    workers: list = field(default_factory=list)

    def start_worker(
        self, *, concurrency: int = 2, beat: bool = True, queues: str = "default,large", **env
    ) -> object:
        name = f"w{next(_names)}"
        log = self.tmp_path / f"{name}.log"
        schedule = self.tmp_path / f"{name}-beat" if beat else None
        worker = start_worker(
            env={**self.env, **env},
            log_path=log,
            name=name,
            concurrency=concurrency,
            queues=queues,
            beat_schedule=schedule,
        )
        wait_for_text(log, " ready.", timeout=60, process=worker)
        worker.log_path = log
        self.workers.append(worker)
        return worker

    def kill(self, worker, sig: int = signal.SIGKILL) -> None:
        """kill -9 the worker and all its pool processes, as a crash would."""
        os.killpg(worker.pid, sig)
        worker.wait(20)

    def stop_all(self) -> None:
        for worker in self.workers:
            stop(worker)

    def logs(self) -> str:
        return "\n".join(w.log_path.read_text(errors="replace")[-3000:] for w in self.workers)

    def wait_for_state(self, task: EmailTask, states, *, timeout: float = 60) -> EmailTask:
        """Poll the task until it reaches one of ``states``; the states seen on the way are
        kept on ``task.seen_states``."""
        states = {states} if isinstance(states, str) else set(states)
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            task.refresh_from_db()
            if not seen or seen[-1] != task.state:
                seen.append(task.state)
            if task.state in states:
                task.seen_states = seen
                return task
            time.sleep(0.05)
        raise AssertionError(
            f"task {task.pk} stayed {task.state} (seen {seen}); {task_summary(task)}\n"
            f"batches:\n{batch_summary(task)}\nworker logs:\n{self.logs()}"
        )


def task_summary(task: EmailTask) -> str:
    fields = ("fan_out_done", "batches_total", "batches_finished", "total", "retries")
    return ", ".join(f"{name}={getattr(task, name)}" for name in fields)


def batch_summary(task: EmailTask) -> str:
    """One line per batch not done: why a task did not finish, when a test times out."""
    rows = task.batches.exclude(state="done").values_list(
        "pk", "seq", "state", "cursor", "sent", "failed", "skipped", "attempts", "heartbeat",
        "enqueued_at",
    )  # fmt: skip
    return "\n".join(map(str, rows)) or "(every batch is done)"


# --- Courses and sends for the pipeline tests ---------------------------------------------------


def seeded_course(learners: int, course_id: str = "course-v1:PipeX+P1+2026"):
    seed_course(SeedPlan(course_id=course_id, learners=learners, tracks=["audit", "verified"]))
    flag = BulkEmailFlag.current()
    flag.enabled, flag.require_course_email_auth = True, False
    flag.save()
    instructor = get_user_model().objects.get(username=f"{course_slug(course_id)}_instructor")
    return course_id, instructor


def expected_learner_addresses(course_id: str, *, mode: str | None = None) -> set[str]:
    """Computed apart from the resolver: active accounts with an active enrollment, seen (or,
    never seen, enrolled) within 18 months, not team, not opted out. The seed's dates are
    within 400 days or over 700 days old, so any cutoff between the two gives the same set."""
    cutoff = timezone.now() - datetime.timedelta(days=540)
    team = set(
        CourseAccessRole.objects.filter(
            course_id=course_id, role__in=CourseAccessRole.TEAM_ROLES
        ).values_list("user_id", flat=True)
    )
    opted_out = set(Optout.objects.filter(course_id=course_id).values_list("user_id", flat=True))
    found = set()
    for enrollment in CourseEnrollment.objects.filter(course_id=course_id).select_related("user"):
        user = enrollment.user
        recent = (user.last_login or enrollment.created) >= cutoff
        wanted = mode is None or enrollment.mode == mode
        if (
            wanted
            and recent
            and user.is_active
            and enrollment.is_active
            and user.pk not in team | opted_out
        ):
            found.add(user.email)
    return found


def send_now(course_id, instructor, targets, **fields) -> EmailTask:
    with transaction.atomic():
        task = api.send_email(
            access=staff(course_id, instructor),
            subject=fields.pop("subject", "Semaine 1 — %%USER_FULLNAME%%"),
            html=fields.pop("html", "<p>Bonjour %%USER_FULLNAME%% 👋</p>"),
            targets=targets,
            **fields,
        )
        assert EmailTask.objects.get(pk=task.pk).state == EmailTask.QUEUING
    return task


def rcpt_counts(sink) -> collections.Counter:
    return collections.Counter(address for m in sink.messages for address in m.rcpt_tos)


# --- What a fault test measured (the README's faults table) ------------------------------------


@dataclass(frozen=True)
class FaultFigures:
    """One send's outcome under a fault: what the sink received of the expected recipients,
    and what the instructor is shown."""

    recipients: int  # expected: computed apart from the resolver
    received: int  # deliveries to them (copies included)
    lost: int  # expected, neither received nor shown as failed or skipped: silently dropped
    duplicated: int  # copies beyond the first
    state: str  # the workflow state shown
    sent: int
    failed: int
    skipped: int
    retries: int
    seconds: float  # from the send to its final state


def measure(sink, expected: set[str], task: EmailTask) -> FaultFigures:
    received = rcpt_counts(sink)
    status = api.task_status(task=task)
    accounted = set(received) | set(task.outcomes.values_list("user__email", flat=True))
    return FaultFigures(
        recipients=len(expected),
        received=sum(received[address] for address in expected),
        lost=len(expected - accounted),
        duplicated=sum(received[address] - 1 for address in expected if received[address]),
        state=status.state_label,
        sent=status.sent,
        failed=status.failed,
        skipped=status.skipped,
        retries=status.retries,
        seconds=round((status.finished_at - status.created).total_seconds(), 1),
    )
