"""cProfile of one batch sent in this process, as a worker sends it: claim, recipients,
render, SMTP (pipelined) into Postfix's smtp-sink, the progress notes in Redis, checkpoints.

    python bench/profile_batch.py --database-url postgres://.../bulk_email_bench \
        --learners 1000000 [--redis-url redis://127.0.0.1:6379/13] [--top 25]

The course is bench_pipeline.py's (seeded by it: ``make bench`` first). Prints the wall time
and CPU of the batch, then the functions by their own time and by their cumulative time."""

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_pipeline
from common import free_port, start_sink


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=bench_pipeline.DEFAULT_URL)
    parser.add_argument("--redis-url", default=bench_pipeline.REDIS_URL)
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    bench_pipeline.REDIS_URL = args.redis_url
    bench_pipeline.setup_django(args.database_url)
    from django.conf import settings
    from django.test.utils import override_settings

    from bulk_email import pipeline, sending
    from bulk_email.models import EmailTask
    from tests.factories import make_email

    course_id = bench_pipeline.COURSE.format(size=args.learners)
    sender = bench_pipeline.sender_for(course_id)
    subject, body = bench_pipeline.SUBJECT, bench_pipeline.BODY
    email = make_email(course_id, sender=sender, targets=["learners"], subject=subject,
                       html_message=body)  # fmt: skip
    task = EmailTask.objects.create(email=email, requester=sender, state=EmailTask.PENDING)
    jobs = pipeline.fan_out(task_id=task.pk)
    first, second = next(jobs), next(jobs)  # the second batch: not the task's first
    jobs.close()
    port = free_port()
    sink, _ = start_sink(port)
    smtp = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port,
            "BULK_EMAIL": {**settings.BULK_EMAIL, "REDIS_URL": args.redis_url}}  # fmt: skip
    try:
        with override_settings(EMAIL_BACKEND=sending.DJANGO_SMTP_BACKEND, **smtp):
            pipeline.send_batch(batch_id=first.id)  # warm: connections, the prepared message
            profile = cProfile.Profile()
            wall, cpu = time.perf_counter(), time.process_time()
            profile.runcall(pipeline.send_batch, batch_id=second.id)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            sending.close_session()
    finally:
        sink.terminate()
        EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.REVOKED)
    print(f"one batch of 500: {wall:.3f} s wall, {cpu:.3f} s CPU (profiled)")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main(sys.argv[1:])
