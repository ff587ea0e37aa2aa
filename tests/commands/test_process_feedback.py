"""manage.py process_feedback, as a Postfix pipe transport runs it: one message on stdin,
one line out, exit 0 whatever the message, 75 when the database is unreachable."""

import io
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import connection

from bulk_email import sending
from bulk_email.models import FeedbackEvent, Suppression
from bulk_email.pipeline.steps import BatchSender
from bulk_email.rendering import Recipient
from bulk_email.tokens import BOUNCE, feedback_address
from tests.factories import make_course, make_task, make_user
from tests.feedback.mail import FEEDBACK_DOMAIN, dsn
from tests.messages import EmailData, prepare
from tests.processes import ROOT, development_env

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def feedback_domain(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": FEEDBACK_DOMAIN}


def run(raw: bytes, *args) -> tuple[str, io.BytesIO]:
    out, stream = io.StringIO(), io.BytesIO(raw)
    call_command("process_feedback", *args, stdin=stream, stdout=out)
    return out.getvalue(), stream


def run_process(
    raw: bytes, *, database_url: str, domain: str = FEEDBACK_DOMAIN, args=()
) -> subprocess.CompletedProcess:
    """``manage.py process_feedback`` in its own process, the message on its stdin."""
    env = {**os.environ, **development_env(), "DATABASE_URL": database_url}
    env["BULK_EMAIL_FEEDBACK_DOMAIN"] = domain
    command = [sys.executable, "manage.py", "process_feedback", *args]
    return subprocess.run(command, cwd=ROOT, env=env, input=raw, capture_output=True,
                          timeout=60)  # fmt: skip


def test_a_bounce_on_stdin_suppresses_and_prints_one_line():
    ann = make_user("ann", email="ann@example.com")
    task = make_task(make_course(), make_user("prof"))
    verp = feedback_address(BOUNCE, ann.pk, task.pk, FEEDBACK_DOMAIN)
    output, _ = run(dsn(to=verp, recipient=ann.email))
    assert output.count("\n") == 1
    assert output.startswith(f"suppressed: hard_bounce user={ann.pk} task={task.pk}")
    assert Suppression.objects.get().address == "ann@example.com"
    assert FeedbackEvent.objects.get().source == "stdin"


def test_the_envelope_recipient_argument_attributes_a_message():
    """A pipe with ${original_recipient} in argv: the token need not be in any header."""
    ann = make_user("ann", email="ann@example.com")
    task = make_task(make_course(), make_user("prof"))
    verp = feedback_address(BOUNCE, ann.pk, task.pk, FEEDBACK_DOMAIN)
    message = dsn(to="bounces@feedback.example.com", recipient=ann.email)
    output, _ = run(message, "--recipient", verp, "--source", "postfix")
    assert output.startswith("suppressed:")
    assert FeedbackEvent.objects.get().source == "postfix"


def test_garbage_on_stdin_is_counted_as_ignored():
    output, _ = run(b"\x00\xff not a message at all")
    assert output.startswith("ignored:")
    assert FeedbackEvent.objects.get().kind == "ignored"
    assert not Suppression.objects.exists()


def test_an_oversized_message_is_read_to_its_end_and_refused(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_FEEDBACK_MESSAGE_BYTES": 1000}
    raw = b"Subject: big\n\n" + b"x" * 5_000_000
    output, stream = run(raw)
    assert "refused unread" in output
    assert stream.tell() == len(raw)  # all taken: the MTA's write into the pipe succeeds


def test_an_unreachable_database_exits_75_so_the_mta_retries():
    result = run_process(dsn(to="bounces+a-b-c@feedback.example.com", recipient="a@b.example"),
                         database_url="postgres://postgres@127.0.0.1:1/nothing")  # fmt: skip
    assert result.returncode == 75, result.stderr
    assert b"database unreachable" in result.stderr
    assert b"Traceback" not in result.stderr


@pytest.fixture
def shared_database(transactional_db):
    """The URL of this test's database, for a process of its own (PostgreSQL pass)."""
    from tests.live_pipeline import database_url

    if connection.vendor != "postgresql":
        pytest.skip("a second process shares the database: this runs in the PostgreSQL pass")
    return database_url()


@pytest.mark.integration
def test_a_broken_message_in_a_process_of_its_own_exits_0(shared_database):
    result = run_process(b"Content-Type: multipart/report; boundary=\n\n--\x00",
                         database_url=shared_database)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"ignored:")
    assert FeedbackEvent.objects.get().kind == "ignored"


@pytest.mark.integration
def test_a_real_postfix_dsn_piped_into_the_command_suppresses_the_address(
    shared_database, postfix, settings
):
    """Send through a real Postfix to an address it does not know; its DSN comes back to
    the VERP address; piped into the command as the pipe transport would, it suppresses."""
    from tests.postfix import LOCAL_DOMAIN

    settings.EMAIL_BACKEND = sending.DJANGO_SMTP_BACKEND
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", postfix.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = False, 10
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": "feedback.test"}
    learner = make_user("gone", email=f"gone-{os.getpid()}@{LOCAL_DOMAIN}")
    task = make_task(make_course(), make_user("prof"))
    try:
        BatchSender(prepare(EmailData(pk=task.email_id)), task_id=task.pk).send(
            [Recipient(learner.pk, learner.email, "Gone")]
        )
    finally:
        sending.close_session()
    verp = feedback_address(BOUNCE, learner.pk, task.pk, "feedback.test")
    postfix.wait_for_messages(verp, timeout=15)
    raw = next(
        path.read_bytes()
        for path in (postfix.maildir / "new").iterdir()
        if f"Delivered-To: {verp}".encode() in path.read_bytes()
    )

    result = run_process(raw, database_url=shared_database, domain="feedback.test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"suppressed: hard_bounce"), result.stdout
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.status_code) == (learner.email.lower(), "5.1.1")
    assert suppression.user_id == learner.pk
    assert FeedbackEvent.objects.get().task_id == task.pk
