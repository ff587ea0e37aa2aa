"""Transports: the direct SMTP path (SMTPUTF8 included) and any other EmailBackend through
Django's contract; which one a setting picks; the errors each transport knows."""

import email
import email.utils
from email import policy

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend

from bulk_email import sending
from bulk_email.exceptions import TransientSendError
from bulk_email.pipeline.steps import BatchSender
from bulk_email.rendering import Recipient
from bulk_email.sending import OutcomeKind
from lms_stub.smtp_sink import SMTPSink
from tests.sending.batches import learners, send_batch

SENT, PERMANENT = OutcomeKind.SENT, OutcomeKind.PERMANENT


# --- SMTPUTF8 --------------------------------------------------------------------------------


def test_a_non_ascii_address_travels_with_smtputf8(smtp_settings, smtp_sink, prepared):
    outcomes = send_batch(prepared, [Recipient(1, "jösé@example.com", "José")])
    assert outcomes[0].status == SENT
    received = smtp_sink.wait_for(1)[0]
    assert "SMTPUTF8" in received.mail_options
    assert received.rcpt_tos == ["jösé@example.com"]
    # RFC 6532: the header holds raw UTF-8, which the email package reads from text
    parsed = email.message_from_string(received.data.decode("utf-8"), policy=policy.default)
    assert parsed["To"].addresses[0].addr_spec == "jösé@example.com"


def test_without_smtputf8_a_non_ascii_address_fails_with_a_reason(settings, prepared):
    with SMTPSink(smtputf8=False) as sink:
        settings.EMAIL_BACKEND = sending.DJANGO_SMTP_BACKEND
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        try:
            outcomes = send_batch(prepared, [Recipient(1, "jösé@example.com"), *learners(1)])
        finally:
            sending.close_session()
    assert [o.status for o in outcomes] == [PERMANENT, SENT]
    assert "SMTPUTF8" in outcomes[0].reason


# --- Any other EmailBackend through Django's contract ----------------------------------------


def test_a_non_smtp_backend_is_used_through_the_email_backend_contract(settings, prepared):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    outcomes = send_batch(prepared, learners(2))
    assert [o.status for o in outcomes] == [SENT, SENT]
    assert len(mail.outbox) == 2
    message = mail.outbox[0].message()
    assert message["Message-ID"] == outcomes[0].message_id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.outbox[0].alternatives[0].mimetype == "text/html"


# --- Which transport a setting picks --------------------------------------------------------


class LoggingSMTPBackend(DjangoSMTPBackend):
    """A subclass of Django's SMTP backend changing how it connects (as custom auth does)."""

    connected = 0

    def open(self):
        opened = super().open()
        type(self).connected += bool(opened)
        return opened


def test_djangos_smtp_backend_takes_the_direct_session(settings):
    settings.EMAIL_BACKEND = sending.DJANGO_SMTP_BACKEND
    try:
        assert type(sending.get_transport()) is sending.SMTPTransport
    finally:
        sending.close_session()


def test_a_subclass_of_djangos_smtp_backend_is_used_through_its_own_methods(
    smtp_settings, smtp_sink, prepared
):
    smtp_settings.EMAIL_BACKEND = f"{__name__}.LoggingSMTPBackend"
    LoggingSMTPBackend.connected = 0
    outcomes = send_batch(prepared, learners(2))
    assert [o.status for o in outcomes] == [SENT, SENT]
    assert LoggingSMTPBackend.connected == smtp_sink.connections == 1  # the subclass's open
    received = smtp_sink.wait_for(2)
    assert [m.rcpt_tos for m in received] == [[learner.email] for learner in learners(2)]
    transport = sending.get_transport()
    transport.finish()
    assert type(transport) is sending.BackendTransport


