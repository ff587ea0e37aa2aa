"""Shared fixtures. Services (PostgreSQL, Redis) are skipped loudly when absent, except under
CI, where an absent service is a failure."""

import os

import pytest

from scripts.service_up import reachable


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


# --- Mail: a real SMTP sink and the settings that point Django's SMTP backend at it --------


@pytest.fixture
def smtp_sink():
    from tests.smtp_sink import SMTPSink

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
