"""A real celery worker process comes up on each broker the project supports and answers
over it: kombu's filesystem transport (the embedded default of `make run`) and Redis."""

import socket

import pytest
from celery import Celery

from tests.processes import start_worker, stop, wait_for_text

pytestmark = pytest.mark.integration


def filesystem_broker(tmp_path) -> tuple[dict, dict]:
    """Env for the worker and the matching client options (VAR_DIR decides the folders)."""
    folders = {
        "data_folder_in": str(tmp_path / "broker" / "queue"),
        "data_folder_out": str(tmp_path / "broker" / "queue"),
        "control_folder": str(tmp_path / "broker" / "control"),
    }
    return {"VAR_DIR": str(tmp_path), "CELERY_BROKER_URL": "filesystem://"}, folders


def ping(broker_url: str, transport_options: dict, worker: str) -> list:
    client = Celery(broker=broker_url, broker_transport_options=transport_options)
    replies = []
    for _ in range(20):  # the worker may need a moment to start consuming its control queue
        replies = client.control.ping(destination=[worker], timeout=1.0)
        if replies:
            break
    return replies


def run_worker_and_ping(tmp_path, env: dict, broker_url: str, transport_options: dict) -> list:
    log = tmp_path / "worker.log"
    worker = start_worker(env=env, log_path=log, name="pingtest")
    try:
        wait_for_text(log, "ready.", timeout=60, process=worker)
        return ping(broker_url, transport_options, f"pingtest@{socket.gethostname()}")
    finally:
        stop(worker)


def test_worker_on_the_embedded_filesystem_broker(tmp_path):
    env, folders = filesystem_broker(tmp_path)
    replies = run_worker_and_ping(tmp_path, env, "filesystem://", folders)
    assert replies and "ok" in next(iter(replies[0].values()))


def test_worker_on_redis(tmp_path, redis_url):
    env = {"CELERY_BROKER_URL": redis_url, "VAR_DIR": str(tmp_path)}
    replies = run_worker_and_ping(tmp_path, env, redis_url, {})
    assert replies and "ok" in next(iter(replies[0].values()))
