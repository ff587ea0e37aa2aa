"""The send pipeline for real: celery worker processes (with the beat dispatcher) on Redis,
sharing the test's PostgreSQL database, sending to the test's SMTP sink.

Used through the ``live_pipeline`` fixture (tests/conftest.py) by the integration and
browser tests. Only the PostgreSQL pass runs it: the SQLite test database lives in this
process's memory, where no worker can reach it."""

import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

from bulk_email.models import EmailTask
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

    def start_worker(self, *, concurrency: int = 2, beat: bool = True, **env) -> object:
        name = f"w{next(_names)}"
        log = self.tmp_path / f"{name}.log"
        schedule = self.tmp_path / f"{name}-beat" if beat else None
        worker = start_worker(
            env={**self.env, **env},
            log_path=log,
            name=name,
            concurrency=concurrency,
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
            f"task {task.pk} stayed {task.state} (seen {seen}); worker logs:\n{self.logs()}"
        )
