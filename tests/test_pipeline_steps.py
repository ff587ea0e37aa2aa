"""The per-recipient steps on the worker side (pipeline/steps.py): render → rate_limit →
deliver → record, in that order for each recipient; outcomes in recipient order even when a
transport learns a message's result one message later; a stop carries the outcomes so far
and the unsent rest from the recipient it stopped at."""

import pytest

from bulk_email import pipeline
from bulk_email.exceptions import SMTPConfigurationError, TransientSendError
from bulk_email.lms import Recipient
from bulk_email.models import Batch, RecipientOutcome
from bulk_email.pipeline import steps
from bulk_email.pipeline.steps import BatchSender
from bulk_email.sending import Outcome, OutcomeKind, Transport
from tests.factories import make_task, run_fan_out
from tests.messages import prepare
from tests.sending.batches import learners

SENT, PERMANENT = OutcomeKind.SENT, OutcomeKind.PERMANENT


class PipelinedTransport(Transport):
    """Like the SMTP session with PIPELINING: a message's result comes with the next one's
    delivery, the last one's with ``flush``. ``errors`` maps a user id to its error."""

    def __init__(self, errors=None, log=None):
        self.errors = errors or {}
        self.log = log if log is not None else []
        self.pending = None
        self.finished = False

    def deliver(self, message):
        self.log.append(f"deliver {message.recipient.user_id}")
        results, self.pending = self.flush(), message
        return results

    def flush(self):
        if self.pending is None:
            return []
        message, self.pending = self.pending, None
        return [(message, self.errors.get(message.recipient.user_id))]

    def finish(self):
        self.finished = True


class LoggingSender(BatchSender):
    """Every step logged, with the transport given."""

    def __init__(self, prepared, transport, **kwargs):
        super().__init__(prepared, **kwargs)
        self.given_transport = transport
        self.log = transport.log

    def open_transport(self, recipients):
        return self.given_transport

    def render(self, recipient):
        self.log.append(f"render {recipient.user_id}")
        return super().render(recipient)

    def rate_limit(self):
        self.log.append("rate_limit")
        super().rate_limit()

    def record(self, results):
        self.log.append(f"record {[message.recipient.user_id for message, _ in results]}")
        super().record(results)

    def finish(self):
        self.log.append("finish")
        super().finish()


@pytest.fixture
def prepared():
    return prepare()


def test_each_recipient_goes_through_the_steps_in_order(prepared):
    transport = PipelinedTransport()
    outcomes = LoggingSender(prepared, transport).send(learners(2))
    assert transport.log == [
        "render 1", "rate_limit", "deliver 1", "record []",
        "render 2", "rate_limit", "deliver 2", "record [1]",
        "finish", "record [2]",
    ]  # fmt: skip
    assert [(o.user_id, o.status) for o in outcomes] == [(1, SENT), (2, SENT)]
    assert transport.finished


def test_an_unrenderable_recipient_fails_after_the_message_in_flight(prepared):
    seen = []
    recipients = [*learners(1), Recipient(2, "nobody"), *learners(1, start=3)]
    outcomes = LoggingSender(prepared, PipelinedTransport(), on_outcome=seen.append).send(
        recipients
    )
    assert [(o.user_id, o.status) for o in seen] == [(1, SENT), (2, PERMANENT), (3, SENT)]
    assert seen == outcomes
    assert "not an email address" in outcomes[1].reason


def test_a_stop_carries_the_outcomes_so_far_and_the_unsent_from_the_one_stopped_at(prepared):
    transport = PipelinedTransport(errors={2: TimeoutError("timed out")})
    with pytest.raises(TransientSendError) as caught:
        LoggingSender(prepared, transport).send(learners(4))
    assert [(o.user_id, o.status) for o in caught.value.outcomes] == [(1, SENT)]
    assert [r.user_id for r in caught.value.unsent] == [2, 3, 4]
    assert "in time" in caught.value.reason
    assert transport.finished


def test_a_transport_that_cannot_be_opened_stops_before_anyone(prepared, monkeypatch):
    def refused():
        raise ConnectionRefusedError("no server")

    monkeypatch.setattr(steps, "get_transport", refused)
    with pytest.raises(SMTPConfigurationError) as caught:
        BatchSender(prepared).send(learners(2))
    assert (caught.value.outcomes, caught.value.unsent) == ([], learners(2))
    assert "refused the connection" in caught.value.reason


@pytest.mark.django_db
def test_the_pipeline_records_the_outcome_kinds_of_the_steps(course_with_learners, settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "EMAILS_PER_TASK": 3, "REDIS_URL": None}
    settings.CELERY_BROKER_URL = "memory://"
    course, instructor, _ = course_with_learners
    batch = Batch.objects.get(pk=run_fan_out(make_task(course, instructor))[0])
    claim = pipeline.claim_batch(batch_id=batch.pk)
    positions = {user_id: p for p, user_id in enumerate(batch.user_ids)}
    recorder = pipeline.BatchProgress(claim, positions=positions)
    first, second = (Recipient(user_id, "x@example.com") for user_id in batch.user_ids[:2])
    recorder.record(Outcome(first, OutcomeKind.SENT))
    recorder.record(Outcome(second, OutcomeKind.PERMANENT, code=550, reason="No such user"))
    recorder.close()
    batch.refresh_from_db()
    assert (batch.cursor, batch.sent, batch.failed) == (2, 1, 1)
    failure = RecipientOutcome.objects.get(batch=batch)
    assert (failure.user_id, failure.code, failure.detail) == (second.user_id, 550, "No such user")
