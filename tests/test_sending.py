"""Sending against a real SMTP server (the aiosmtpd sink in lms_stub/smtp_sink.py): every reply
class, connection reuse, SMTPUTF8, Django's EmailBackend path and the shared rate limit."""

import email
import io
import smtplib
import threading
import time
from email import policy

import pytest
from django.core import mail

from bulk_email import sending
from bulk_email.exceptions import (
    BulkEmailConfigurationError,
    SMTPConfigurationError,
    TransientSendError,
)
from bulk_email.rendering import Recipient
from bulk_email.sending import (
    CONFIGURATION,
    FAILED,
    PERMANENT,
    SENT,
    TRANSIENT,
    LocalRateLimiter,
    RedisRateLimiter,
    classify,
    classify_reply,
    send_batch,
)
from lms_stub.smtp_sink import Fault, SMTPSink, free_port
from tests.messages import EmailData, prepare


def learners(count: int, start: int = 1) -> list[Recipient]:
    return [
        Recipient(n, f"learner{n}@example.com", f"Learner {n}") for n in range(start, start + count)
    ]


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def smtp_sink(request):
    """Every test here runs against a server that offers PIPELINING (the two-round-trip path)
    and one that does not (smtplib's sendmail)."""
    with SMTPSink(pipelining=request.param) as sink:
        yield sink


@pytest.fixture
def prepared():
    return prepare()


# --- Delivery and connection reuse -------------------------------------------------------------


def test_each_recipient_gets_one_message_and_an_outcome(smtp_settings, smtp_sink, prepared):
    outcomes = send_batch(prepared, learners(3))
    assert [o.status for o in outcomes] == [SENT] * 3
    received = smtp_sink.wait_for(3)
    assert [m.rcpt_tos for m in received] == [[f"learner{n}@example.com"] for n in (1, 2, 3)]
    assert [m.parsed()["Message-ID"] for m in received] == [o.message_id for o in outcomes]
    assert received[0].parsed()["To"].addresses[0].display_name == "Learner 1"


def test_one_connection_serves_several_batches(smtp_settings, smtp_sink, prepared):
    send_batch(prepared, learners(2))
    send_batch(prepared, learners(2, start=3))
    assert smtp_sink.connections == 1


def test_the_session_reconnects_after_max_messages_per_connection(
    smtp_settings, smtp_sink, prepared, settings
):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_MESSAGES_PER_CONNECTION": 2}
    send_batch(prepared, learners(5))
    assert smtp_sink.connections == 3


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
    assert [o.status for o in outcomes] == [SENT, FAILED, SENT]
    assert outcomes[1].code == int(reply[:3])
    assert reply[4:] in outcomes[1].reason
    assert len(smtp_sink.messages) == 2


def test_a_5xx_after_data_fails_that_message(smtp_settings, smtp_sink, prepared):
    smtp_sink.faults.append(Fault("DATA", "554 5.7.1 Message rejected as spam", times=1))
    outcomes = send_batch(prepared, learners(2))
    assert [(o.status, o.code) for o in outcomes] == [(FAILED, 554), (SENT, None)]


def test_a_malformed_address_fails_only_that_recipient(smtp_settings, prepared):
    outcomes = send_batch(prepared, [Recipient(1, "nobody"), *learners(1, start=2)])
    assert [o.status for o in outcomes] == [FAILED, SENT]
    assert "not an email address" in outcomes[0].reason


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
    assert [o.status for o in outcomes] == [FAILED, SENT]
    assert "SMTPUTF8" in outcomes[0].reason


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


def test_a_transient_error_is_a_connection_error_for_callers():
    assert issubclass(TransientSendError, ConnectionError)


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


def test_unknown_backend_errors_are_transient_and_refused_recipients_permanent():
    class AnymailRecipientsRefused(Exception):
        pass

    assert classify(AnymailRecipientsRefused("bounced before")).kind == PERMANENT
    assert classify(RuntimeError("ESP API 503")).kind == TRANSIENT
    assert classify(smtplib.SMTPServerDisconnected("gone")).kind == TRANSIENT


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


# --- The shared send-rate limit ----------------------------------------------------------------


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def test_the_local_limiter_paces_sends():
    limiter = LocalRateLimiter(rate=100)
    elapsed = timed(lambda: [limiter.wait() for _ in range(21)])
    assert 0.19 <= elapsed < 0.5


