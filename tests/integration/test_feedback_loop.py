"""The whole loop of "hear what comes back", on real parts only: celery workers (Redis,
PostgreSQL) send a course's email through a private Postfix with FEEDBACK_DOMAIN set; Postfix
bounces the learner whose address does not exist to the message's VERP address, into the
Maildir a private Dovecot serves; ``manage.py poll_feedback`` reads it over IMAP (TLS) and
suppresses the address; the send's bounced count shows it; the next send to the same group
leaves that learner out. A learner's mail to the List-Unsubscribe mailto of the message they
received, through the same Postfix, opts them out of exactly that course."""

import json
import re
import smtplib
import time
import uuid
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import call_command

from bulk_email import tasks
from bulk_email.models import EmailTask, FeedbackEvent, Optout, RecipientOutcome, Suppression
from bulk_email.pipeline import fan_out
from bulk_email.tokens import BOUNCE, feedback_address
from lms_stub.models import CourseAccessRole
from tests.conftest import start_dovecot
from tests.factories import enroll, give_role, make_sending_course, make_task, make_user
from tests.live_pipeline import send_now
from tests.postfix import FEEDBACK_DOMAIN, LEARNER_DOMAIN, LOCAL_DOMAIN

pytestmark = pytest.mark.integration

GONE = f"gone@{LOCAL_DOMAIN}"  # no such user: Postfix bounces it, 5.1.1


@dataclass
class Loop:
    pipeline: object
    postfix: object
    dovecot: object

    def start_worker(self, **env):
        """A worker (with beat) sending through the Postfix under the feedback domain."""
        env = {"EMAIL_PORT": str(self.postfix.port),
               "BULK_EMAIL_FEEDBACK_DOMAIN": FEEDBACK_DOMAIN, **env}  # fmt: skip
        return self.pipeline.start_worker(**env)


@pytest.fixture
def loop(live_pipeline, postfix, settings):
    """The Postfix; a Dovecot serving the Maildir Postfix delivers the feedback domain's mail
    to; bulk_email here polling it over IMAPS. Each test starts its worker."""
    dovecot = start_dovecot(maildir=postfix.maildir)
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL, "FEEDBACK_DOMAIN": FEEDBACK_DOMAIN,
        "FEEDBACK_IMAP": dovecot.settings(), "FEEDBACK_MAILDIR": None,
    }  # fmt: skip
    yield Loop(live_pipeline, postfix, dovecot)
    live_pipeline.stop_all()  # before Dovecot: a worker's beat may be polling it
    dovecot.stop()
    dovecot.remove()


def audience(*, with_gone: bool = True):
    """A course with three learners who exist, one whose address does not (unless not
    ``with_gone``), and a second course the first learner also takes."""
    course = make_sending_course()
    instructor = make_user("prof")
    give_role(instructor, course, CourseAccessRole.INSTRUCTOR)
    # Addresses of this test only: the session's Postfix keeps earlier tests' deliveries.
    run = uuid.uuid4().hex[:8]
    learners = [make_user(f"l{n}", email=f"l{n}-{run}@{LEARNER_DOMAIN}") for n in range(3)]
    gone = make_user("gone", email=GONE) if with_gone else None
    for person in [*learners, gone] if with_gone else learners:
        enroll(person, course)
    other_course = make_sending_course(display_name="Another course")
    enroll(learners[0], other_course)
    return course, instructor, learners, gone, other_course


def poll() -> str:
    out = StringIO()
    call_command("poll_feedback", stdout=out)
    return out.getvalue()


def delivered_to(postfix, address: str, count: int, timeout: float = 20) -> list:
    """The learner's messages in the learners' Maildir, once there are ``count`` of them;
    fails when there are fewer in time or more."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            m for m in postfix.messages(postfix.learner_maildir) if m["Delivered-To"] == address
        ]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, f"{address}: {len(found)} message(s), not {count}"
            return found
        time.sleep(0.1)


def unsubscribe_mailto(message) -> str:
    """The mailto address of a received message's List-Unsubscribe header."""
    [address] = re.findall(r"<mailto:([^>?]+)", str(message["List-Unsubscribe"]))
    return address


def mail_from_learner(postfix, *, sender: str, to: str) -> None:
    text = f"From: {sender}\r\nTo: {to}\r\nSubject: unsubscribe\r\n\r\nPlease stop.\r\n"
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as session:
        assert session.sendmail(sender, [to], text.encode()) == {}


def wait_for_poll(postfix, address: str) -> str:
    postfix.wait_for_messages(address, timeout=20)
    return poll()


