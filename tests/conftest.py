"""Shared fixtures. Services (PostgreSQL, Redis) are skipped loudly when absent, except under
CI, where an absent service is a failure."""

import os

import pytest

from scripts.service_up import reachable

# A host project's own tests, run inside its own environment by test_wheel_install.py.
collect_ignore = ["fixtures"]


def require_service(name: str, url: str, default_port: int) -> None:
    if reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI requires it.", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {message}; start it to run this test.")


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
    require_service("Redis", url, 6379)
    return url


@pytest.fixture(autouse=True)
def site_language():
    """Each test starts and ends in the site's language: a test client's request leaves the
    language its LocaleMiddleware activated (say Arabic) active in the thread afterwards,
    and the next test would render a footer in it."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


# --- Mail: a real SMTP sink and the settings that point Django's SMTP backend at it --------


@pytest.fixture
def smtp_sink():
    from lms_stub.smtp_sink import SMTPSink

    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def smtp_settings(smtp_sink, settings):
    """Django's SMTP backend aimed at the sink; this process's SMTP session closed after."""
    from bulk_email import sending

    settings.EMAIL_BACKEND = sending.DJANGO_SMTP_BACKEND
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_sink.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    yield settings
    sending.close_session()


# --- A real, private Postfix that bounces (DSNs) into a Maildir (tests/postfix.py) ----------


@pytest.fixture(scope="session")
def postfix_server():
    """One private Postfix for the session; skipped loudly when it cannot run (failed under
    CI). Every test addresses its own VERP token, so they share it safely."""
    from tests import postfix

    server = None
    try:
        postfix.ensure_binaries()
        server = postfix.PrivatePostfix()
        server.start()
    except postfix.PostfixUnavailable as why:
        if server is not None:
            server.remove()
        message = f"a private Postfix cannot run here: {why}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}\nCI requires it.", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def postfix(postfix_server, request):
    """The session's Postfix; its logs are printed after a test that failed."""
    failed_before = request.session.testsfailed
    yield postfix_server
    if request.session.testsfailed > failed_before:
        print(postfix_server.logs())


# --- A real, private Dovecot (IMAP over TLS) serving a Maildir (tests/dovecot.py) ------------


def start_dovecot(**options):
    """A started PrivateDovecot; skipped loudly when it cannot run (failed under CI)."""
    from tests import dovecot

    server = None
    try:
        dovecot.ensure_binaries()
        server = dovecot.PrivateDovecot(**options)
        server.start()
    except dovecot.DovecotUnavailable as why:
        if server is not None:
            server.remove()
        message = f"a private Dovecot cannot run here: {why}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}\nCI requires it.", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    return server


@pytest.fixture
def dovecot(request):
    """A Dovecot of this test's own, with an empty INBOX; its logs printed if the test failed."""
    server = start_dovecot()
    failed_before = request.session.testsfailed
    yield server
    if request.session.testsfailed > failed_before:
        print(server.logs())
    server.stop()
    server.remove()


# --- The real pipeline: celery workers on Redis, this test's PostgreSQL database, the sink ----


@pytest.fixture
def live_pipeline(transactional_db, redis_url, smtp_sink, tmp_path):
    from django.db import connection

    from tests.live_pipeline import LivePipeline, database_url, point_celery_at

    if connection.vendor != "postgresql":
        pytest.skip("real workers share the database: this runs in the PostgreSQL pass")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    point_celery_at(redis_url)
    env = {
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": redis_url,
        "CELERY_VISIBILITY_TIMEOUT": "60",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_sink.port),
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "BULK_EMAIL_BATCH_LEASE_SECONDS": "3",
        "BULK_EMAIL_RETRY_DELAY": "0.2",
        "DISPATCH_SECONDS": "1",
        "VAR_DIR": str(tmp_path),
    }
    pipeline = LivePipeline(tmp_path=tmp_path, env=env)
    yield pipeline
    pipeline.stop_all()


@pytest.fixture
def course_with_learners():
    """A course, its instructor and 7 enrolled learners (the pipeline tests' audience)."""
    from tests import factories

    return factories.course_with_learners(7)


# --- The fault suite's measured figures ---------------------------------------------------------

FAULT_FIGURES = pytest.StashKey[dict]()
FAULT_REPORT = "tests/artifacts/faults.json"  # scripts/faults_table.py puts it in the README


@pytest.fixture
def record_fault(request):
    """``record_fault(fault, bound, figures)``: a fault test's measured figures, written to
    FAULT_REPORT when the session ends (merged with earlier runs' rows, by test)."""

    def record(fault: str, bound: str, figures) -> None:
        import dataclasses
        import datetime

        rows = request.config.stash.setdefault(FAULT_FIGURES, {})
        measured = datetime.date.today().isoformat()
        rows[request.node.name] = {
            "fault": fault, "bound": bound, "measured": measured, **dataclasses.asdict(figures)
        }  # fmt: skip

    return record


def pytest_sessionfinish(session):
    import json
    import pathlib

    rows = session.config.stash.get(FAULT_FIGURES, None)
    if not rows:
        return
    path = pathlib.Path(session.config.rootpath, FAULT_REPORT)
    path.parent.mkdir(exist_ok=True)
    report = json.loads(path.read_text()) if path.exists() else {}
    report.update(rows)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


# --- A course whose staff may send, and its instructor (most API and Email tab tests) --------


@pytest.fixture
def course():
    from tests.factories import make_sending_course

    return make_sending_course()


@pytest.fixture
def instructor(course):
    from lms_stub.models import CourseAccessRole
    from tests.factories import give_role, make_user

    user = make_user("prof", name="Prof. Hélène Durand")
    give_role(user, course, CourseAccessRole.INSTRUCTOR)
    return user
