"""The pipeline's services run in this process against a real SMTP sink: fan-out, batch
claims, per-recipient progress, resume after a crash, skips, failures, the dispatcher.
(tests/integration/test_send_pipeline.py runs the same through real celery workers.)"""

import base64
import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulk_email import pipeline
from bulk_email.exceptions import SMTPConfigurationError, TransientSendError
from bulk_email.models import (
    Batch,
    CourseEmail,
    CourseEmailTemplate,
    DisabledCourse,
    EmailTask,
    RecipientOutcome,
    TaskCounts,
)
from bulk_email.rendering.headers import MAX_DISPLAY_NAME
from bulk_email.tokens import BOUNCE, UNSUBSCRIBE, AddressToken, read_feedback_address
from lms_stub.bulk_email_backend import StubLMSBackend
from lms_stub.models import UserProfile
from lms_stub.smtp_sink import Fault
from tests import factories
from tests.factories import (
    make_task,
    opt_out,
    run_fan_out,
    suppress,
)
from tests.rendering.mail import parse, parts

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_batches(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "EMAILS_PER_TASK": 3, "BATCH_LEASE_SECONDS": 60}


def send_all(batch_ids) -> None:
    for batch_id in batch_ids:
        assert pipeline.send_batch(batch_id=batch_id) is None


def received_addresses(sink) -> list[str]:
    return sorted(address for m in sink.messages for address in m.rcpt_tos)


def test_fan_out_writes_ordered_batches_and_the_send_succeeds(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    task = make_task(course, instructor)
    batch_ids = run_fan_out(task)
    task.refresh_from_db()
    assert (task.state, task.total, task.batches_total, task.fan_out_done) == (
        EmailTask.PROGRESS,
        7,
        3,
        True,
    )
    assert [b.user_ids for b in Batch.objects.filter(task=task)] == [
        [u.pk for u in learners[0:3]],
        [u.pk for u in learners[3:6]],
        [learners[6].pk],
    ]
    send_all(batch_ids)
    task.refresh_from_db()
    assert task.state == EmailTask.SUCCESS and task.finished_at
    assert received_addresses(smtp_sink) == sorted(u.email for u in learners)
    assert task.counts() == TaskCounts(total=7, sent=7, failed=0, skipped=0)


@pytest.fixture
def course_with_25_learners(db):
    return factories.course_with_learners(25)


def test_fan_out_takes_ten_batches_a_page_after_a_first_page_of_one(
    settings, course_with_25_learners
):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "EMAILS_PER_TASK": 1}
    course, instructor, learners = course_with_25_learners
    task = make_task(course, instructor)
    with CaptureQueriesContext(connection) as queries:
        run_fan_out(task)
    batches = list(Batch.objects.filter(task=task).order_by("seq"))
    assert [b.seq for b in batches] == list(range(25))
    assert [b.user_ids for b in batches] == [[u.pk] for u in learners]
    inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "bulk_email_batch"')]
    assert len(inserts) == 4  # pages of 1, 10, 10 and 4 batches: one statement each


def test_an_empty_recipient_set_is_success_with_total_zero(smtp_settings, course_with_learners):
    course, instructor, _ = course_with_learners
    task = make_task(course, instructor, targets=("track:verified",))
    assert run_fan_out(task) == []
    task.refresh_from_db()
    assert (task.state, task.total) == (EmailTask.SUCCESS, 0)


