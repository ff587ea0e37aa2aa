"""Per recipient: the prepared message with one person's values filled in, and its bytes.

This runs once per message sent, so it does as little as it can: the name, user id and
unsubscribe token go into the slots ``prepare`` left, and ``RenderedMessage.as_bytes()``
joins pre-encoded pieces; only what differs per recipient is encoded. No database access.

With ``FEEDBACK_DOMAIN`` set and the send's task known, each message also carries its own
signed feedback addresses (tokens.py): the envelope sender ``bounces+TOKEN@`` (VERP: a
bounce names the user and task it is about) and the List-Unsubscribe mailto
``unsubscribe+TOKEN@``. Without them (no domain, or a preview, which has no task) the
envelope sender is the From address and List-Unsubscribe has the https URL alone: no mailto
is advertised unless something reads it.
"""

import html
import secrets
import time
from dataclasses import dataclass, field
from email.utils import formatdate

from django.core.mail import EmailMultiAlternatives

from ..lms import Recipient, derived_anonymous_id
from ..tokens import BOUNCE, UNSUBSCRIBE, feedback_address, make_token
from ..tokens import make_message_id as make_signed_message_id
from .dkim import dkim_sign
from .headers import (
    CRLF,
    encode_address,
    encode_header_value,
    idna_address,
    one_line,
    plain_address,
    refuse_header_injection,
)
from .mime import (
    BULK_HEADERS,
    UNSUBSCRIBE_TOKEN,
    USER_DATABASE_ID,
    USER_EMAIL,
    USER_FULLNAME,
    USER_ID,
    dot_stuffed,
)
from .prepare import PreparedMessage

_date_now = (0, "")  # (a second, its Date header): swapped whole, so threads never see halves


def date_header_now() -> str:
    """The Date header's value for now, formatted once a second rather than once a message
    (``formatdate`` cost as much as a tenth of the rest of a message's rendering)."""
    global _date_now
    second = int(time.time())
    if _date_now[0] != second:
        _date_now = (second, utc_date_header(second))
    return _date_now[1]


def utc_date_header(second: int) -> str:
    """RFC 5322 date-time in UTC with the numeric zone "+0000": "GMT" (``usegmt``) is an
    obsolete zone form, and "-0000" (``localtime=False``) means the zone is unknown."""
    return formatdate(second, localtime=False).removesuffix("-0000") + "+0000"


@dataclass
class RenderedMessage:
    """One recipient's message: the personal values, its parts on demand, the wire bytes."""

    prepared: PreparedMessage
    recipient: Recipient
    to_addr: str
    message_id: str
    subject: str
    list_unsubscribe: str
    envelope_from: str  # SMTP MAIL FROM: the VERP address, else the From address
    values: dict[str, str]  # slot -> value, raw (text part, subject)
    html_values: dict[str, str]  # slot -> value, HTML-escaped
    date: str = field(default_factory=date_header_now)

    @property
    def text(self) -> str:
        return self.prepared.text.fill(self.values)

    @property
    def html(self) -> str:
        return self.prepared.html.fill(self.html_values)

    @property
    def from_addr(self) -> str:
        return self.prepared.from_addr

    @property
    def needs_smtputf8(self) -> bool:
        """A non-ASCII local part can only travel with SMTPUTF8 (RFC 6531)."""
        return not self.to_addr.isascii() or not self.prepared.from_addr.isascii()

    def personal_headers(self) -> bytes:
        prepared = self.prepared
        subject_header = prepared.fixed_subject_header or (
            f"Subject: {encode_header_value(self.subject)}{CRLF}".encode()
        )
        personal = (
            f"To: {encode_address(self.recipient.full_name, self.to_addr)}{CRLF}"
            f"Date: {self.date}{CRLF}"
            f"Message-ID: {self.message_id}{CRLF}"
            f"List-Unsubscribe: {self.list_unsubscribe}{CRLF}"
        )
        return subject_header + personal.encode("utf-8")

    def as_bytes(self) -> bytes:
        """The RFC 5322 message, CRLF line ends, DKIM-signed when configured. The bodies are
        the pre-encoded literals with only this recipient's values encoded in between."""
        message = self._joined(stuffed=False)
        prepared = self.prepared
        return dkim_sign(message, prepared.dkim) + message if prepared.dkim else message

    def as_stuffed_bytes(self) -> bytes:
        """``dot_stuffed(as_bytes())``, what SMTP's DATA carries, without scanning the whole
        message per recipient: the bodies' literals were stuffed once per email, and header
        lines never start with a dot (continuations start with a space)."""
        if self.prepared.dkim:  # the signature is over the unstuffed message
            return dot_stuffed(self.as_bytes())
        return self._joined(stuffed=True)

    def _joined(self, *, stuffed: bool) -> bytes:
        prepared = self.prepared
        return b"".join(
            (
                prepared.fixed_headers,
                self.personal_headers(),
                prepared.text_part_head,
                prepared.text.fill_encoded(self.values, stuffed=stuffed),
                prepared.html_part_head,
                prepared.html.fill_encoded(self.html_values, stuffed=stuffed),
                prepared.closing_boundary,
            )
        )

    def as_email_message(self, connection=None) -> EmailMultiAlternatives:
        """The same message for Django's EmailBackend contract (ESP backends, locmem...)."""
        headers = {
            "Message-ID": self.message_id,
            "Date": self.date,
            "List-Unsubscribe": self.list_unsubscribe.replace(CRLF, ""),
            **BULK_HEADERS,
        }
        message = EmailMultiAlternatives(
            subject=self.subject,
            body=self.text,
            from_email=plain_address(self.prepared.from_name, self.prepared.from_addr),
            to=[plain_address(self.recipient.full_name, self.to_addr)],
            headers=headers,
            connection=connection,
        )
        message.attach_alternative(self.html, "text/html")
        return message