def test_any_other_backend_goes_through_djangos_contract(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert type(sending.get_transport()) is sending.BackendTransport


# --- The errors a transport knows -----------------------------------------------------------


class RefusingBackend(LocmemBackend):
    """An ESP's backend that refuses learner2 as django-anymail does (fake_anymail's error)."""

    def send_messages(self, messages):
        from anymail.exceptions import AnymailRecipientsRefused

        if any("learner2@" in address for message in messages for address in message.to):
            raise AnymailRecipientsRefused("learner2@example.com is on the suppression list")
        return super().send_messages(messages)


def test_an_address_an_esp_refuses_through_anymail_fails_alone(settings, prepared, fake_anymail):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    outcomes = send_batch(prepared, learners(3))
    assert [o.status for o in outcomes] == [SENT, PERMANENT, SENT]
    assert outcomes[1].reason == "learner2@example.com is on the suppression list"
    assert len(mail.outbox) == 2


class RefusedByTheESP(Exception):
    pass


class ESPBackend(LocmemBackend):
    """An ESP's backend whose library refuses learner2 with its own error."""

    def send_messages(self, messages):
        if "learner2@" in messages[0].to[0]:
            raise RefusedByTheESP("refused by the ESP")
        return super().send_messages(messages)


class ESPTransport(sending.BackendTransport):
    """The transport for that ESP: it registers the library's refusal (its hook)."""

    def permanent_errors(self):
        return (RefusedByTheESP,)


class ESPSender(BatchSender):
    def open_transport(self, recipients):
        return ESPTransport()


def test_a_permanent_error_registered_by_a_transport_fails_that_recipient_alone(settings, prepared):
    settings.EMAIL_BACKEND = f"{__name__}.ESPBackend"
    outcomes = ESPSender(prepared).send(learners(3))
    assert [(o.status, o.reason) for o in outcomes] == [
        (SENT, ""), (PERMANENT, "refused by the ESP"), (SENT, "")
    ]  # fmt: skip
    # Unregistered, the same error is an unknown one: the batch stops, to be retried.
    with pytest.raises(TransientSendError) as caught:
        send_batch(prepared, learners(3))
    assert [o.status for o in caught.value.outcomes] == [SENT]


# --- The envelope sender (VERP) ------------------------------------------------------------

TASK_ID = 77


@pytest.fixture
def verp_prepared(settings):
    from tests.messages import prepare

    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": "feedback.example.com"}
    return prepare()


def verp_owner(address: str) -> tuple[str, int, int]:
    from bulk_email.tokens import read_feedback_address

    token = read_feedback_address(address)
    return token.purpose, token.user_id, token.task_id


def test_the_smtp_envelope_sender_is_each_recipients_verp_address(
    smtp_settings, smtp_sink, verp_prepared
):
    BatchSender(verp_prepared, task_id=TASK_ID).send(learners(2))
    received = sorted(smtp_sink.wait_for(2), key=lambda m: m.rcpt_tos)
    assert [verp_owner(m.mail_from) for m in received] == [
        ("bounces", 1, TASK_ID),
        ("bounces", 2, TASK_ID),
    ]
    assert all(m.parsed()["From"].addresses[0].addr_spec == "no-reply@lms.example.com"
               for m in received)  # fmt: skip


def test_djangos_backends_take_the_verp_address_as_from_email(settings, verp_prepared):
    """Django's SMTP backend uses ``from_email`` as MAIL FROM; the From header stays."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    BatchSender(verp_prepared, task_id=TASK_ID).send(learners(1))
    sent = mail.outbox[0]
    assert verp_owner(sent.from_email) == ("bounces", 1, TASK_ID)
    assert email.utils.parseaddr(sent.message()["From"])[1] == "no-reply@lms.example.com"


def test_anymail_backends_get_the_verp_address_as_envelope_sender(settings, verp_prepared):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    BatchSender(verp_prepared, task_id=TASK_ID).send(learners(1))
    params = mail.outbox[0].anymail_test_params
    assert verp_owner(params["envelope_sender"]) == ("bounces", 1, TASK_ID)
    assert mail.outbox[0].from_email.endswith("<no-reply@lms.example.com>")


def test_without_verp_a_backend_message_is_left_as_it_was(settings, prepared):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    BatchSender(prepared, task_id=TASK_ID).send(learners(1))
    assert "envelope_sender" not in mail.outbox[0].anymail_test_params
    assert "From" not in mail.outbox[0].extra_headers


def test_through_anymail_the_signed_message_id_travels_as_esp_metadata(settings, prepared):
    """anymail's own test backend (a real AnymailBaseBackend): ESPs return metadata in their
    webhook events, so feedback names the message even where the ESP reports its own ids."""
    from bulk_email.tokens import read_message_id

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    outcomes = send_batch(prepared, learners(2))
    assert [o.status for o in outcomes] == [SENT, SENT]
    for message, user_id in zip(mail.outbox, (1, 2), strict=True):
        message_id = message.anymail_test_params["metadata"][sending.ESP_METADATA_KEY]
        assert message_id == message.extra_headers["Message-ID"]
        assert read_message_id(message_id) == (prepared.email_id, user_id)
