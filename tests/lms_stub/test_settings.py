import os
import sqlite3
import subprocess
import sys

from lms_stub import settings
from tests.processes import ROOT


def test_embedded_default_is_sqlite_in_wal_mode(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(settings, "VAR_DIR", tmp_path)
    config = settings.database_from_env()
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "db.sqlite3")
    connection = sqlite3.connect(config["NAME"])
    connection.executescript(config["OPTIONS"]["init_command"])
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_database_url_selects_postgresql(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://bulk:pw@db.internal:5433/lms")
    config = settings.database_from_env()
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5433, "lms")


def test_env_bool(monkeypatch):
    for value, expected in (("1", True), ("false", False), ("", True), ("Yes", True)):
        monkeypatch.setenv("SOME_FLAG", value)
        assert settings.env_bool("SOME_FLAG", True) is expected


def manage_py(command: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_message_sent_on_the_embedded_broker_brings_no_kombu_warning(tmp_path):
    """kombu warned "No hostname was supplied" on every manage.py command that enqueues."""
    enqueue = "from lms_stub.celery import app; app.send_task('noop', queue='default')"
    env = {"VAR_DIR": str(tmp_path), "CELERY_BROKER_URL": "", "DATABASE_URL": ""}
    result = manage_py(["shell", "-c", enqueue], env)
    assert result.returncode == 0, result.stderr
    assert "hostname" not in result.stderr + result.stdout
    assert len(list((tmp_path / "broker" / "queue").iterdir())) == 1  # on the embedded broker
