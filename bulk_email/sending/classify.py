"""Classification: every way a send can end, sorted into what the pipeline does about it.

A recipient's message is SENT, or refused for good (PERMANENT: that recipient failed, the
batch goes on). A failure that is not the recipient's own stops the batch: TRANSIENT (4xx,
timeouts, disconnects: back off, send the rest later) or CONFIGURATION (auth, TLS, no
server: stop and show why). ``OutcomeKind`` is the one list of these kinds: classification
returns them and the pipeline records them.

Exceptions are sorted by their types only. A transport knows its own library's errors and
names those that refuse one recipient (``Transport.permanent_errors``), e.g. django-anymail's
``AnymailRecipientsRefused``; ``classify`` takes them as ``permanent``.
"""

import enum
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass

from ..exceptions import SendError, SMTPConfigurationError, TransientSendError
from ..lms import Recipient


class OutcomeKind(enum.Enum):
    SENT = "sent"
    PERMANENT = "permanent"  # refused for this recipient: it failed, the batch goes on
    TRANSIENT = "transient"  # 4xx, timeouts, disconnects: back off, retry the rest
    CONFIGURATION = "configuration"  # the server cannot be used as configured: stop


@dataclass(frozen=True)
class Outcome:
    """What happened to one recipient."""

    recipient: Recipient
    status: OutcomeKind  # SENT, or PERMANENT for a recipient that failed
    message_id: str = ""
    code: int | None = None
    reason: str = ""

    @property
    def user_id(self) -> int:
        return self.recipient.user_id


@dataclass(frozen=True)
class Verdict:
    """A failure, classified."""

    kind: OutcomeKind  # PERMANENT, TRANSIENT or CONFIGURATION
    code: int | None
    reason: str


AUTH_TEXT = re.compile(r"auth", re.IGNORECASE)
AUTH_CODES = {454, 530, 534, 535, 538}


def classify_reply(code: int, text: str) -> OutcomeKind:
    """The kind of an SMTP reply code (with its text, which tells 454 throttling from auth)."""
    if code == 535 or (code in AUTH_CODES and AUTH_TEXT.search(text)):
        return OutcomeKind.CONFIGURATION
    if 500 <= code < 600:
        return OutcomeKind.PERMANENT
    return OutcomeKind.TRANSIENT


def _reply_text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _classify_smtp_reply(error: smtplib.SMTPException) -> Verdict:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, raw = next(iter(error.recipients.values()))
    else:
        code, raw = error.smtp_code, error.smtp_error
    text = _reply_text(raw)
    kind = classify_reply(code, text)
    if isinstance(error, smtplib.SMTPSenderRefused) and kind is OutcomeKind.PERMANENT:
        # A refused From address fails every message alike: a configuration problem.
        reason = f"The mail server refuses the sender: {code} {text}"
        return Verdict(OutcomeKind.CONFIGURATION, code, reason)
    if isinstance(error, smtplib.SMTPAuthenticationError) or kind is OutcomeKind.CONFIGURATION:
        reason = f"The mail server refused the login: {code} {text}"
        return Verdict(OutcomeKind.CONFIGURATION, code, reason)
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


def classify(error: BaseException, *, permanent: tuple[type[BaseException], ...] = ()) -> Verdict:
    """Sort any failure of a send: PERMANENT for this recipient, TRANSIENT, or CONFIGURATION.

    ``permanent``: the exception types a transport knows refuse the one recipient. They are
    looked at first (the transport knows its errors better than the generic rules below);
    anything else unknown is TRANSIENT, so a send is retried rather than a recipient lost."""
    if permanent and isinstance(error, permanent):
        return Verdict(OutcomeKind.PERMANENT, None, str(error))
    if isinstance(error, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
        return _classify_smtp_reply(error)
    if isinstance(error, smtplib.SMTPServerDisconnected) and "timed out" in str(error):
        # smtplib reports a reply that never came as a disconnect
        error = TimeoutError(str(error))
    for kind, error_list in (
        (OutcomeKind.CONFIGURATION, CONFIGURATION_ERRORS),
        (OutcomeKind.TRANSIENT, TRANSIENT_ERRORS),
    ):
        for error_type, reason in error_list:
            if isinstance(error, error_type):
                return Verdict(kind, None, f"{reason}: {error}")
    return Verdict(OutcomeKind.TRANSIENT, None, f"{type(error).__name__}: {error}")


def stop_error(verdict: Verdict, *, outcomes: list[Outcome], unsent: list[Recipient]) -> SendError:
    """The error that stops a batch on a TRANSIENT or CONFIGURATION verdict, carrying the
    outcomes so far (to record) and the recipients still owed the message (to retry)."""
    if verdict.kind is OutcomeKind.CONFIGURATION:
        error_class = SMTPConfigurationError
    else:
        error_class = TransientSendError
    return error_class(verdict.reason, code=verdict.code, outcomes=outcomes, unsent=unsent)
