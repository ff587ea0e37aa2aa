"""What learners in several languages cost a send: one preparation per language, not per
recipient (a script, not a test).

    python bench/bench_languages.py [--learners 3000] [--database-url URL]

Seeds a course (PostgreSQL given by --database-url or DATABASE_URL; without either a SQLite
file under bench/.cache/), gives its learners en, fr and ar by thirds on their profiles,
then sends the course's email to them in this process through the worker's own code (fan
out, then ``pipeline.send_batch`` for every batch) into a local SMTP sink, and prints:

- the preparations that send made, by language (``rendering.preparations``);
- what one preparation costs in each language (median of 15, the cache cleared each time);
- the whole send's messages/s beside the same send with everyone in English.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import django_env, free_port, manage, start_sink  # noqa: E402

COURSE = "course-v1:LangBench+L{size}+2026"
LANGUAGES = ["en", "fr", "ar"]
BODY = "<h1>Week news</h1>" + "<p>This week: <strong>waves</strong> and oscillations.</p>" * 20


def setup_django(database_url: str) -> None:
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # no line per preparation in the figures
    os.environ.update(django_env(database_url))
    os.environ["DJANGO_SETTINGS_MODULE"] = "lms_stub.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(database_url: str, learners: int) -> str:
    course_id = COURSE.format(size=learners)
    manage(database_url, "migrate", "--no-input", "-v", "0")
    manage(database_url, "seed_course", "--course-id", course_id, "--learners", str(learners))
    return course_id


def give_languages(course_id: str, languages: list[str]) -> None:
    """The course's enrolled learners' profiles: languages[0], [1], ... in turn."""
    from lms_stub.models import CourseEnrollment, UserProfile

    ids = CourseEnrollment.objects.filter(course_id=course_id).values_list("user_id", flat=True)
    for position, language in enumerate(languages):
        share = [uid for n, uid in enumerate(sorted(ids)) if n % len(languages) == position]
        UserProfile.objects.filter(user_id__in=share).update(language=language)


def send(course_id: str, port: int) -> tuple[float, int, dict]:
    """The course's email sent to its learners in this process: seconds, messages,
    preparations made by language."""
    from django.contrib.auth import get_user_model
    from django.test.utils import override_settings

    from bulk_email import pipeline, rendering, sending
    from bulk_email.models import Batch, BulkEmailFlag, EmailTask
    from lms_stub.seeding import course_slug
    from tests.factories import make_email

    flag = BulkEmailFlag.current()
    flag.enabled, flag.require_course_email_auth = True, False
    flag.save()
    sender = get_user_model().objects.get(username=f"{course_slug(course_id)}_instructor")
    email = make_email(course_id, sender=sender, targets=["learners"], html_message=BODY)
    task = EmailTask.objects.create(email=email, requester=sender, state=EmailTask.PENDING)
    rendering.clear_prepared_cache()
    before = rendering.preparations.copy()
    smtp = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port}
    started = time.perf_counter()
    with override_settings(EMAIL_BACKEND=sending.DJANGO_SMTP_BACKEND, **smtp):
        for job in pipeline.fan_out(task_id=task.pk):
            pipeline.send_batch(batch_id=job.id)
        sending.close_session()
    seconds = time.perf_counter() - started
    sent = sum(Batch.objects.filter(task=task).values_list("sent", flat=True))
    return seconds, sent, dict(rendering.preparations - before), email


def preparation_ms(email, language: str) -> float:
    from bulk_email import rendering

    def once() -> float:
        rendering.clear_prepared_cache()
        started = time.perf_counter()
        rendering.get_prepared_message(email, language)
        return (time.perf_counter() - started) * 1000

    once()  # warm the template and catalog caches
    return statistics.median(once() for _ in range(15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=3000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    (ROOT / "bench" / ".cache").mkdir(parents=True, exist_ok=True)
    database_url = args.database_url or f"sqlite:///{ROOT}/bench/.cache/bench_languages.sqlite3"
    setup_django(database_url)
    course_id = seed(database_url, args.learners)
    port = free_port()
    sink, sink_name = start_sink(port)
    try:
        give_languages(course_id, LANGUAGES)
        seconds, sent, made, email = send(course_id, port)
        costs = {language: preparation_ms(email, language) for language in LANGUAGES}
        give_languages(course_id, ["en"])
        one_seconds, one_sent, one_made, _ = send(course_id, port)
    finally:
        sink.terminate()
    print(f"sink: {sink_name}; database: {database_url.split('@')[-1]}")
    print(f"learners in en, fr, ar: {sent} messages in {seconds:.2f} s "
          f"({sent / seconds:,.0f} msg/s); preparations {made}")  # fmt: skip
    print(f"everyone in en:         {one_sent} messages in {one_seconds:.2f} s "
          f"({one_sent / one_seconds:,.0f} msg/s); preparations {one_made}")  # fmt: skip
    for language, ms in costs.items():
        print(f"one preparation in {language}: {ms:7.2f} ms (median of 15)")


if __name__ == "__main__":
    main()