def test_a_send_of_a_course_turned_off_before_it_started_fails_with_the_reason(
    smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, _ = course_with_learners
    task = make_task(course, instructor)
    DisabledCourse.objects.create(course_id=course.id, reason="archived")
    assert run_fan_out(task) == []
    task.refresh_from_db()
    assert (task.state, task.batches_total, smtp_sink.messages) == (EmailTask.FAILURE, 0, [])
    assert task.error == "Not sent. Bulk email is turned off for this course: archived"


def test_a_rerun_fan_out_resumes_and_never_writes_a_batch_twice(
    small_batches, smtp_settings, course_with_learners
):
    course, instructor, learners = course_with_learners
    task = make_task(course, instructor)
    first = pipeline.fan_out(task_id=task.pk)
    next(first)  # a crash after the first batch was written and enqueued
    first.close()
    resumed = run_fan_out(task)
    again = run_fan_out(task)  # a redelivered message after it finished: nothing to do
    assert len(resumed) == 3 and again == []  # the first batch is re-offered, not re-written
    seen = [uid for b in Batch.objects.filter(task=task) for uid in b.user_ids]
    assert seen == [u.pk for u in learners] and Batch.objects.filter(task=task).count() == 3


def test_a_revoke_stops_the_batch_in_hand_and_its_progress_stays(
    small_batches, smtp_settings, smtp_sink, course_with_learners, monkeypatch
):
    monkeypatch.setattr(
        pipeline.recording, "STOP_CHECK_SECONDS", 0.0
    )  # look after every checkpoint
    course, instructor, _ = course_with_learners
    task = make_task(course, instructor)
    claim = pipeline.claim_batch(batch_id=run_fan_out(task)[0])
    EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.REVOKED)  # staff press Revoke
    with pytest.raises(pipeline.TaskStopped):
        pipeline.deliver_batch(claim)
    batch = Batch.objects.get(pk=claim.batch.pk)
    assert (len(smtp_sink.messages), batch.cursor, batch.sent) == (1, 1, 1)  # of 3
    assert pipeline.claim_batch(batch_id=batch.pk) is None  # nobody takes it up again


def test_a_revoked_task_writes_and_sends_nothing_more(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, _ = course_with_learners
    task = make_task(course, instructor)
    batch_ids = run_fan_out(task)
    pipeline.send_batch(batch_id=batch_ids[0])
    EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.REVOKED)
    send_all(batch_ids[1:])
    assert len(smtp_sink.messages) == 3
    assert Batch.objects.filter(task=task, state=Batch.PENDING).count() == 2


def test_a_batch_has_one_owner_at_a_time(small_batches, smtp_settings, course_with_learners):
    course, instructor, _ = course_with_learners
    batch_id = run_fan_out(make_task(course, instructor))[0]
    claim = pipeline.claim_batch(batch_id=batch_id)
    assert isinstance(claim, pipeline.Claim)
    assert pipeline.claim_batch(batch_id=batch_id) == pipeline.BUSY
    Batch.objects.filter(pk=batch_id).update(
        heartbeat=timezone.now() - datetime.timedelta(minutes=5)
    )
    takeover = pipeline.claim_batch(batch_id=batch_id)
    assert isinstance(takeover, pipeline.Claim) and takeover.token != claim.token
    progress = pipeline.BatchProgress(claim, positions={})
    with pytest.raises(pipeline.ClaimLost):  # the old owner's next write is refused
        progress.update(cursor=1)