def wait_for_row(queryset, pipeline, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not queryset.exists():
        assert time.monotonic() < deadline, f"no {queryset.model.__name__} row:\n{pipeline.logs()}"
        time.sleep(0.2)
    return queryset.get()


def test_a_bounce_suppresses_its_learner_and_the_next_send_leaves_them_out(loop):
    pipeline, postfix = loop.pipeline, loop.postfix
    loop.start_worker()
    course, instructor, learners, gone, _ = audience()

    first = send_now(course.id, instructor, ["learners"])
    first = pipeline.wait_for_state(first, EmailTask.SUCCESS, timeout=90)
    assert (first.total, first.counts().sent, first.counts().failed) == (4, 4, 0)

    # Postfix accepted all four, then bounced the one that does not exist to its VERP address.
    output = wait_for_poll(postfix, feedback_address(BOUNCE, gone.pk, first.pk, FEEDBACK_DOMAIN))
    assert "suppressed: 1" in output, output
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.status_code) == (
        GONE, Suppression.HARD_BOUNCE, "5.1.1"
    )  # fmt: skip
    assert suppression.user_id == gone.pk
    first.refresh_from_db()
    assert (first.bounced, first.complained) == (1, 0)
    event = FeedbackEvent.objects.get(kind=FeedbackEvent.HARD_BOUNCE)
    assert (event.task_id, event.source) == (first.pk, "imap")

    second = send_now(course.id, instructor, ["learners"])
    second = pipeline.wait_for_state(second, EmailTask.SUCCESS, timeout=90)
    # The suppressed learner left out, and shown: "skipped: suppressed" on the next send.
    assert (second.total, second.counts().sent, second.suppressed) == (3, 3, 1)
    for learner in learners:
        delivered_to(postfix, learner.email, 2)


def test_a_bounce_read_while_the_next_send_is_under_way_makes_it_skip_the_learner(loop):
    """The next send was resolved (fanned out) before the bounce was read: its batch skips
    the learner at send time and counts them as skipped, because suppressed."""
    pipeline, postfix = loop.pipeline, loop.postfix
    loop.start_worker()
    course, instructor, learners, gone, _ = audience()
    first = send_now(course.id, instructor, ["learners"])
    first = pipeline.wait_for_state(first, EmailTask.SUCCESS, timeout=90)
    postfix.wait_for_messages(feedback_address(BOUNCE, gone.pk, first.pk, FEEDBACK_DOMAIN))

    second = make_task(course, instructor)
    jobs = list(fan_out(task_id=second.pk))  # resolved now, with the learner in it
    assert "suppressed: 1" in poll()
    for job in jobs:
        tasks.enqueue(tasks.send_batch, job)
    second = pipeline.wait_for_state(second, EmailTask.SUCCESS, timeout=90)

    counts = second.counts()
    assert (counts.total, counts.sent, counts.failed, counts.skipped) == (4, 3, 0, 1)
    skipped = RecipientOutcome.objects.get(task=second)
    assert (skipped.user_id, skipped.status) == (gone.pk, RecipientOutcome.SKIPPED)
    assert skipped.detail == "The address is suppressed (hard bounce)."
    for learner in learners:
        delivered_to(postfix, learner.email, 2)


def test_a_mail_to_the_mailto_opts_out_of_exactly_that_course(loop):
    """Here the worker's beat polls the mailbox (every second), as a site without cron would."""
    pipeline, postfix = loop.pipeline, loop.postfix
    loop.start_worker(
        BULK_EMAIL_FEEDBACK_POLL_SECONDS="1",
        BULK_EMAIL_FEEDBACK_IMAP=json.dumps(loop.dovecot.settings()),
    )
    course, instructor, learners, _, other_course = audience(with_gone=False)
    ann = learners[0]

    task = send_now(course.id, instructor, ["learners"])
    pipeline.wait_for_state(task, EmailTask.SUCCESS, timeout=90)
    [received] = delivered_to(postfix, ann.email, 1)
    mailto = unsubscribe_mailto(received)
    assert mailto.startswith("unsubscribe+") and mailto.endswith(f"@{FEEDBACK_DOMAIN}")

    mail_from_learner(postfix, sender=ann.email, to=mailto)
    event = wait_for_row(FeedbackEvent.objects.filter(kind=FeedbackEvent.UNSUBSCRIBE), pipeline)

    assert (event.user_id, event.task_id, event.source) == (ann.pk, task.pk, "imap")
    assert list(Optout.objects.values_list("user", "course_id", "how")) == [
        (ann.pk, course.id, Optout.MAILTO)
    ]
    assert not Optout.objects.filter(course_id=other_course.id).exists()
    assert not Suppression.objects.filter(address=ann.email).exists()
    again = send_now(course.id, instructor, ["learners"])
    again = pipeline.wait_for_state(again, EmailTask.SUCCESS, timeout=90)
    assert again.total == 2  # ann left out of that course's next send
    delivered_to(postfix, learners[1].email, 2)
    delivered_to(postfix, ann.email, 1)
