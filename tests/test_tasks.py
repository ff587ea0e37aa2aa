"""The retry policy of the celery tasks (the tasks themselves run in the integration tests)."""

import pytest
import redis
from django.test import override_settings

from bulk_email import tasks
from bulk_email.tasks import backoff_seconds
from lms_stub.celery import app


@override_settings(BULK_EMAIL={"RETRY_DELAY": 5})
@pytest.mark.parametrize(("stalls", "low", "high"), [(0, 2.5, 5), (1, 5, 10), (3, 20, 40)])
def test_backoff_doubles_per_stall_with_jitter(stalls, low, high):
    delays = {backoff_seconds(stalls) for _ in range(50)}
    assert all(low <= d <= high for d in delays) and len(delays) > 1


@override_settings(BULK_EMAIL={"RETRY_DELAY": 5})
def test_backoff_is_capped_at_ten_minutes():
    assert 300 <= backoff_seconds(30) <= 600


def test_backoff_cap_is_a_setting(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "RETRY_MAX_DELAY": 4}
    assert {2 <= backoff_seconds(stalls) <= 4 for stalls in (5, 20, 60)} == {True}


QUEUES = ("celery", "default", "bulk_mail")


def published_queues(url: str) -> dict[str, int]:
    """Publish dispatch as beat does (no queue) through a real Redis broker; count the
    messages each queue's list got."""
    client = redis.Redis.from_url(url)
    client.delete(*QUEUES)
    with app.connection_for_write(url) as connection:
        tasks.dispatch.apply_async(producer=app.amqp.Producer(connection))
    lengths = {queue: client.llen(queue) for queue in QUEUES}
    client.delete(*QUEUES)
    return {queue: length for queue, length in lengths.items() if length}


@pytest.mark.redis
def test_beats_dispatch_goes_to_the_bulk_email_queue_not_celerys_default(settings, redis_url):
    """celery beat calls dispatch with no queue; the host's default queue ("celery" unless it
    sets one) has no worker started as the docs say, so the task names its own."""
    settings.CELERY_TASK_DEFAULT_QUEUE = "celery"
    assert published_queues(redis_url) == {"default": 1}
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "QUEUE": "bulk_mail"}
    assert published_queues(redis_url) == {"bulk_mail": 1}
