"""The shared send-rate limit: GCRA in Redis for every worker, locally without Redis."""

import sys
import threading
import time

import pytest

from bulk_email import sending
from bulk_email.sending import LocalRateLimiter, RedisRateLimiter
from lms_stub.smtp_sink import free_port
from tests.sending.batches import learners, send_batch


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def test_the_local_limiter_paces_sends():
    limiter = LocalRateLimiter(rate=100)
    elapsed = timed(lambda: [limiter.wait() for _ in range(21)])
    assert 0.19 <= elapsed < 0.5


def test_send_batch_respects_max_send_rate(smtp_settings, prepared, settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_SEND_RATE": 50, "REDIS_URL": None}
    settings.CELERY_BROKER_URL = "memory://"
    elapsed = timed(lambda: send_batch(prepared, learners(6)))
    assert elapsed >= 0.1


@pytest.mark.redis
def test_the_redis_limiter_is_shared_by_all_workers(redis_url):
    key = f"bulk_email:test_rate:{time.time_ns()}"
    workers = [RedisRateLimiter(100, redis_url, key=key) for _ in range(3)]
    threads = [threading.Thread(target=lambda w=w: [w.wait() for _ in range(10)]) for w in workers]

    def run():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    elapsed = timed(run)  # 30 sends at 100/s across three "workers": at least 0.29 s
    assert 0.28 <= elapsed < 1.0


@pytest.mark.redis
def test_the_redis_limiter_defaults_to_the_celery_broker(settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_SEND_RATE": 10, "REDIS_URL": None}
    assert isinstance(sending.get_rate_limiter(), RedisRateLimiter)


def test_without_redis_the_limiter_falls_back_to_local_limiting():
    limiter = RedisRateLimiter(100, f"redis://127.0.0.1:{free_port()}/0")
    elapsed = timed(lambda: [limiter.wait() for _ in range(11)])
    assert elapsed >= 0.09


def test_without_the_redis_package_the_error_names_the_extra(monkeypatch):
    from bulk_email import progress
    from bulk_email.exceptions import BulkEmailImproperlyInstalled

    monkeypatch.setitem(sys.modules, "redis", None)  # as if not installed
    with pytest.raises(BulkEmailImproperlyInstalled, match=r"bulk_email\[redis\]"):
        RedisRateLimiter(10, "redis://127.0.0.1:6379/0")
    with pytest.raises(BulkEmailImproperlyInstalled, match=r"bulk_email\[redis\]"):
        progress.notes_for(batch=None, token="t", redis_url="redis://nowhere.invalid:1/0")


@pytest.mark.redis
def test_two_sites_sharing_one_redis_database_have_a_bucket_each(settings, redis_url):
    """At one message a second, a shared bucket would make the second site wait a second."""
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_SEND_RATE": 1, "REDIS_URL": redis_url}
    waits = []
    for site in ("lms-a", "lms-b"):
        prefix = f"{site}-{time.time_ns()}:"
        settings.BULK_EMAIL = {**settings.BULK_EMAIL, "REDIS_KEY_PREFIX": prefix}
        limiter = sending.get_rate_limiter()
        assert limiter.key == f"{prefix}send_rate"
        waits.append(limiter.reserve())
    assert waits == [0.0, 0.0]