def test_send_batch_respects_max_send_rate(smtp_settings, prepared, settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_SEND_RATE": 50, "REDIS_URL": None}
    settings.CELERY_BROKER_URL = "memory://"
    elapsed = timed(lambda: send_batch(prepared, learners(6)))
    assert elapsed >= 0.1


@pytest.mark.redis
def test_the_redis_limiter_is_shared_by_all_workers(redis_url):
    key = f"bulk_email:test_rate:{time.time_ns()}"
    workers = [RedisRateLimiter(100, redis_url, key=key) for _ in range(3)]
    threads = [threading.Thread(target=lambda w=w: [w.wait() for _ in range(10)]) for w in workers]

    def run():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    elapsed = timed(run)  # 30 sends at 100/s across three "workers": at least 0.29 s
    assert 0.28 <= elapsed < 1.0


@pytest.mark.redis
def test_the_redis_limiter_defaults_to_the_celery_broker(settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_SEND_RATE": 10, "REDIS_URL": None}
    assert isinstance(sending.get_rate_limiter(), RedisRateLimiter)


def test_without_redis_the_limiter_falls_back_to_local_limiting():
    limiter = RedisRateLimiter(100, f"redis://127.0.0.1:{free_port()}/0")
    elapsed = timed(lambda: [limiter.wait() for _ in range(11)])
    assert elapsed >= 0.09


def test_with_pipelining_a_message_costs_one_write(smtp_settings, smtp_sink, prepared, monkeypatch):
    send_batch(prepared, learners(1))  # the session is open
    writes = []
    original = smtplib.SMTP.send
    monkeypatch.setattr(smtplib.SMTP, "send", lambda self, s: writes.append(s) or original(self, s))
    send_batch(prepared, learners(3))
    if smtp_sink.pipelining:  # envelope 1; content 1 + envelope 2; ...; content 3
        assert len(writes) == 4 and writes[1].endswith(b"DATA\r\n")
    else:  # MAIL, RCPT, DATA, content: one write each
        assert len(writes) == 12
    assert len(smtp_sink.wait_for(4)) == 4


def test_a_leading_dot_survives_pipelined_sending(smtp_settings, smtp_sink):
    dotted = prepare(EmailData(html_message="<p>x</p>", text_message=".hidden\n..two"))
    send_batch(dotted, learners(1))
    text = smtp_sink.wait_for(1)[0].parsed().get_body(("plain",)).get_content()
    assert ".hidden" in text and "..two" in text


class BufferedConnection:
    """What read_reply uses of smtplib.SMTP: its buffered reader and close()."""

    def __init__(self, received: bytes):
        self.file = io.BufferedReader(io.BytesIO(received))
        self.closed = False

    def close(self):
        self.closed = True


@pytest.mark.parametrize(
    ("received", "replies"),
    [
        (b"250 2.1.0 Ok\r\n", [(250, b"2.1.0 Ok")]),
        (b"250-first\r\n250-second\r\n250 last\r\n", [(250, b"first\nsecond\nlast")]),
        (b"250 Ok\r\n354 Go ahead\r\n", [(250, b"Ok"), (354, b"Go ahead")]),
        (b"abc nonsense\r\n", [(-1, b"nonsense")]),
    ],
)  # fmt: skip
def test_replies_are_read_as_smtplib_reads_them(received, replies):
    connection = BufferedConnection(received)
    assert [sending.read_reply(connection) for _ in replies] == replies
    smtp = reader(received)
    assert [smtp.getreply() for _ in replies] == replies


def reader(received: bytes) -> smtplib.SMTP:
    """An smtplib.SMTP reading ``received`` (for comparing with its own getreply)."""
    smtp = smtplib.SMTP()
    smtp.file = io.BufferedReader(io.BytesIO(received))
    return smtp


def test_a_hang_up_mid_reply_is_a_disconnection_and_closes():
    connection = BufferedConnection(b"250-first\r\n")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        sending.read_reply(connection)
    assert connection.closed


def test_the_replies_a_server_never_sent_read_as_421_after_a_hang_up():
    connection = BufferedConnection(b"250 Ok\r\n")
    assert sending.read_replies(connection, 3) == [
        (250, b"Ok"), (421, b"Connection closed"), (421, b"Connection closed")
    ]  # fmt: skip
