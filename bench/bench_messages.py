"""Micro-benchmark of messages and sending (a script, not a test).

    python bench/bench_messages.py [--recipients 5000] [--messages 3000]

1. Once per email: ``prepare_message`` (sanitize, template, premailer, html2text, encoding).
2. Per recipient: ``render_message(...).as_bytes()`` (fill-in, headers, quoted-printable).
   Goal: per recipient < 5% of once per email.
3. Sending over one connection into a local sink: the worker's per-recipient steps
   (``BatchSender``: render, rate-limit, deliver, record) against a bare smtplib loop sending
   pre-built bytes to the same sink. Goal: >= 50% of the bare loop's rate.

The sink is Postfix's ``smtp-sink`` (fast enough not to hide differences), fetched once from
the Debian archive into ``bench/.cache/`` with ``apt-get download``; without it the script
falls back to the aiosmtpd sink in tests/ and says so.
"""

import argparse
import json
import os
import smtplib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_stub.settings")
os.environ.setdefault("BULK_EMAIL_ENV", "development")  # a local run: the key under var/

import django  # noqa: E402

django.setup()

from django.test.utils import override_settings  # noqa: E402

from bulk_email import sending  # noqa: E402
from bulk_email.pipeline.steps import BatchSender  # noqa: E402
from bulk_email.rendering import EmailTemplate, Recipient, render_message  # noqa: E402
from tests.messages import EmailData, prepare  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from common import free_port, start_sink  # noqa: E402

# A realistic announcement: headings, a table, inline styles, links, an image.
BODY = (
    "<h1>Week %%USER_ID%%: %%COURSE_DISPLAY_NAME%%</h1>"
    "<p>Dear %%USER_FULLNAME%%,</p>"
    + "<p>This week we study <strong>waves</strong> and <em>oscillations</em>. "
    '<a href="https://lms.example.com/courses/x/wiki">Read the wiki</a>.</p>'
    * 12
    + '<table width="100%" cellpadding="4" border="1">'
    + "".join(
        f'<tr><td style="padding:4px">Lecture {n}</td><td>Chapter {n}</td></tr>' for n in range(20)
    )
    + '</table><p><img src="https://lms.example.com/static/banner.png" alt="banner"></p>'
    "<p>The course ends on %%COURSE_END_DATE%%.</p>"
)


def microseconds(action, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - started) / repeat * 1e6


def openedx_template() -> EmailTemplate:
    """The Open edX-style template of the tests: every placeholder, {name} and {email} too."""
    export = json.loads((ROOT / "tests/fixtures/openedx_course_email_templates.json").read_text())
    fields = export[0]["fields"]
    return EmailTemplate(fields["html_template"], fields["plain_template"], True)


def bench_rendering(recipients: int, template: EmailTemplate | None = None) -> tuple[float, float]:
    email = EmailData(subject="Week news for %%USER_FULLNAME%%", html_message=BODY)
    prepare(email, template=template)  # warm imports and template caches
    runs = (microseconds(lambda: prepare(email, template=template), 1) for _ in range(15))
    once = statistics.median(runs)
    prepared = prepare(email, template=template)
    people = [Recipient(n, f"learner{n}@example.com", f"Learnér {n}") for n in range(recipients)]
    per = microseconds(lambda: [render_message(prepared, p).as_bytes() for p in people], 1)
    return once, per / recipients


def bare_loop_rate(port: int, payload: bytes, count: int) -> float:
    connection = smtplib.SMTP("127.0.0.1", port)
    started = time.perf_counter()
    for n in range(count):
        connection.sendmail("no-reply@lms.example.com", [f"learner{n}@example.com"], payload)
    elapsed = time.perf_counter() - started
    connection.quit()
    return count / elapsed


def send_batch_rate(port: int, prepared, count: int) -> float:
    people = [Recipient(n, f"learner{n}@example.com", f"Learnér {n}") for n in range(count)]
    smtp = {"EMAIL_BACKEND": sending.DJANGO_SMTP_BACKEND, "EMAIL_HOST": "127.0.0.1"}
    bulk = {"MAX_MESSAGES_PER_CONNECTION": count + 1, "MAX_SEND_RATE": None}
    with override_settings(**smtp, EMAIL_PORT=port, BULK_EMAIL=bulk):
        started = time.perf_counter()
        outcomes = BatchSender(prepared).send(people)
        elapsed = time.perf_counter() - started
        sending.close_session()
    assert all(o.status is sending.OutcomeKind.SENT for o in outcomes)
    return count / elapsed


def bench_sending(count: int) -> tuple[str, float, float]:
    port = free_port()
    process, sink_name = start_sink(port)
    try:
        prepared = prepare(EmailData(html_message=BODY))
        payload = render_message(prepared, Recipient(1, "learner@example.com", "L")).as_bytes()
        bare_loop_rate(port, payload, 200)  # warm-up
        bare = bare_loop_rate(port, payload, count)
        ours = send_batch_rate(port, prepared, count)
    finally:
        process.terminate()
        process.wait()
    return sink_name, bare, ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    once, per = bench_rendering(args.recipients)
    print(f"once per email (prepare_message):   {once / 1000:9.2f} ms")
    print(f"per recipient (render + bytes):      {per:9.1f} us")
    print(f"per recipient / once per email:      {per / once * 100:9.3f} %   (goal < 5 %)")
    once, per = bench_rendering(args.recipients, openedx_template())
    print(f"Open edX template, once per email:   {once / 1000:9.2f} ms")
    print(f"Open edX template, per recipient:    {per:9.1f} us")
    sink_name, bare, ours = bench_sending(args.messages)
    print(f"sink: {sink_name}")
    print(f"bare smtplib loop, pre-built bytes:  {bare:9.0f} msg/s")
    print(f"BatchSender (render + send):         {ours:9.0f} msg/s")
    print(f"BatchSender / bare loop:             {ours / bare * 100:9.1f} %   (goal >= 50 %)")


if __name__ == "__main__":
    main()
