"""The SMTP session: one connection per worker process (and thread), kept across batches,
sending pre-built bytes with PIPELINING (one round trip a message) when the server offers it.

``get_session`` returns this process's session for the current settings; ``close_session``
QUITs it (tasks.py calls it when a worker process shuts down; tests call it too). Replies
are read here (``read_reply``), in a third of smtplib's time, and refusals turned into the
errors ``smtplib.SMTP.sendmail`` raises, so classification does not care which path sent.
"""

import os
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from .. import app_settings

# A reused connection idle this long is checked with NOOP first (servers drop idle clients).
IDLE_CHECK_SECONDS = 10.0
DEFAULT_TIMEOUT = 60


@dataclass(frozen=True)
class SMTPConfig:
    host: str
    port: int
    username: str
    password: str
    use_tls: bool
    use_ssl: bool
    timeout: float
    max_messages: int  # per connection: MAX_MESSAGES_PER_CONNECTION (read here, not per message)

    @classmethod
    def from_settings(cls) -> "SMTPConfig":
        return cls(
            host=settings.EMAIL_HOST,
            port=int(settings.EMAIL_PORT),
            username=settings.EMAIL_HOST_USER or "",
            password=settings.EMAIL_HOST_PASSWORD or "",
            use_tls=bool(settings.EMAIL_USE_TLS),
            use_ssl=bool(getattr(settings, "EMAIL_USE_SSL", False)),
            timeout=getattr(settings, "EMAIL_TIMEOUT", None) or DEFAULT_TIMEOUT,
            max_messages=app_settings.get("MAX_MESSAGES_PER_CONNECTION"),
        )


class Content(Protocol):
    """A message as the session sends it: whole for smtplib's ``sendmail``, or dot-stuffed
    already for the pipelined DATA (rendering stuffs the literal parts once per email)."""

    def as_bytes(self) -> bytes: ...

    def as_stuffed_bytes(self) -> bytes: ...


@dataclass
class Pending:
    """A message past its DATA (the server answered 354) whose content is not sent yet."""

    tag: object
    content: bytes  # dot-stuffed, with the closing "."


# (the caller's tag for a message, the error that refused it or None when it was accepted)
Result = tuple[object, BaseException | None]


class SMTPSession:
    """One SMTP connection, opened on first use and reopened when it has to be: after a 421
    or a disconnect (the failing send closes it), after MAX_MESSAGES_PER_CONNECTION messages,
    or when a NOOP after an idle spell finds it dead.

    With PIPELINING (RFC 2920) a message costs one round trip: its envelope (MAIL, RCPT,
    DATA) goes out in one write together with the previous message's content, whose reply
    comes back with the envelope's. So ``submit`` returns the previous message's result, and
    ``flush`` the last one's. Without PIPELINING each message is sent whole, as smtplib does."""

    def __init__(self, config: SMTPConfig):
        self.config = config
        self.connection: smtplib.SMTP | None = None
        self.sent_on_connection = 0
        self.last_used = 0.0
        self.pending: Pending | None = None

    def open(self) -> smtplib.SMTP:
        config = self.config
        smtp_class = smtplib.SMTP_SSL if config.use_ssl else smtplib.SMTP
        connection = smtp_class(config.host, config.port, timeout=config.timeout)
        try:
            connection.ehlo()
            if config.use_tls:
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo()
            if config.username:
                connection.login(config.username, config.password)
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        self.abort()
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()

    def used_up(self) -> bool:
        return self.sent_on_connection >= self.config.max_messages

    def idle(self) -> bool:
        return time.monotonic() - self.last_used >= IDLE_CHECK_SECONDS

    def _is_alive(self) -> bool:
        try:
            return self.connection.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def ready(self) -> smtplib.SMTP:
        """An open connection, reopened when used up or found dead. Never called with a
        message pending: a NOOP or a QUIT would land in its content."""
        if self.connection is not None and (
            self.used_up() or (self.idle() and not self._is_alive())
        ):
            self.close()
        if self.connection is None:
            self.connection = self.open()
            self.sent_on_connection = 0
        return self.connection

    def supports_smtputf8(self) -> bool:
        return self.ready().has_extn("smtputf8")

    def submit(self, tag, from_addr: str, to_addr: str, content: "Content", *, smtputf8: bool):
        """Send one message; the results that became known, in the order submitted."""
        results = self.flush() if self.used_up() or self.idle() else []
        try:
            connection = self.connection if self.pending else self.ready()
        except Exception as error:  # opening fails the same ways as sending
            return [*results, (tag, error)]
        if not connection.has_extn("pipelining"):
            error = self.send_whole(connection, from_addr, to_addr, content.as_bytes(), smtputf8)
            return [*results, (tag, error)]
        return results + self.send_pipelined(connection, tag, from_addr, to_addr, content, smtputf8)

    def send_pipelined(
        self, connection, tag, from_addr, to_addr, content, smtputf8
    ) -> list[Result]:
        carried, self.pending = self.pending, None
        try:
            head = carried.content if carried else b""
            connection.send(head + envelope(from_addr, to_addr, smtputf8))
            replies = read_replies(connection, 4 if carried else 3)
        except Exception as error:  # the session's state is unknown: both fail with it
            self.drop()
            return [(carried.tag, error), (tag, error)] if carried else [(tag, error)]
        finally:
            self.last_used = time.monotonic()
        results = [(carried.tag, data_refusal(replies.pop(0)))] if carried else []
        refusal = envelope_refusal(replies, from_addr, to_addr)
        if refusal is not None:
            self.end_refused_transaction(connection, replies)
            return [*results, (tag, refusal)]
        self.pending = Pending(tag, terminated(content.as_stuffed_bytes()))
        self.sent_on_connection += 1
        return results

    def flush(self) -> list[Result]:
        """Send the pending message's content; its result (none when nothing is pending)."""
        carried, self.pending = self.pending, None
        if carried is None:
            return []
        try:
            self.connection.send(carried.content)
            code, text = read_reply(self.connection)
        except Exception as error:
            self.drop()
            return [(carried.tag, error)]
        finally:
            self.last_used = time.monotonic()
        if code == 421:
            self.drop()
        return [(carried.tag, data_refusal((code, text)))]

    def abort(self) -> None:
        """Give up the pending message: closing the connection is the only way to cancel a
        message past its DATA (sending nothing more would leave the server waiting)."""
        if self.pending is not None:
            self.pending = None
            self.drop()

    def send_whole(self, connection, from_addr, to_addr, data, smtputf8) -> BaseException | None:
        options = ["SMTPUTF8"] if smtputf8 else []
        try:
            connection.sendmail(from_addr, [to_addr], data, mail_options=options)
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as error:
            # smtplib has RSET the transaction: the connection stays, unless the server closed it.
            if getattr(error, "smtp_code", None) == 421 or connection.sock is None:
                self.drop()
            return error
        except Exception as error:  # disconnects, timeouts, resets: the session state is unknown
            self.drop()
            return error
        finally:
            self.sent_on_connection += 1
            self.last_used = time.monotonic()
        return None

    def end_refused_transaction(self, connection, replies) -> None:
        """After a refused MAIL, RCPT or DATA: RSET, as sendmail does; or hang up when the
        server is closing or sits in DATA (a 354 after a refusal), where RSET cannot help."""
        if any(code in (421, 354) for code, _ in replies) or connection.sock is None:
            self.drop()
            return
        try:
            connection.rset()
        except (smtplib.SMTPException, OSError):
            self.drop()

    def drop(self) -> None:
        """Forget the connection without a QUIT (it is broken or the server closed it)."""
        self.pending = None
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close()


