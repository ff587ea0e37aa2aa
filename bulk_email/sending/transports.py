"""Transports: how one recipient's rendered message reaches the mail server or the ESP.

Every transport has the same small contract (``Transport``): ``deliver(message)`` returns
the results that became known, in the order the messages were delivered (with PIPELINING a
message's result is known when the next one goes out), ``flush()`` the ones still to come,
``finish()`` ends the batch, and ``permanent_errors()`` names the transport's own exception
types that refuse one recipient, for classification (never their names: their types).

- ``SMTPTransport`` (Django's SMTP backend configured): pre-built bytes straight into this
  process's SMTP session (session.py), which survives across batches.
- ``BackendTransport`` (any other ``EMAIL_BACKEND``: an ESP's API through django-anymail,
  locmem in tests...): Django's EmailBackend contract, one open connection per batch.

The envelope sender (MAIL FROM, the Return-Path at the receiving end) is the message's
``envelope_from``: its VERP address when FEEDBACK_DOMAIN is set, else the From address.
"""

import smtplib
from functools import cache
from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.utils.module_loading import import_string

from .classify import Verdict, classify
from .session import Content, Result, get_session

DJANGO_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# The anymail metadata key that carries a message's signed Message-ID: ESPs return metadata
# in their webhook events, also those (Postmark) that report only their own message ids.
ESP_METADATA_KEY = "bulk_email_message_id"


class Message(Content, Protocol):
    """What a transport sends: one recipient's message, rendered (rendering's
    RenderedMessage is one), its bytes as the session sends them (``Content``) or a Django
    EmailMessage. Sending needs nothing else of rendering."""

    @property
    def to_addr(self) -> str: ...

    @property
    def from_addr(self) -> str: ...

    @property
    def envelope_from(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    @property
    def needs_smtputf8(self) -> bool: ...

    def as_email_message(self, connection=None) -> EmailMessage: ...


class Transport:
    """Delivers one batch's messages; results are ``(message, error or None)`` pairs."""

    def deliver(self, message: Message) -> list[Result]:
        """Send one message; the results that became known, in delivery order."""
        raise NotImplementedError

    def flush(self) -> list[Result]:
        """The results still to come (none unless deliveries are pipelined)."""
        return []

    def finish(self) -> None:
        """The batch is over, done or stopped."""

    def permanent_errors(self) -> tuple[type[BaseException], ...]:
        """Hook: this transport's exception types that refuse the one recipient (PERMANENT)."""
        return ()

    def classify(self, error: BaseException) -> Verdict:
        return classify(error, permanent=self.permanent_errors())


class NeedsSMTPUTF8(Exception):
    """The address needs SMTPUTF8 and the server does not offer it."""


class SMTPTransport(Transport):
    """Pre-built bytes straight into the process's SMTP session."""

    def __init__(self):
        self.session = get_session()

    def deliver(self, message: Message) -> list[Result]:
        """Send one message; the results that became known, in order (see SMTPSession)."""
        smtputf8, results = message.needs_smtputf8, []
        if smtputf8:
            results = self.session.flush()
            try:
                offered = self.session.supports_smtputf8()
            except Exception as error:
                return [*results, (message, error)]
            if not offered:
                reason = f"{message.to_addr} needs SMTPUTF8, which the mail server does not offer."
                return [*results, (message, NeedsSMTPUTF8(reason))]
        return results + self.session.submit(
            message, message.envelope_from, message.to_addr, message, smtputf8=smtputf8
        )

    def flush(self) -> list[Result]:
        return self.session.flush()

    def finish(self) -> None:
        """The session stays open for the next batch, with nothing pending."""
        self.session.abort()

    def permanent_errors(self) -> tuple[type[BaseException], ...]:
        return (NeedsSMTPUTF8,)


class BackendTransport(Transport):
    """Any Django EmailBackend, one EmailMessage per recipient, one open connection per batch."""

    def __init__(self):
        self.connection = get_connection(fail_silently=False)
        self.connection.open()

    def deliver(self, message: Message) -> list[Result]:
        try:
            if not self.connection.send_messages([self.email_message(message)]):
                raise smtplib.SMTPDataError(554, b"The email backend did not send the message.")
        except Exception as error:  # every failure is classified, none escapes unsorted
            return [(message, error)]
        return [(message, None)]

    def email_message(self, message: Message) -> EmailMessage:
        """The Django EmailMessage, its envelope sender set when it is not the From address:
        anymail takes it as ``envelope_sender`` (ESPs without a custom envelope sender, e.g.
        Postmark or SendGrid, refuse it with AnymailUnsupportedFeature: leave FEEDBACK_DOMAIN
        unset there and use the ESP's webhooks); Django's own backends use ``from_email`` as
        MAIL FROM, so it becomes the VERP address and the From header is given explicitly.
        Through anymail, the signed Message-ID also travels as metadata (ESP_METADATA_KEY),
        which the ESP's webhook events return (feedback/esp.py)."""
        email = message.as_email_message(self.connection)
        through_anymail = isinstance(self.connection, anymail_backends())
        if through_anymail:
            metadata = getattr(email, "metadata", None) or {}
            email.metadata = {**metadata, ESP_METADATA_KEY: message.message_id}
        envelope_from = message.envelope_from
        if envelope_from == message.from_addr:
            return email
        if through_anymail:
            email.envelope_sender = envelope_from
        else:
            email.extra_headers["From"], email.from_email = email.from_email, envelope_from
        return email

    def finish(self) -> None:
        self.connection.close()

    def permanent_errors(self) -> tuple[type[BaseException], ...]:
        return anymail_recipient_errors()


@cache
def anymail_recipient_errors() -> tuple[type[BaseException], ...]:
    """django-anymail's errors for an address the ESP refused or found invalid: that message
    can never reach it. Empty without anymail installed (then nothing raises them)."""
    try:
        from anymail.exceptions import AnymailInvalidAddress, AnymailRecipientsRefused
    except ImportError:
        return ()
    return (AnymailRecipientsRefused, AnymailInvalidAddress)


@cache
def anymail_backends() -> tuple[type, ...]:
    """django-anymail's backend base class (empty without anymail installed)."""
    try:
        from anymail.backends.base import AnymailBaseBackend
    except ImportError:
        return ()
    return (AnymailBaseBackend,)


def get_transport() -> Transport:
    """SMTPTransport for Django's own SMTP backend, BackendTransport for any other.

    Only that exact class takes the direct path. A subclass of it goes through Django's
    contract like any other backend: a subclass exists to change how the backend connects or
    sends (OAuth2 or another login, a TLS context, logging...), which the direct session
    would silently bypass. It is handed Django EmailMessages, as an ESP's backend is (at a
    higher CPU cost a message)."""
    if import_string(settings.EMAIL_BACKEND) is DjangoSMTPBackend:
        return SMTPTransport()
    return BackendTransport()
