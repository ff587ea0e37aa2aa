import os
import sqlite3
import subprocess
import sys

import pytest

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


# --- Fail closed: each start is a fresh process, as a deployment's would be -------------------

ENV_EXAMPLE = ROOT / "deploy" / "env.example"


def real_looking_key() -> str:
    from django.core.management.utils import get_random_secret_key

    return get_random_secret_key()


def start_site(tmp_path, command: list[str], **env: str) -> subprocess.CompletedProcess:
    """A process of the site with only ``env`` (none of the test suite's development setup)."""
    clean = {"PATH": os.environ["PATH"], "VAR_DIR": str(tmp_path)}
    clean["DJANGO_SETTINGS_MODULE"] = "lms_stub.settings"
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def read_settings(tmp_path, *names: str, **env: str) -> subprocess.CompletedProcess:
    shown = ", ".join(f"settings.{name}" for name in names)
    script = f"from lms_stub import settings; print(repr(({shown},)))"
    return start_site(tmp_path, ["-c", script], **env)


def production_env(**env: str) -> dict:
    return {"ALLOWED_HOSTS": "lms.example.com", "SECRET_KEY": real_looking_key(), **env}


def example_env() -> dict:
    """deploy/env.example as systemd's EnvironmentFile reads it, with a real key."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {**dict(pairs), "SECRET_KEY": real_looking_key()}


def test_production_without_secret_key_refuses_to_start(tmp_path):
    started = read_settings(tmp_path, "SECRET_KEY", **production_env(SECRET_KEY=""))
    assert started.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in started.stderr
    assert "Set SECRET_KEY to a long random value" in started.stderr


@pytest.mark.parametrize(
    "published",
    ["dev-only-insecure-key-change-me-in-production", "change-me", "django-insecure-abc123"],
)
def test_production_with_a_published_key_refuses_to_start(tmp_path, published):
    started = read_settings(tmp_path, "SECRET_KEY", **production_env(SECRET_KEY=published))
    assert started.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is a published placeholder" in started.stderr


def test_the_example_environment_refuses_to_start_until_its_key_is_set(tmp_path):
    started = read_settings(tmp_path, "SECRET_KEY", **{**example_env(), "SECRET_KEY": ""})
    assert "SECRET_KEY is not set" in started.stderr


def test_production_without_allowed_hosts_refuses_to_start(tmp_path):
    started = read_settings(tmp_path, "ALLOWED_HOSTS", **production_env(ALLOWED_HOSTS=""))
    assert started.returncode != 0
    assert "ImproperlyConfigured: ALLOWED_HOSTS is not set" in started.stderr


def test_debug_is_off_unless_development_turns_it_on(tmp_path):
    assert read_settings(tmp_path, "DEBUG", **production_env()).stdout.strip() == "(False,)"
    refused = read_settings(tmp_path, "DEBUG", **production_env(DEBUG="true"))
    assert "ImproperlyConfigured: DEBUG=true" in refused.stderr
    development = read_settings(tmp_path, "DEBUG", BULK_EMAIL_ENV="development", DEBUG="true")
    assert development.stdout.strip() == "(True,)"


def test_production_cookies_are_https_only_and_hsts_comes_from_the_environment(tmp_path):
    names = ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT")
    started = read_settings(tmp_path, *names, "SECURE_HSTS_SECONDS", **production_env())
    assert started.stdout.strip() == "(True, True, True, 0)"
    hsts = read_settings(
        tmp_path, "SECURE_HSTS_SECONDS", **production_env(SECURE_HSTS_SECONDS="60")
    )
    assert hsts.stdout.strip() == "(60,)"


def test_development_generates_its_key_once_under_var(tmp_path):
    first = read_settings(tmp_path, "SECRET_KEY", BULK_EMAIL_ENV="development")
    again = read_settings(tmp_path, "SECRET_KEY", BULK_EMAIL_ENV="development")
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "secret_key").read_text()
    assert first.stdout == again.stdout == f"({key!r},)\n" and len(key) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_check_deploy_is_clean_with_the_documented_production_environment(tmp_path):
    checked = start_site(
        tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **example_env()
    )
    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues" in checked.stdout


def test_esp_webhooks_come_from_the_environment_and_check_refuses_them_without_a_secret(
    tmp_path,
):
    env = example_env()
    env["BULK_EMAIL_ESP_WEBHOOKS"] = "true"
    env["MAILGUN_WEBHOOK_SIGNING_KEY"] = "key-1"
    read = read_settings(tmp_path, "ANYMAIL", 'BULK_EMAIL["ESP_WEBHOOKS"]', **env)
    assert read.stdout.strip() == "({'MAILGUN_WEBHOOK_SIGNING_KEY': 'key-1'}, True)"
    refused = start_site(tmp_path, ["manage.py", "check", "--deploy"], **env)
    assert refused.returncode != 0
    assert "bulk_email.E014" in refused.stderr
    env["ANYMAIL_WEBHOOK_SECRET"] = "esp:long-random-password"
    checked = start_site(
        tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **env
    )
    assert checked.returncode == 0, checked.stderr
