import sqlite3

from lms_stub import settings


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
