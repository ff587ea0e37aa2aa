"""Sending a batch against a real SMTP server (the aiosmtpd sink in lms_stub/smtp_sink.py),
through the worker's steps: every reply class sorted into an outcome or a stop, each
recipient one message, the unsent rest handed back in order."""

import pytest

from bulk_email import sending
from bulk_email.exceptions import (
    BulkEmailConfigurationError,
    SMTPConfigurationError,
    TransientSendError,
)
from bulk_email.rendering import Recipient
from bulk_email.sending import OutcomeKind
from lms_stub.smtp_sink import Fault, SMTPSink, free_port
from tests.sending.batches import learners, send_batch

SENT, PERMANENT = OutcomeKind.SENT, OutcomeKind.PERMANENT


# --- Delivery ----------------------------------------------------------------------------------


def test_each_recipient_gets_one_message_and_an_outcome(smtp_settings, smtp_sink, prepared):
    outcomes = send_batch(prepared, learners(3))
    assert [o.status for o in outcomes] == [SENT] * 3
    received = smtp_sink.wait_for(3)
    assert [m.rcpt_tos for m in received] == [[f"learner{n}@example.com"] for n in (1, 2, 3)]
    assert [m.parsed()["Message-ID"] for m in received] == [o.message_id for o in outcomes]
    assert received[0].parsed()["To"].addresses[0].display_name == "Learner 1"


def test_on_outcome_reports_each_recipient_as_it_goes(smtp_settings, prepared):
    seen = []
    send_batch(prepared, learners(3), on_outcome=seen.append)
    assert [o.user_id for o in seen] == [1, 2, 3]


# --- Permanent: that recipient failed, the rest go on -------------------------------------------


@pytest.mark.parametrize(
    "reply", ["550 5.1.1 No such user here", "553 5.1.3 Bad recipient address syntax"]
)
def test_a_5xx_for_one_recipient_fails_it_and_the_batch_goes_on(
    smtp_settings, smtp_sink, prepared, reply
):
    smtp_sink.faults.append(Fault.reject("learner2@example.com", reply))
    outcomes = send_batch(prepared, learners(3))
    assert [o.status for o in outcomes] == [SENT, PERMANENT, SENT]
    assert outcomes[1].code == int(reply[:3])
    assert reply[4:] in outcomes[1].reason
    assert len(smtp_sink.messages) == 2


def test_a_5xx_after_data_fails_that_message(smtp_settings, smtp_sink, prepared):
    smtp_sink.faults.append(Fault("DATA", "554 5.7.1 Message rejected as spam", times=1))
    outcomes = send_batch(prepared, learners(2))
    assert [(o.status, o.code) for o in outcomes] == [(PERMANENT, 554), (SENT, None)]


def test_a_malformed_address_fails_only_that_recipient(smtp_settings, prepared):
    outcomes = send_batch(prepared, [Recipient(1, "nobody"), *learners(1, start=2)])
    assert [o.status for o in outcomes] == [PERMANENT, SENT]
    assert "not an email address" in outcomes[0].reason


# --- Transient: stop, hand back the unsent rest ---------------------------------------------


def assert_stopped_after(error, sent: int, total: int):
    assert [o.status for o in error.outcomes] == [SENT] * sent
    assert [r.user_id for r in error.unsent] == list(range(sent + 1, total + 1))