def render_message(
    prepared: PreparedMessage, recipient: Recipient, *, task_id: int | None = None
) -> RenderedMessage:
    """One recipient's message from the prepared one: only the personal parts are filled in.
    ``task_id`` is the send's (the pipeline knows it per batch); None for a preview."""
    token = make_token(recipient.user_id, prepared.course_id)
    name = one_line(recipient.full_name)
    raw = {
        USER_FULLNAME: name,
        USER_ID: anonymous_id(prepared, recipient),
        UNSUBSCRIBE_TOKEN: token,
        USER_EMAIL: recipient.email,
        USER_DATABASE_ID: str(recipient.user_id),
    }
    escaped = {**raw, USER_FULLNAME: html.escape(name), USER_EMAIL: html.escape(recipient.email)}
    to_addr = idna_address(recipient.email)
    refuse_header_injection(to=to_addr)
    mailto = unsubscribe_mailto(prepared, recipient.user_id, task_id)
    return RenderedMessage(
        prepared=prepared,
        recipient=recipient,
        to_addr=to_addr,
        message_id=make_message_id(prepared, recipient),
        subject=prepared.subject.fill(raw),
        list_unsubscribe=list_unsubscribe(prepared, token, mailto),
        envelope_from=envelope_sender(prepared, recipient.user_id, task_id),
        values=raw,
        html_values=escaped,
    )


def anonymous_id(prepared: PreparedMessage, recipient: Recipient) -> str:
    """%%USER_ID%%: the anonymous per-course id the LMS gave for the batch, else the derived
    one (a preview, a test to oneself); nothing computed when the message has no %%USER_ID%%."""
    if recipient.anonymous_id or not prepared.uses_anonymous_id:
        return recipient.anonymous_id
    return derived_anonymous_id(prepared.course_id, recipient.user_id)


def envelope_sender(prepared: PreparedMessage, user_id: int, task_id: int | None) -> str:
    """VERP: ``bounces+TOKEN@FEEDBACK_DOMAIN``, so a bounce says whose message it was by the
    address it comes back to, signed, never by trusting its text. Else the From address."""
    if task_id is None or not prepared.feedback_domain:
        return prepared.from_addr
    return feedback_address(BOUNCE, user_id, task_id, prepared.feedback_domain)


def unsubscribe_mailto(prepared: PreparedMessage, user_id: int, task_id: int | None) -> str:
    """``mailto:unsubscribe+TOKEN@FEEDBACK_DOMAIN?subject=unsubscribe``; "" without a domain
    or a task: an address nothing reads must not be advertised."""
    if task_id is None or not prepared.feedback_domain:
        return ""
    address = feedback_address(UNSUBSCRIBE, user_id, task_id, prepared.feedback_domain)
    return f"mailto:{address}?subject=unsubscribe"


def make_message_id(prepared: PreparedMessage, recipient: Recipient) -> str:
    """The same (email, recipient) always gets the same Message-ID, signed (tokens.py), so
    the one copy a worker crash may send twice is one message to clients that de-duplicate
    by it, and feedback quoting it names its email and learner. Unsaved emails (previews)
    get a random one."""
    if prepared.email_id is None:
        return f"<{secrets.token_hex(8)}.0.{recipient.user_id}@{prepared.message_id_domain}>"
    return make_signed_message_id(prepared.email_id, recipient.user_id, prepared.message_id_domain)


def list_unsubscribe(prepared: PreparedMessage, token: str, mailto: str) -> str:
    """RFC 8058 one-click https URL first, then the mailto (RFC 2369) when there is one,
    folded between them."""
    one_click = f"<{prepared.one_click_url.replace(UNSUBSCRIBE_TOKEN, token)}>"
    return f"{one_click},{CRLF} <{mailto}>" if mailto else one_click