def test_a_taken_over_batch_resumes_after_the_last_recipient_reached(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    batch_id = run_fan_out(make_task(course, instructor))[0]
    # A worker reached the first recipient, then died.
    Batch.objects.filter(pk=batch_id).update(
        state=Batch.CLAIMED,
        claim_token="dead",
        cursor=1,
        sent=1,
        heartbeat=timezone.now() - datetime.timedelta(minutes=5),
    )
    assert pipeline.send_batch(batch_id=batch_id) is None
    assert received_addresses(smtp_sink) == [learners[1].email, learners[2].email]
    batch = Batch.objects.get(pk=batch_id)
    assert (batch.state, batch.cursor, batch.sent) == (Batch.DONE, 3, 3)


def test_learners_who_opted_out_since_fan_out_are_skipped(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    batch_ids = run_fan_out(make_task(course, instructor))
    opt_out(learners[1], course.id)
    learners[2].is_active = False
    learners[2].save()
    send_all(batch_ids)
    assert learners[1].email not in received_addresses(smtp_sink)
    skipped = RecipientOutcome.objects.filter(status=RecipientOutcome.SKIPPED)
    assert {o.user_id: o.detail for o in skipped} == {
        learners[1].pk: "Opted out of this course's email.",
        learners[2].pk: "The account is no longer active.",
    }
    assert len(smtp_sink.messages) == 5


def test_addresses_suppressed_since_fan_out_are_skipped_with_the_reason(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    task = make_task(course, instructor)
    batch_ids = run_fan_out(task)
    suppress(learners[0].email.upper())  # bounces name addresses in any case
    suppress(learners[4].email, reason="complaint")
    send_all(batch_ids)
    assert received_addresses(smtp_sink) == sorted(
        u.email for u in learners if u not in (learners[0], learners[4])
    )
    skipped = RecipientOutcome.objects.filter(status=RecipientOutcome.SKIPPED)
    assert {o.user_id: o.detail for o in skipped} == {
        learners[0].pk: "The address is suppressed (hard bounce).",
        learners[4].pk: "The address is suppressed (spam complaint).",
    }
    task.refresh_from_db()
    assert task.counts() == TaskCounts(total=7, sent=5, failed=0, skipped=2)


def mailtos(message) -> list[str]:
    header = str(message.parsed()["List-Unsubscribe"] or "")
    return [part for part in header.replace(" ", "").strip("<>").split(">,<") if "mailto:" in part]


def test_without_a_feedback_domain_no_message_carries_a_mailto_or_verp(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, _ = course_with_learners
    send_all(run_fan_out(make_task(course, instructor)))
    assert len(smtp_sink.messages) == 7
    assert not any(b"mailto" in m.data for m in smtp_sink.messages)
    from_header = {m.parsed()["From"].addresses[0].addr_spec for m in smtp_sink.messages}
    assert {m.mail_from for m in smtp_sink.messages} == from_header


def test_with_a_feedback_domain_each_message_names_its_user_and_task(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    smtp_settings.BULK_EMAIL = {**smtp_settings.BULK_EMAIL, "FEEDBACK_DOMAIN": "fb.example.com"}
    course, instructor, learners = course_with_learners
    task = make_task(course, instructor)
    send_all(run_fan_out(task))
    by_user = {u.email: u.pk for u in learners}
    assert len(smtp_sink.messages) == 7
    for message in smtp_sink.messages:
        user_id = by_user[message.rcpt_tos[0]]
        assert message.mail_from.endswith("@fb.example.com")
        assert read_feedback_address(message.mail_from) == AddressToken(BOUNCE, user_id, task.pk)
        [mailto] = mailtos(message)
        address, _, query = mailto.removeprefix("mailto:").partition("?")
        assert (address.endswith("@fb.example.com"), query) == (True, "subject=unsubscribe")
        assert read_feedback_address(address) == AddressToken(UNSUBSCRIBE, user_id, task.pk)


def test_a_refused_recipient_fails_with_its_code_and_the_rest_are_sent(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    smtp_sink.faults.append(Fault.reject(learners[4].email))
    task = make_task(course, instructor)
    send_all(run_fan_out(task))
    failed = RecipientOutcome.objects.get(task=task)
    assert (failed.user_id, failed.status, failed.code) == (learners[4].pk, "failed", 550)
    assert "No such user" in failed.detail
    task.refresh_from_db()
    assert task.state == EmailTask.SUCCESS
    assert task.counts() == TaskCounts(total=7, sent=6, failed=1, skipped=0)


def test_throttling_releases_the_batch_for_a_retry_that_resumes(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    task = make_task(course, instructor)
    batch_id = run_fan_out(task)[0]
    smtp_sink.faults.append(Fault.throttle(after=1, times=1))
    with pytest.raises(TransientSendError):
        pipeline.send_batch(batch_id=batch_id)
    batch = Batch.objects.get(pk=batch_id)
    assert (batch.state, batch.cursor, batch.claim_token) == (Batch.PENDING, 1, "")
    assert EmailTask.objects.get(pk=task.pk).retries == 1
    assert pipeline.send_batch(batch_id=batch_id) is None  # the retry
    assert received_addresses(smtp_sink) == sorted(u.email for u in learners[:3])


def test_giving_up_fails_the_unreached_with_the_reason(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    task = make_task(course, instructor)
    batch_id = run_fan_out(task)[0]
    smtp_sink.faults.append(Fault.throttle(after=2))
    with pytest.raises(TransientSendError):
        pipeline.send_batch(batch_id=batch_id)
    pipeline.give_up_batch(batch_id=batch_id, reason="Gave up after retries: 454 Throttling")
    outcome = RecipientOutcome.objects.get(task=task)
    assert (outcome.user_id, outcome.status) == (learners[2].pk, "failed")
    assert Batch.objects.get(pk=batch_id).state == Batch.DONE


def test_a_configuration_error_fails_the_task_with_a_readable_reason(
    small_batches, smtp_settings, course_with_learners
):
    course, instructor, _ = course_with_learners
    smtp_settings.EMAIL_PORT = 9  # nothing listens there
    task = make_task(course, instructor)
    batch_id = run_fan_out(task)[0]
    with pytest.raises(SMTPConfigurationError):
        pipeline.send_batch(batch_id=batch_id)
    task.refresh_from_db()
    assert task.state == EmailTask.FAILURE and "refused the connection" in task.error
    assert task.counts().sent == 0


def test_resend_fans_out_to_exactly_the_failed(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    for learner in learners[1:4]:
        smtp_sink.faults.append(Fault.reject(learner.email))
    task = make_task(course, instructor)
    send_all(run_fan_out(task))
    smtp_sink.faults.clear()
    smtp_sink.messages.clear()
    resend = EmailTask.objects.create(
        email=task.email, requester=instructor, resend_of=task, state=EmailTask.PENDING
    )
    send_all(run_fan_out(resend))
    assert received_addresses(smtp_sink) == sorted(u.email for u in learners[1:4])
    resend.refresh_from_db()
    assert (resend.state, resend.total) == (EmailTask.SUCCESS, 3)


def test_the_dispatcher_releases_due_scheduled_sends_once(course_with_learners):
    course, instructor, _ = course_with_learners
    task = make_task(course, instructor, state=EmailTask.SCHEDULED)
    EmailTask.objects.filter(pk=task.pk).update(
        send_at=timezone.now() + datetime.timedelta(hours=1)
    )
    assert pipeline.dispatch().fan_outs == []
    later = timezone.now() + datetime.timedelta(hours=2)
    assert pipeline.dispatch(now=later).fan_outs == [pipeline.Job(task.pk, "default")]
    assert pipeline.dispatch(now=later).fan_outs == []
    assert EmailTask.objects.get(pk=task.pk).state == EmailTask.PENDING


def test_the_dispatcher_picks_up_lost_work(small_batches, course_with_learners):
    course, instructor, _ = course_with_learners
    stuck = make_task(course, instructor, state=EmailTask.QUEUING)  # its enqueue never happened
    running = make_task(course, instructor)
    batch_id = run_fan_out(running)[0]
    pipeline.claim_batch(batch_id=batch_id)  # then its worker died
    later = timezone.now() + datetime.timedelta(minutes=5)
    round_ = pipeline.dispatch(now=later)
    assert pipeline.Job(stuck.pk, "default") in round_.fan_outs
    assert round_.batches == [pipeline.Job(batch_id, "default")]
    assert EmailTask.objects.get(pk=stuck.pk).state == EmailTask.PENDING
    assert Batch.objects.get(pk=batch_id).state == Batch.PENDING
    assert pipeline.dispatch(now=later).batches == []  # handed out once


def test_the_dispatcher_finishes_a_task_whose_worker_died_after_its_last_batch(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, _ = course_with_learners
    task = make_task(course, instructor)
    send_all(run_fan_out(task))
    # The worker was killed between finishing the last batch and marking the task.
    EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.PROGRESS, finished_at=None)
    pipeline.dispatch()
    task.refresh_from_db()
    assert task.state == EmailTask.SUCCESS and task.finished_at is not None


def test_the_dispatcher_enqueues_again_a_batch_whose_message_was_lost(
    small_batches, course_with_learners, settings
):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "PENDING_REQUEUE_SECONDS": 600}
    course, instructor, _ = course_with_learners
    batch_ids = run_fan_out(make_task(course, instructor))  # enqueued, then the broker lost them
    assert pipeline.dispatch().batches == []  # a queue may hold them that long: no duplicate
    later = timezone.now() + datetime.timedelta(minutes=11)
    assert sorted(job.id for job in pipeline.dispatch(now=later).batches) == sorted(batch_ids)
    assert pipeline.dispatch(now=later).batches == []  # once per period


def test_a_refused_connection_after_messages_went_through_is_an_outage_not_a_failure(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, _ = course_with_learners
    task = make_task(course, instructor)
    first, second, _ = run_fan_out(task)
    pipeline.send_batch(batch_id=first)
    smtp_settings.EMAIL_PORT = 9  # the server goes away
    with pytest.raises(TransientSendError, match="unavailable"):
        pipeline.send_batch(batch_id=second)
    task.refresh_from_db()
    assert task.state == EmailTask.PROGRESS and task.retries == 1
    assert Batch.objects.get(pk=second).state == Batch.PENDING


def b_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


def test_hostile_addresses_and_names_never_reach_the_smtp_server_raw(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    hostile = "evil@example.com> NOTIFY=SUCCESS ORCPT=rfc822;evil@example.com"
    type(learners[1]).objects.filter(pk=learners[1].pk).update(email=hostile)
    long_name = "Ann " * 63  # the profile's column holds 255 characters
    names = {learners[2].pk: b_word("\r\nBcc: x@y"), learners[3].pk: long_name}
    for user_id, name in names.items():
        UserProfile.objects.filter(user_id=user_id).update(name=name)
    task = make_task(course, instructor)
    send_all(run_fan_out(task))
    failed = RecipientOutcome.objects.get(task=task)
    assert (failed.user_id, failed.status) == (learners[1].pk, "failed")
    assert "not an email address" in failed.detail
    assert not any("evil" in address for address in received_addresses(smtp_sink))
    received = {m.rcpt_tos[0]: m for m in smtp_sink.messages}
    assert len(received) == 6
    encoded = received[learners[2].email]
    assert encoded.parsed()["Bcc"] is None and b"\r\nBcc:" not in encoded.data
    assert encoded.parsed()["To"].addresses[0].display_name == names[learners[2].pk]
    long_named = received[learners[3].email]
    assert max(len(line) for line in long_named.data.split(b"\r\n")) <= 998
    shown_name = long_named.parsed()["To"].addresses[0].display_name
    assert shown_name.startswith("Ann Ann") and len(shown_name) <= MAX_DISPLAY_NAME
    task.refresh_from_db()
    assert task.counts() == TaskCounts(total=7, sent=6, failed=1, skipped=0)


def test_a_stored_message_that_sanitizing_refuses_fails_the_task_with_the_reason(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, _ = course_with_learners
    task = make_task(course, instructor)
    deep = "<div>" * 500 + "x" + "</div>" * 500  # stored around validation (admin, shell)
    type(task.email).objects.filter(pk=task.email_id).update(html_message=deep)
    batch_id = run_fan_out(task)[0]
    assert pipeline.send_batch(batch_id=batch_id) is None
    task.refresh_from_db()
    assert task.state == EmailTask.FAILURE and "nests its elements" in task.error
    assert smtp_sink.messages == []


def test_a_send_whose_template_lost_its_body_slot_fails_with_the_reason(
    smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, _ = course_with_learners
    CourseEmailTemplate.objects.create(name="broken", html_template="<p>x</p>", plain_template="x")
    task = make_task(course, instructor)
    CourseEmail.objects.filter(pk=task.email_id).update(template_name="broken")
    send_all(run_fan_out(task))
    task.refresh_from_db()
    assert (task.state, smtp_sink.messages) == (EmailTask.FAILURE, [])
    assert task.error.startswith("The message cannot be sent: The HTML part of the CourseEmail")


def test_members_left_out_for_a_suppressed_address_are_counted_skipped_suppressed(
    smtp_settings, smtp_sink, course_with_learners
):
    course, instructor, learners = course_with_learners
    suppress(learners[1].email), suppress(learners[2].email.upper())
    opt_out(learners[2], course.id)  # opted out first: counted there, not here
    task = make_task(course, instructor, targets=("learners", "myself"))
    send_all(run_fan_out(task))
    task.refresh_from_db()
    assert (task.state, task.total, task.suppressed) == (EmailTask.SUCCESS, 6, 1)
    assert task.counts() == TaskCounts(total=6, sent=6, failed=0, skipped=0)
    assert learners[1].email not in received_addresses(smtp_sink)


class AnonymousIdsBackend(StubLMSBackend):
    """The LMS port as an LMS that stores anonymous ids (Open edX's AnonymousUserId)."""

    calls: list[int] = []

    def anonymous_user_ids(self, course_id: str, user_ids: list[int]) -> dict[int, str]:
        self.calls.append(len(user_ids))
        return {user_id: f"anon{user_id}x" for user_id in user_ids}


def test_user_id_is_the_lms_anonymous_id_asked_once_per_batch(
    small_batches, settings, smtp_settings, smtp_sink, course_with_learners
):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "LMS_BACKEND": f"{__name__}.AnonymousIdsBackend"}
    AnonymousIdsBackend.calls.clear()
    course, instructor, learners = course_with_learners
    task = make_task(course, instructor)
    survey = '<p><a href="https://survey.example/?who=%%USER_ID%%">Survey</a></p>'
    CourseEmail.objects.filter(pk=task.email_id).update(html_message=survey)
    send_all(run_fan_out(task))
    assert AnonymousIdsBackend.calls == [3, 3, 1]  # 7 learners in batches of 3
    first = next(m for m in smtp_sink.messages if m.rcpt_tos == [learners[0].email])
    html = parts(parse(first.data))["text/html"]
    assert f"https://survey.example/?who=anon{learners[0].pk}x" in html


# --- The footer in each learner's language ------------------------------------------------------


def test_a_batch_asks_the_lms_for_its_languages_once_and_sends_each_footer_in_its_own(
    smtp_settings, smtp_sink, course_with_learners, monkeypatch
):
    from bulk_email import rendering

    course, instructor, learners = course_with_learners
    course.language = "fr"  # for those who chose nothing of the site's
    course.save()
    chosen = ["ar", "en", "", "de", "ar", "en", "fr"]  # "" and "de": the course's French
    for learner, language in zip(learners, chosen, strict=True):
        UserProfile.objects.filter(user=learner).update(language=language)
    task = make_task(course, instructor)
    [batch_id] = run_fan_out(task)
    rendering.clear_prepared_cache()
    before = rendering.preparations.copy()
    asked = []
    original = StubLMSBackend.preferred_languages

    def counting(self, user_ids):
        asked.append(list(user_ids))
        return original(self, user_ids)

    monkeypatch.setattr(StubLMSBackend, "preferred_languages", counting)
    send_all([batch_id])
    assert asked == [[u.pk for u in learners]]  # one call for the batch
    assert rendering.preparations - before == {"ar": 1, "en": 1, "fr": 1}
    wanted = {
        u.email: lang if lang in ("ar", "en") else "fr"
        for u, lang in zip(learners, chosen, strict=True)
    }
    assert len(smtp_sink.messages) == len(learners)
    for message in smtp_sink.messages:
        html = parts(parse(message.data))["text/html"]
        language = wanted[message.rcpt_tos[0]]
        assert f'role="contentinfo" lang="{language}"' in html


def test_an_lms_without_preferred_languages_sends_every_footer_in_the_courses(
    smtp_settings, smtp_sink, course_with_learners, monkeypatch
):
    from bulk_email import rendering
    from bulk_email.lms import LMSBackend

    course, instructor, learners = course_with_learners
    course.language = "ar"
    course.save()
    UserProfile.objects.filter(user__in=learners).update(language="fr")  # not asked for
    monkeypatch.setattr(StubLMSBackend, "preferred_languages", LMSBackend.preferred_languages)
    task = make_task(course, instructor)
    rendering.clear_prepared_cache()
    before = rendering.preparations.copy()
    send_all(run_fan_out(task))
    assert rendering.preparations - before == {"ar": 1}
    for message in smtp_sink.messages:
        assert 'lang="ar" dir="rtl"' in parts(parse(message.data))["text/html"]


def test_with_dkim_every_message_arrives_with_both_signatures_valid(
    small_batches, smtp_settings, smtp_sink, course_with_learners
):
    """Signed before dot-stuffing, through SMTP into the sink: what arrives verifies."""
    import dkim

    from tests.messages import make_dkim_key, make_ed25519_key

    (rsa_pem, rsa_txt), (ed_pem, ed_txt) = make_dkim_key(), make_ed25519_key()
    smtp_settings.BULK_EMAIL = {
        **smtp_settings.BULK_EMAIL,
        "DKIM": {"domain": "lms.example.com", "selector": "bulk", "private_key": rsa_pem,
                 "ed25519_selector": "ed", "ed25519_private_key": ed_pem},
    }  # fmt: skip
    records = {
        b"bulk._domainkey.lms.example.com.": rsa_txt,
        b"ed._domainkey.lms.example.com.": ed_txt,
    }
    course, instructor, _ = course_with_learners
    send_all(run_fan_out(make_task(course, instructor)))
    assert len(smtp_sink.messages) == 7
    for message in smtp_sink.messages:
        verifier = dkim.DKIM(message.data)
        for index in (0, 1):
            assert verifier.verify(idx=index, dnsfunc=lambda name, timeout=5: records[name])