def test_a_421_mid_session_is_transient_and_the_next_batch_reconnects(
    smtp_settings, smtp_sink, prepared
):
    smtp_sink.faults.append(Fault.closing_421(after=2))
    with pytest.raises(TransientSendError) as caught:
        send_batch(prepared, learners(4))
    assert caught.value.code == 421
    assert_stopped_after(caught.value, sent=2, total=4)
    outcomes = send_batch(prepared, caught.value.unsent)
    assert [o.status for o in outcomes] == [SENT, SENT]
    assert smtp_sink.connections == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault.throttle(after=1),
        Fault("RCPT", "450 4.2.1 Mailbox busy", after=1),
        Fault("RCPT", "451 4.3.0 Local error in processing", after=1),
        Fault("RCPT", "452 4.5.3 Too many recipients", after=1),
        Fault("DATA", "451 4.7.1 Greylisted, try again", after=1),
    ],
    ids=["454-throttling", "450", "451", "452", "451-after-data"],
)
def test_4xx_replies_are_transient(smtp_settings, smtp_sink, prepared, fault):
    smtp_sink.faults.append(fault)
    with pytest.raises(TransientSendError) as caught:
        send_batch(prepared, learners(3))
    assert caught.value.code == int(fault.reply[:3])
    assert_stopped_after(caught.value, sent=1, total=3)


def test_a_dropped_connection_is_transient_and_recovers(smtp_settings, smtp_sink, prepared):
    smtp_sink.faults.append(Fault.drop_connection(after=1))
    with pytest.raises(TransientSendError) as caught:
        send_batch(prepared, learners(3))
    assert "closed the connection" in caught.value.reason
    assert_stopped_after(caught.value, sent=1, total=3)
    assert [o.status for o in send_batch(prepared, caught.value.unsent)] == [SENT, SENT]


def test_a_slow_server_times_out_as_transient(smtp_settings, smtp_sink, prepared):
    smtp_settings.EMAIL_TIMEOUT = 0.3
    smtp_sink.faults.append(Fault("DATA", "250 2.0.0 OK", after=1, times=1, delay=1.0))
    with pytest.raises(TransientSendError) as caught:
        send_batch(prepared, learners(2))
    assert "in time" in caught.value.reason
    assert_stopped_after(caught.value, sent=1, total=2)


# --- Configuration: stop fast with a reason --------------------------------------------------


def test_535_authentication_failure_is_configuration(settings, prepared):
    with SMTPSink(users={"bulk": "right"}) as sink:
        settings.EMAIL_BACKEND = sending.DJANGO_SMTP_BACKEND
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "bulk", "wrong"
        with pytest.raises(SMTPConfigurationError) as caught:
            send_batch(prepared, learners(2))
        sending.close_session()
    assert caught.value.code == 535
    assert "login" in caught.value.reason
    assert caught.value.unsent == learners(2)
    assert isinstance(caught.value, BulkEmailConfigurationError)


def test_good_credentials_log_in_and_send(settings, prepared):
    with SMTPSink(users={"bulk": "right"}) as sink:
        settings.EMAIL_BACKEND = sending.DJANGO_SMTP_BACKEND
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "bulk", "right"
        outcomes = send_batch(prepared, learners(1))
        sending.close_session()
    assert outcomes[0].status == SENT


def test_454_with_an_authentication_text_is_configuration(smtp_settings, smtp_sink, prepared):
    smtp_sink.faults.append(Fault("MAIL", "454 4.7.0 Temporary authentication failure"))
    with pytest.raises(SMTPConfigurationError) as caught:
        send_batch(prepared, learners(1))
    assert caught.value.code == 454


def test_a_refused_connection_is_configuration(settings, prepared):
    settings.EMAIL_BACKEND = sending.DJANGO_SMTP_BACKEND
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    with pytest.raises(SMTPConfigurationError) as caught:
        send_batch(prepared, learners(1))
    sending.close_session()
    assert "refused the connection" in caught.value.reason


def test_tls_that_the_server_cannot_do_is_configuration(smtp_settings, prepared):
    smtp_settings.EMAIL_USE_TLS = True
    with pytest.raises(SMTPConfigurationError) as caught:
        send_batch(prepared, learners(1))
    assert "STARTTLS" in caught.value.reason


def test_a_refused_sender_is_configuration(smtp_settings, smtp_sink, prepared):
    smtp_sink.faults.append(Fault("MAIL", "550 5.7.1 Sender not allowed"))
    with pytest.raises(SMTPConfigurationError) as caught:
        send_batch(prepared, learners(2))
    assert "sender" in caught.value.reason
