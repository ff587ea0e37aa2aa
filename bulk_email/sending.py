"""Sending: one SMTP session per worker process, every reply classified, a shared rate limit.

``send_batch(prepared, recipients)`` renders and sends one message per recipient and returns
one ``Outcome`` each (sent with its Message-ID, or failed with the server's code and text).
It raises ``TransientSendError`` (4xx, timeouts, disconnects: back off, retry ``unsent``) or
``SMTPConfigurationError`` (auth, TLS, no server: stop and show ``reason``); both carry the
outcomes so far and the recipients still unsent.

With Django's SMTP backend configured, messages go through a direct smtplib session that
sends pre-built bytes and survives across batches. Any other ``EMAIL_BACKEND`` (an ESP's API
through django-anymail, locmem in tests...) is used through Django's EmailBackend contract.
"""

import logging
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.mail import get_connection

from . import app_settings
from .exceptions import InvalidEmailError, SMTPConfigurationError, TransientSendError
from .rendering import PreparedMessage, Recipient, RenderedMessage, render_message

logger = logging.getLogger(__name__)

DJANGO_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
SENT = "sent"
FAILED = "failed"
PERMANENT = "permanent"
TRANSIENT = "transient"
CONFIGURATION = "configuration"
# A reused connection idle this long is checked with NOOP first (servers drop idle clients).
IDLE_CHECK_SECONDS = 10.0
DEFAULT_TIMEOUT = 60


@dataclass(frozen=True)
class Outcome:
    """What happened to one recipient."""

    recipient: Recipient
    status: str  # SENT or FAILED
    message_id: str = ""
    code: int | None = None
    reason: str = ""

    @property
    def user_id(self) -> int:
        return self.recipient.user_id


# --- Classification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    kind: str  # PERMANENT, TRANSIENT or CONFIGURATION
    code: int | None
    reason: str


AUTH_TEXT = re.compile(r"auth", re.IGNORECASE)
AUTH_CODES = {454, 530, 534, 535, 538}


def classify_reply(code: int, text: str) -> str:
    """The kind of an SMTP reply code (with its text, which tells 454 throttling from auth)."""
    if code == 535 or (code in AUTH_CODES and AUTH_TEXT.search(text)):
        return CONFIGURATION
    if 500 <= code < 600:
        return PERMANENT
    return TRANSIENT


def _reply_text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _classify_smtp_reply(error: smtplib.SMTPException) -> Verdict:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, raw = next(iter(error.recipients.values()))
    else:
        code, raw = error.smtp_code, error.smtp_error
    text = _reply_text(raw)
    kind = classify_reply(code, text)
    if isinstance(error, smtplib.SMTPSenderRefused) and kind == PERMANENT:
        # A refused From address fails every message alike: a configuration problem.
        return Verdict(CONFIGURATION, code, f"The mail server refuses the sender: {code} {text}")
    if isinstance(error, smtplib.SMTPAuthenticationError) or kind == CONFIGURATION:
        return Verdict(CONFIGURATION, code, f"The mail server refused the login: {code} {text}")
    return Verdict(kind, code, f"{code} {text}")


CONFIGURATION_ERRORS: list[tuple[type, str]] = [
    (ConnectionRefusedError, "The mail server refused the connection (is EMAIL_HOST/PORT right?)"),
    (socket.gaierror, "The mail server's host name cannot be resolved (EMAIL_HOST)"),
    (ssl.SSLError, "TLS with the mail server failed"),
    (ssl.CertificateError, "The mail server's TLS certificate is not valid"),
    (smtplib.SMTPNotSupportedError, "The mail server does not support what is configured"),
]
TRANSIENT_ERRORS: list[tuple[type, str]] = [
    (smtplib.SMTPServerDisconnected, "The mail server closed the connection"),
    (TimeoutError, "The mail server did not answer in time"),
    (OSError, "The connection to the mail server failed"),
]