def envelope(from_addr: str, to_addr: str, smtputf8: bool) -> bytes:
    """MAIL, RCPT and DATA in one write (RFC 2920 lets DATA end a group)."""
    option = " SMTPUTF8" if smtputf8 else ""
    commands = f"MAIL FROM:<{from_addr}>{option}\r\nRCPT TO:<{to_addr}>\r\nDATA\r\n"
    return commands.encode("utf-8" if smtputf8 else "ascii")


def envelope_refusal(replies, from_addr: str, to_addr: str) -> smtplib.SMTPException | None:
    """The error ``SMTP.sendmail`` raises for the same replies, so classification does not
    care which path sent; None when the server waits for the content (354)."""
    mail, rcpt, data = replies
    if mail[0] != 250:
        return smtplib.SMTPSenderRefused(*mail, from_addr)
    if rcpt[0] not in (250, 251):
        return smtplib.SMTPRecipientsRefused({to_addr: rcpt})
    if data[0] != 354:
        return smtplib.SMTPDataError(*data)
    return None


def data_refusal(reply: tuple[int, bytes]) -> smtplib.SMTPDataError | None:
    """The content's reply: None when accepted (250)."""
    return None if reply[0] == 250 else smtplib.SMTPDataError(*reply)


def terminated(content: bytes) -> bytes:
    return content + (b"" if content.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def read_replies(connection: smtplib.SMTP, count: int) -> list[tuple[int, bytes]]:
    """``count`` replies; once the server hangs up, the replies it never sent read as 421."""
    replies = []
    for _ in range(count):
        try:
            replies.append(read_reply(connection))
        except smtplib.SMTPServerDisconnected:
            if not replies:
                raise
            replies.append((421, b"Connection closed"))
    return replies


def read_reply(connection: smtplib.SMTP) -> tuple[int, bytes]:
    """One reply, as ``smtplib.SMTP.getreply`` reads it, in a third of its time (it runs four
    times a message): the lines from the session's buffered reader, the code from the last."""
    lines = []
    while True:
        try:
            line = connection.file.readline(smtplib._MAXLINE + 1)
        except OSError as error:
            connection.close()
            raise smtplib.SMTPServerDisconnected(
                f"Connection unexpectedly closed: {error}"
            ) from error
        if not line:
            connection.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > smtplib._MAXLINE:
            connection.close()
            raise smtplib.SMTPResponseException(500, "Line too long.")
        lines.append(line[4:].strip(b" \t\r\n"))
        if line[3:4] != b"-":
            break
    code = line[:3]
    return (int(code) if code.isdigit() else -1), b"\n".join(lines)


_local = threading.local()


def get_session() -> SMTPSession:
    """This process's (and thread's) session for the current settings, kept across batches."""
    config = SMTPConfig.from_settings()
    session = getattr(_local, "session", None)
    if session is not None and (session.config != config or _local.pid != os.getpid()):
        if _local.pid == os.getpid():
            session.close()
        session = None
    if session is None:
        _local.session, _local.pid = SMTPSession(config), os.getpid()
    return _local.session


def close_session() -> None:
    """QUIT this process's session: when a worker process shuts down (tasks.py connects it to
    celery's ``worker_process_shutdown``), and in tests."""
    session = getattr(_local, "session", None)
    if session is not None and _local.pid == os.getpid():
        session.close()
    _local.session = None
