"""The SMTP session: one connection kept across batches, PIPELINING, replies read as smtplib
reads them, QUIT when a worker process shuts down."""

import io
import smtplib

import pytest

from bulk_email import sending
from tests.messages import EmailData, prepare
from tests.sending.batches import learners, send_batch


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


def test_a_worker_process_shutting_down_quits_its_session(smtp_settings, prepared, monkeypatch):
    from celery.signals import worker_process_shutdown

    import bulk_email.tasks  # noqa: F401  (connects the receiver, as a worker's import does)

    send_batch(prepared, learners(1))  # the session is open
    session = sending.get_session()
    assert session.connection is not None
    quits = []
    original = smtplib.SMTP.quit
    monkeypatch.setattr(smtplib.SMTP, "quit", lambda self: quits.append(self) or original(self))
    worker_process_shutdown.send(sender="worker@host", pid=0, exitcode=0)
    assert len(quits) == 1 and session.connection is None
    assert sending.get_session() is not session  # a new one for whatever comes next