def classify(error: BaseException) -> Verdict:
    """Sort any failure of a send: permanent for this recipient, transient, or configuration."""
    if isinstance(error, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
        return _classify_smtp_reply(error)
    if isinstance(error, smtplib.SMTPServerDisconnected) and "timed out" in str(error):
        # smtplib reports a reply that never came as a disconnect
        error = TimeoutError(str(error))
    for kinds, error_list in ((CONFIGURATION, CONFIGURATION_ERRORS), (TRANSIENT, TRANSIENT_ERRORS)):
        for error_type, reason in error_list:
            if isinstance(error, error_type):
                return Verdict(kinds, None, f"{reason}: {error}")
    if "RecipientsRefused" in type(error).__name__ or "InvalidAddress" in type(error).__name__:
        # e.g. django-anymail's AnymailRecipientsRefused: the ESP refused this address
        return Verdict(PERMANENT, None, str(error))
    return Verdict(TRANSIENT, None, f"{type(error).__name__}: {error}")


# --- The SMTP session ---------------------------------------------------------------------------


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
    """QUIT this process's session (worker shutdown, tests)."""
    session = getattr(_local, "session", None)
    if session is not None and _local.pid == os.getpid():
        session.close()
    _local.session = None


# --- Transports: the direct SMTP path and Django's EmailBackend contract -----------------------


class SMTPTransport:
    """Pre-built bytes straight into the process's SMTP session."""

    def __init__(self):
        self.session = get_session()

    def deliver(self, rendered: RenderedMessage) -> list[Result]:
        """Send one message; the results that became known, in order (see SMTPSession)."""
        smtputf8, results = rendered.needs_smtputf8, []
        if smtputf8:
            results = self.session.flush()
            try:
                offered = self.session.supports_smtputf8()
            except Exception as error:
                return [*results, (rendered, error)]
            if not offered:
                return [*results, (rendered, NeedsSMTPUTF8())]
        from_addr = rendered.prepared.from_addr
        return results + self.session.submit(
            rendered, from_addr, rendered.to_addr, rendered, smtputf8=smtputf8
        )

    def flush(self) -> list[Result]:
        return self.session.flush()

    def finish(self) -> None:
        """The session stays open for the next batch, with nothing pending."""
        self.session.abort()


class BackendTransport:
    """Any Django EmailBackend, one EmailMessage per recipient, one open connection per batch."""

    def __init__(self):
        self.connection = get_connection(fail_silently=False)
        self.connection.open()

    def deliver(self, rendered: RenderedMessage) -> list[Result]:
        try:
            if not self.connection.send_messages([rendered.as_email_message(self.connection)]):
                raise smtplib.SMTPDataError(554, b"The email backend did not send the message.")
        except Exception as error:  # every failure is classified, none escapes unsorted
            return [(rendered, error)]
        return [(rendered, None)]

    def flush(self) -> list[Result]:
        return []

    def finish(self) -> None:
        self.connection.close()


class NeedsSMTPUTF8(Exception):
    """The address needs SMTPUTF8 and the server does not offer it."""


def get_transport() -> SMTPTransport | BackendTransport:
    if settings.EMAIL_BACKEND == DJANGO_SMTP_BACKEND:
        return SMTPTransport()
    return BackendTransport()


# --- Sending a batch ----------------------------------------------------------------------------


class _SendStopped(Exception):
    def __init__(self, verdict: Verdict):
        self.verdict = verdict


def outcome_of(rendered: RenderedMessage, error: BaseException | None) -> Outcome:
    """A delivery's outcome; raises _SendStopped when the failure is not the recipient's own."""
    recipient, message_id = rendered.recipient, rendered.message_id
    if error is None:
        return Outcome(recipient, SENT, message_id=message_id)
    if isinstance(error, NeedsSMTPUTF8):
        reason = f"{rendered.to_addr} needs SMTPUTF8, which the mail server does not offer."
        return Outcome(recipient, FAILED, message_id=message_id, reason=reason)
    verdict = classify(error)
    if verdict.kind != PERMANENT:
        raise _SendStopped(verdict) from error
    return Outcome(recipient, FAILED, message_id, code=verdict.code, reason=verdict.reason)


def stop_error(verdict: Verdict, outcomes: list, unsent: list):
    error_class = SMTPConfigurationError if verdict.kind == CONFIGURATION else TransientSendError
    return error_class(verdict.reason, code=verdict.code, outcomes=outcomes, unsent=unsent)


class OutcomeLog:
    """The outcomes of a batch in recipient order, each passed on as it becomes known."""

    def __init__(self, on_outcome: Callable[[Outcome], None] | None):
        self.outcomes: list[Outcome] = []
        self.on_outcome = on_outcome

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def settle(self, results: list[Result]) -> None:
        for rendered, error in results:
            self.add(outcome_of(rendered, error))


def send_batch(
    prepared: PreparedMessage,
    recipients: Iterable[Recipient],
    *,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Send the prepared email to each recipient, in order; one Outcome per recipient.

    ``on_outcome`` is called with each outcome, in recipient order, as soon as it is known
    (to record progress as it goes): a message's when the next one is sent, or at the end.
    Raises TransientSendError or SMTPConfigurationError with ``outcomes`` and ``unsent``."""
    recipients = list(recipients)
    log = OutcomeLog(on_outcome)
    limiter = get_rate_limiter()
    try:
        transport = get_transport()
    except Exception as error:  # opening a backend fails the same ways as sending
        raise stop_error(classify(error), log.outcomes, recipients) from error
    try:
        for recipient in recipients:
            try:
                rendered = render_message(prepared, recipient)
            except InvalidEmailError as error:
                log.settle(transport.flush())  # the outcomes stay in recipient order
                log.add(Outcome(recipient, FAILED, reason=str(error)))
                continue
            if limiter is not None:
                limiter.wait()
            log.settle(transport.deliver(rendered))
        log.settle(transport.flush())
    except _SendStopped as stopped:
        unsent = recipients[len(log.outcomes) :]  # from the one stopped at, in order
        raise stop_error(stopped.verdict, log.outcomes, unsent) from stopped
    finally:
        transport.finish()
    return log.outcomes


# --- The shared send-rate limit -----------------------------------------------------------------

# GCRA ("virtual scheduling"): the key holds the time at which the bucket is next empty (TAT).
# Each call reserves one slot and returns how long the caller waits for it, in microseconds.
# Redis's own clock is used, so workers on machines with skewed clocks still agree.
RATE_LIMIT_SCRIPT = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
local wait = new_tat - now - burst
if wait < 0 then wait = 0 end
return wait
"""
RATE_LIMIT_KEY = "bulk_email:send_rate"
BURST_MESSAGES = 1  # strict pacing: ESP quotas are per second, a burst would exceed them


class LocalRateLimiter:
    """The same GCRA in this process only: the fallback without Redis."""

    def __init__(self, rate: float, burst: int = BURST_MESSAGES):
        self.interval = 1.0 / rate
        self.burst = burst * self.interval
        self.tat = 0.0
        self.lock = threading.Lock()

    def reserve(self) -> float:
        """Seconds to wait before the next send."""
        with self.lock:
            now = time.monotonic()
            self.tat = max(self.tat, now) + self.interval
            return max(0.0, self.tat - now - self.burst)

    def wait(self) -> None:
        time.sleep(self.reserve())


class RedisRateLimiter:
    """A token bucket in Redis shared by every worker on every machine."""

    def __init__(self, rate: float, url: str, *, key: str = RATE_LIMIT_KEY):
        import redis  # optional dependency (the "redis" extra)

        self.redis_errors = redis.RedisError
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.script = self.client.register_script(RATE_LIMIT_SCRIPT)
        self.key = key
        self.interval_us = int(1_000_000 / rate)
        self.fallback = LocalRateLimiter(rate)

    def reserve(self) -> float:
        burst_us = BURST_MESSAGES * self.interval_us
        try:
            wait_us = self.script(keys=[self.key], args=[self.interval_us, burst_us])
        except (self.redis_errors, OSError) as error:
            logger.warning("Send-rate limit in Redis unavailable (%s): limiting locally.", error)
            return self.fallback.reserve()
        return int(wait_us) / 1_000_000

    def wait(self) -> None:
        time.sleep(self.reserve())


_limiters: dict[tuple, object] = {}


def get_rate_limiter() -> RedisRateLimiter | LocalRateLimiter | None:
    """The limiter for MAX_SEND_RATE (None when unlimited), one per process and settings."""
    rate = app_settings.get("MAX_SEND_RATE")
    if not rate:
        return None
    key = (rate, app_settings.redis_url())
    if key not in _limiters:
        _limiters[key] = RedisRateLimiter(rate, key[1]) if key[1] else LocalRateLimiter(rate)
    return _limiters[key]
