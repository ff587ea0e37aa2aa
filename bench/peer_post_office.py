"""The peer, run in its own virtualenv (bench/.venv-peer): django-post-office queues the
messages with ``send_many`` and delivers them with ``send_queued_mail`` to the same sink.
Prints one JSON line: messages, seconds (queue + deliver), rate, and the two parts."""

import argparse
import json
import os
import time

import django
from django.conf import settings

BODY = (
    "<h1>Week news</h1>"
    + "<p>Dear {name}, this week we study <strong>waves</strong> and <em>oscillations</em>. "
    '<a href="https://lms.example.com/courses/x/wiki">Read the wiki</a> and bring your '
    "questions to the forum.</p>" * 14
)


def configure(port: int) -> None:
    url = os.environ["PEER_DATABASE_URL"]
    user_host, name = url.split("://", 1)[1].rsplit("/", 1)
    user, host_port = user_host.split("@")
    host, db_port = host_port.split(":")
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "post_office"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": name,
                "USER": user,
                "HOST": host,
                "PORT": db_port,
            }
        },
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        USE_TZ=True,
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        POST_OFFICE={
            "BATCH_SIZE": 500,
            "MESSAGE_ID_ENABLED": True,
            "LOG_LEVEL": 0,
            "DEFAULT_PRIORITY": "medium",
        },
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


def message_kwargs(n: int) -> dict:
    return {
        "sender": "a@lms.example.com",
        "recipients": [f"learner{n}@example.com"],
        "subject": f"Week news {n}",
        "message": f"Dear Learnér {n}",
        "html_message": BODY.format(name=f"Learnér {n}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    configure(args.port)
    from django.core.management import call_command
    from post_office import mail
    from post_office.models import Email

    call_command("migrate", verbosity=0)
    Email.objects.all().delete()
    kwargs = [
        {
            "sender": "a@lms.example.com",
            "recipients": [f"learner{n}@example.com"],
            "subject": f"Week news {n}",
            "message": f"Dear Learnér {n}",
            "html_message": BODY.format(name=f"Learnér {n}"),
        }
        for n in range(args.count)
    ]
    started = time.perf_counter()
    mail.send_many(kwargs)
    queued = time.perf_counter()
    call_command("send_queued_mail", processes=args.processes, verbosity=0)
    delivered = time.perf_counter()
    sent = Email.objects.filter(status=0).count()  # post_office's STATUS.sent
    total = delivered - started
    timings = {"queue_seconds": queued - started, "deliver_seconds": delivered - queued}
    print(json.dumps({"messages": sent, "seconds": total, "rate": sent / total, **timings}))


if __name__ == "__main__":
    main()
