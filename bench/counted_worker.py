"""The benchmark's celery app: lms_stub's, with the SQL statements and the wall time of every
task counted per task name in Redis, so that bench_pipeline.py reports the SQL per batch and
the fan-out's time of the real run (not of a batch replayed in the bench's own process).

    celery -A counted_worker worker ...   (bench/ on PYTHONPATH; BENCH_COUNTS_URL a Redis URL)

Counting costs one list append per statement and one Redis call per task."""

import os
import time

from celery import signals

from lms_stub.celery import app

__all__ = ["app"]

COUNTS_KEY = "bench:task-counts"
_statements = [0]
_started = [0.0]


def count_statement(execute, sql, params, many, context):
    _statements[0] += 1
    return execute(sql, params, many, context)


@signals.task_prerun.connect
def start_counting(**kwargs) -> None:
    from django.db import connection

    if count_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(count_statement)
    _statements[0], _started[0] = 0, time.perf_counter()


@signals.task_postrun.connect
def add_counts(task=None, **kwargs) -> None:
    import redis

    seconds = time.perf_counter() - _started[0]
    client = redis.Redis.from_url(os.environ["BENCH_COUNTS_URL"])
    name = task.name.rsplit(".", 1)[-1]
    with client.pipeline(transaction=False) as pipe:
        pipe.hincrby(COUNTS_KEY, f"{name}:tasks", 1)
        pipe.hincrby(COUNTS_KEY, f"{name}:statements", _statements[0])
        pipe.hincrbyfloat(COUNTS_KEY, f"{name}:seconds", seconds)
        pipe.execute()
