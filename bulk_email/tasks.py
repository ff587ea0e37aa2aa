"""Celery tasks: a few lines each, loading by id and calling the pipeline's services.

The retry policy lives here: transient SMTP trouble retries a batch with exponential backoff
and full jitter up to ``MAX_RETRIES``, after which its unreached recipients are failed; a
batch another worker is still sending is looked at again after a lease."""

import logging
import random

from celery import Task, shared_task
from celery.signals import worker_process_shutdown

from . import api, app_settings, pipeline, sending
from .exceptions import BulkEmailError, SMTPConfigurationError, TransientSendError
from .feedback import poll as feedback_poll

logger = logging.getLogger(__name__)


class BulkEmailTask(Task):
    """Every bulk_email task names its queue: a caller that does not (celery beat calling
    ``dispatch``) would otherwise put it on the host's default queue, often celery's own
    "celery", which no worker started as the docs say reads: scheduled sends would never go."""

    def apply_async(self, args=None, kwargs=None, **options):
        # Read on every call, not celery's per-process cached task options: the setting
        # may change (tests, a reloaded configuration) and an explicit queue still wins.
        if not options.get("queue"):
            options["queue"] = app_settings.get("QUEUE")
        return super().apply_async(args, kwargs, **options)


TASK_OPTIONS = {"base": BulkEmailTask, "acks_late": True, "ignore_result": True}


def enqueue(task, job: pipeline.Job, **options) -> None:
    task.apply_async((job.id,), queue=job.queue, **options)


@shared_task(**TASK_OPTIONS)
def fan_out(task_id: int) -> None:
    for job in pipeline.fan_out(task_id=task_id):
        enqueue(send_batch, job)


@shared_task(bind=True, max_retries=None, **TASK_OPTIONS)
def send_batch(self, batch_id: int) -> None:
    try:
        busy = pipeline.send_batch(batch_id=batch_id) == pipeline.BUSY
    except SMTPConfigurationError:
        return  # the task is marked Failure with the reason; nothing to retry
    except TransientSendError as error:
        retry_or_give_up(self, batch_id, error)
        return
    if busy:
        raise self.retry(countdown=app_settings.get("BATCH_LEASE_SECONDS"))


def retry_or_give_up(task, batch_id: int, error: TransientSendError) -> None:
    """Retry while the batch makes progress between failures; give up after MAX_RETRIES
    failures in a row that reached no one."""
    if error.stalls > app_settings.get("MAX_RETRIES"):
        pipeline.give_up_batch(batch_id=batch_id, reason=f"Gave up after retries: {error}")
        return
    raise task.retry(countdown=backoff_seconds(error.stalls), exc=error)


def backoff_seconds(stalls: int) -> float:
    """RETRY_DELAY doubled per stall, capped at RETRY_MAX_DELAY, with jitter so that workers
    throttled together do not come back together."""
    ceiling = min(app_settings.get("RETRY_DELAY") * 2**stalls, app_settings.get("RETRY_MAX_DELAY"))
    return random.uniform(ceiling / 2, ceiling)


@shared_task(**TASK_OPTIONS)
def dispatch() -> None:
    """Run by celery beat every few seconds: due scheduled sends and recovery of lost work."""
    round_ = pipeline.dispatch()
    for job in round_.fan_outs:
        enqueue(fan_out, job)
    for job in round_.batches:
        enqueue(send_batch, job)
    api.audience.keep_warm(schedule=schedule_recount)


@shared_task(**TASK_OPTIONS)
def purge_sends() -> None:
    """Run by celery beat (daily): retention of finished sends when RETENTION_DAYS is set."""
    days = app_settings.get("RETENTION_DAYS")
    if days is not None:
        api.purge_sends(older_than_days=days)


@worker_process_shutdown.connect
def quit_smtp_session(**kwargs) -> None:
    """A worker process's SMTP session is kept across batches: say QUIT when the process
    ends rather than leave the server to time the connection out."""
    sending.close_session()


@shared_task(**TASK_OPTIONS)
def poll_feedback(limit: int | None = None) -> dict:
    """Beat's way to run `manage.py poll_feedback` (docs/feedback.md); a run that overlaps
    another does nothing. The outcome counts, for the worker's log; a mailbox that cannot be
    read is one error line there (beat tries again at its next tick)."""
    try:
        report = feedback_poll.poll_feedback(limit=limit)
    except BulkEmailError as error:
        logger.error("poll_feedback: %s", error)
        return {"error": error.code}
    return {"busy": report.busy, **report.outcomes}


# --- The Email tab's counts (api/audience.py): on the small-send queue, never behind a large send


@shared_task(**TASK_OPTIONS)
def count_audience(course_id: str, generation: str, sender_id: int | None = None) -> None:
    api.audience.count_histogram(course_id=course_id, generation=generation, sender_id=sender_id)


@shared_task(**TASK_OPTIONS)
def break_down_group(course_id: str, generation: str, sender_id: int | None, key: str) -> None:
    api.audience.count_breakdown(
        course_id=course_id, generation=generation, sender_id=sender_id, key=key
    )


@shared_task(**TASK_OPTIONS)
def recount_audience(course_id: str) -> None:
    api.audience.recount(course_id=course_id)


# A recount asked for after a change waits this long: the changes of one request or one
# import (each replaces the generation) are then all counted by one recount.
RECOUNT_DELAY_SECONDS = 0.5


def schedule_recount(course_id: str, delay: float = 0.0) -> None:
    recount_audience.apply_async((course_id,), countdown=RECOUNT_DELAY_SECONDS + delay)


def recount_after_change(course_id: str | None) -> None:
    """audience.after_bump's listener (apps.ready): the courses in use recounted at once."""
    api.audience.recount_after_change(course_id=course_id, schedule=schedule_recount)


def schedule_count(course_id: str, generation: str, sender_id: int | None) -> None:
    count_audience.apply_async((course_id, generation, sender_id))


def schedule_breakdown(course_id: str, generation: str, sender_id: int | None, key: str) -> None:
    break_down_group.apply_async((course_id, generation, sender_id, key))
