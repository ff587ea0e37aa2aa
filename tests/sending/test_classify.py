"""Classification: SMTP replies and exceptions sorted into one OutcomeKind, by type."""

import smtplib

import pytest

from bulk_email import sending
from bulk_email.exceptions import SMTPConfigurationError, TransientSendError
from bulk_email.pipeline import recording
from bulk_email.sending import BackendTransport, OutcomeKind, Transport, classify, classify_reply
from tests.sending.batches import learners

PERMANENT, TRANSIENT = OutcomeKind.PERMANENT, OutcomeKind.TRANSIENT
CONFIGURATION = OutcomeKind.CONFIGURATION


@pytest.mark.parametrize(
    "code, text, kind",
    [
        (550, "No such user", PERMANENT),
        (421, "closing", TRANSIENT),
        (454, "Throttling", TRANSIENT),
        (454, "4.7.0 Temporary authentication failure", CONFIGURATION),
        (535, "5.7.8 Bad credentials", CONFIGURATION),
        (530, "5.7.0 Authentication required", CONFIGURATION),
        (452, "Insufficient storage", TRANSIENT),
    ],
)
def test_reply_codes_are_classified(code, text, kind):
    assert classify_reply(code, text) == kind


def test_unknown_backend_errors_are_transient_and_refused_recipients_permanent(fake_anymail):
    transport = BackendTransport()  # the tests' locmem backend; anymail's errors are known
    refused = fake_anymail.AnymailRecipientsRefused("bounced before")

    assert transport.classify(refused).kind == PERMANENT
    assert transport.classify(RuntimeError("ESP API 503")).kind == TRANSIENT
    assert transport.classify(smtplib.SMTPServerDisconnected("gone")).kind == TRANSIENT


def test_a_transient_error_is_a_connection_error_for_callers():
    assert issubclass(TransientSendError, ConnectionError)


# --- One Enum; types, never names ----------------------------------------------------------


def test_classification_and_outcomes_share_one_enum():
    assert classify_reply(550, "No such user") is OutcomeKind.PERMANENT
    assert classify(OSError("reset")).kind is OutcomeKind.TRANSIENT
    assert classify(ConnectionRefusedError()).kind is OutcomeKind.CONFIGURATION
    assert recording.SENT is OutcomeKind.SENT  # what the pipeline's progress compares with
    assert [kind.name for kind in OutcomeKind] == [
        "SENT", "PERMANENT", "TRANSIENT", "CONFIGURATION"
    ]  # fmt: skip


def test_an_error_is_classified_by_its_type_never_its_name():
    class AnymailRecipientsRefused(Exception):
        pass

    refused = AnymailRecipientsRefused("bounced before")
    assert classify(refused).kind is TRANSIENT
    assert classify(refused, permanent=(AnymailRecipientsRefused,)).kind is PERMANENT


def test_a_permanent_error_type_a_transport_registers_is_permanent():
    class RefusedByTheESP(Exception):
        pass

    class ESPTransport(Transport):
        def permanent_errors(self):
            return (RefusedByTheESP,)

    verdict = ESPTransport().classify(RefusedByTheESP("suppressed address"))
    assert (verdict.kind, verdict.code, verdict.reason) == (PERMANENT, None, "suppressed address")
    assert Transport().classify(RefusedByTheESP("suppressed address")).kind is TRANSIENT


def test_a_stop_is_a_configuration_or_a_transient_error_with_outcomes_and_unsent():
    people = learners(2)
    for kind, error_class in (
        (CONFIGURATION, SMTPConfigurationError),
        (TRANSIENT, TransientSendError),
    ):
        error = sending.stop_error(
            sending.Verdict(kind, 421, "closing"), outcomes=[], unsent=people
        )
        assert type(error) is error_class
        assert (error.reason, error.code, error.outcomes, error.unsent) == (
            "closing",
            421,
            [],
            people,
        )
