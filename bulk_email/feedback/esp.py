"""ESP webhooks: django-anymail's tracking events (Amazon SES via SNS, SendGrid, Mailgun,
Postmark ...) become FeedbackItems for ``record_feedback``.

What each event does:
  * bounced -> a hard bounce, or a soft one when the ESP says it was temporary (SES
    ``bounceType`` Transient or Undetermined, Postmark ``SoftBounce``, a 4.x.x status);
    a verdict on the message or the sender (SendGrid's "blocked", Mailgun's "espblock", SES's
    ContentRejected, Postmark's SpamNotification and VirusNotification) is recorded as
    ignored, and Mailgun's refusals of addresses that complained or unsubscribed are those;
  * deferred -> a soft bounce (Mailgun's temporary failures, SendGrid's deferrals);
  * complained -> a complaint;
  * unsubscribed -> an unsubscribe (the ESP's own link or list-unsubscribe handling);
  * rejected -> what the ESP's reason says: an address it knows bounced or is invalid is a
    hard bounce, one it knows complained a complaint, one it knows unsubscribed an
    unsubscribe; blocked, timed out or unexplained rejections change nothing;
  * anything else (queued, sent, delivered, opened, clicked ...) is not feedback: nothing.

Whose it is: the ESP is authenticated (basic auth, Mailgun's signature), so the address it
names is believed, and an address is all a suppression needs. The learner and the send only
come from our signed Message-ID (``tokens.read_message_id``), wherever the ESP hands it back:
its ``message_id`` (Mailgun, SendGrid's ``smtp-id``), the original headers (SES with
"include original headers"), or the metadata key ``METADATA_KEY`` (set on every message sent
through an anymail backend). A Message-ID that does not verify is ignored and the event is
attributed by its address alone: never to a task, never opting anyone out.

This module reads events by duck typing; it never imports anymail (an optional extra).
"""

import hashlib
import json
import re
from collections.abc import Iterable, Mapping

from ..sending import ESP_METADATA_KEY
from ..tokens import read_message_id
from .messages import ProcessResult, _latest_task_of, process_message
from .record import (
    COMPLAINT,
    HARD_BOUNCE,
    IGNORED,
    SOFT_BOUNCE,
    UNSUBSCRIBE,
    FeedbackItem,
    record_feedback,
)

# The anymail metadata key that carries a message's signed Message-ID back in ESP events.
METADATA_KEY = ESP_METADATA_KEY

# anymail's EventType and RejectReason values (strings; anymail.signals defines them).
BOUNCED, DEFERRED, COMPLAINED = "bounced", "deferred", "complained"
UNSUBSCRIBED, REJECTED = "unsubscribed", "rejected"
REJECTED_KINDS = {
    "bounced": HARD_BOUNCE,
    "invalid": HARD_BOUNCE,
    "spam": COMPLAINT,
    "unsubscribed": UNSUBSCRIBE,
}
EVENT_KINDS = {DEFERRED: SOFT_BOUNCE, COMPLAINED: COMPLAINT, UNSUBSCRIBED: UNSUBSCRIBE}
# A "bounced" event that is about the message or the sender, not the address, or that
# reports an earlier state of the address (the ESP refused to send to it).
# SendGrid: a bounce of type "blocked" (its Blocks: "an issue with the message itself rather
# than with the recipient's address"; SendGrid itself does not suppress them).
SENDGRID_BOUNCE_TYPE_KINDS = {"blocked": IGNORED}
# SendGrid: a drop of an address on its spam reports list (anymail: an unexplained rejection).
SENDGRID_DROP_REASON_KINDS = {"spam reporting address": COMPLAINT}
# Mailgun: a permanent failure's reason; "suppress-bounce" is a hard bounce as it stands.
MAILGUN_REASON_KINDS = {
    "suppress-complaint": COMPLAINT,
    "suppress-unsubscribe": UNSUBSCRIBE,
    "espblock": IGNORED,
}
# SES: transient bounces whose subtype says the receiver refused the content.
SES_BOUNCE_SUBTYPE_KINDS = {"ContentRejected": IGNORED, "AttachmentRejected": IGNORED}
# Postmark: a "SpamNotification" is a filter's verdict on the message (anymail calls it a
# complaint; the person did not complain) and a "VirusNotification" is about the message.
POSTMARK_TYPE_KINDS = {"SpamNotification": IGNORED, "VirusNotification": IGNORED}
# SES bounceType values that are not final (SES: "Undetermined" = it could not tell).
SES_TEMPORARY_BOUNCE_TYPES = frozenset({"Transient", "Undetermined"})
POSTMARK_TEMPORARY_BOUNCE_TYPES = frozenset({"SoftBounce", "Transient", "DnsError"})
ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# What a plausible address looks like here; the rest of the event is still recorded.
ADDRESS = re.compile(r"[^\s@<>\"',;\x00-\x1f\x7f]{1,64}@[^\s@<>\"',;\x00-\x1f\x7f]{1,253}")
MAX_DIAGNOSTIC = 500
MAX_MESSAGE_ID = 998  # a header line's limit; longer is not ours


def esp_source(esp_name: str) -> str:
    """The FeedbackEvent/Suppression ``source`` of an ESP: "Amazon SES" -> "amazon_ses"."""
    return re.sub(r"[^a-z0-9]+", "_", str(esp_name).lower()).strip("_")[:32] or "esp"


def record_tracking_event(event, esp_name: str) -> str | None:
    """Record one anymail tracking event; record_feedback's outcome, None when it is no
    feedback."""
    item = feedback_item(event, esp_name)
    return None if item is None else record_feedback(item)


def record_inbound_message(message, esp_name: str) -> ProcessResult:
    """An inbound message the ESP received for us (a mail to the List-Unsubscribe mailto, a
    bounce to a VERP address) goes to the one reader of raw messages, as stdin's would."""
    envelope_recipient = getattr(message, "envelope_recipient", None)
    return process_message(
        message.as_bytes(),
        source=f"{esp_source(esp_name)}_inbound"[:32],
        envelope_recipients=(envelope_recipient,) if envelope_recipient else (),
    )


def feedback_item(event, esp_name: str) -> FeedbackItem | None:
    """The FeedbackItem one anymail tracking event stands for; None when it is no feedback
    (delivered, opened ...) or names no usable address and no message of ours."""
    kind = event_kind(event)
    if kind is None:
        return None
    message_ref = signed_message_ref(event)
    user_id, task_id = (None, None)
    if message_ref is not None:
        email_id, user_id = message_ref
        task_id = _latest_task_of(email_id)
    address = recipient_address(event)
    if not address and user_id is None:
        return None
    source = esp_source(esp_name)
    return FeedbackItem(
        kind=kind,
        address=address,
        source=source,
        dedupe_key=dedupe_key(event, source, kind, address),
        user_id=user_id,
        task_id=task_id,
        status_code=status_code(event),
        diagnostic=diagnostic(event),
    )


# --- What it is ------------------------------------------------------------------------


def event_kind(event) -> str | None:
    """The feedback kind of an event, or None for events that are no feedback."""
    event_type = getattr(event, "event_type", None)
    if event_type in (BOUNCED, COMPLAINED, REJECTED):
        told = esp_specific_kind(_raw(event))
        if told is not None:
            return told
    if event_type == BOUNCED:
        return SOFT_BOUNCE if is_temporary_bounce(event) else HARD_BOUNCE
    if event_type == REJECTED:
        return REJECTED_KINDS.get(getattr(event, "reject_reason", None))
    return EVENT_KINDS.get(event_type)


def esp_specific_kind(raw: Mapping) -> str | None:
    """What an ESP's own fields say a bounce, complaint or rejection really was, when
    anymail's event type says less (see the tables above); None when they say nothing more."""
    if raw.get("event") == "bounce":  # SendGrid
        return SENDGRID_BOUNCE_TYPE_KINDS.get(raw.get("type"))
    if raw.get("event") == "dropped":  # SendGrid
        return SENDGRID_DROP_REASON_KINDS.get(str(raw.get("reason", "")).lower())
    event_data = raw.get("event-data")
    if isinstance(event_data, Mapping):  # Mailgun
        return MAILGUN_REASON_KINDS.get(event_data.get("reason"))
    ses_bounce = raw.get("bounce")
    if isinstance(ses_bounce, Mapping):
        return SES_BOUNCE_SUBTYPE_KINDS.get(ses_bounce.get("bounceSubType"))
    if raw.get("RecordType") in ("Bounce", "SpamComplaint"):  # Postmark
        return POSTMARK_TYPE_KINDS.get(raw.get("Type"))
    return None


def is_temporary_bounce(event) -> bool:
    """A "bounced" event the ESP says may still be delivered later."""
    raw = _raw(event)
    ses_bounce = raw.get("bounce")
    if isinstance(ses_bounce, Mapping) and "bounceType" in ses_bounce:
        return ses_bounce.get("bounceType") in SES_TEMPORARY_BOUNCE_TYPES
    if raw.get("RecordType") == "Bounce":  # Postmark
        return raw.get("Type") in POSTMARK_TEMPORARY_BOUNCE_TYPES
    return status_code(event).startswith("4.")


def status_code(event) -> str:
    """The enhanced status code (RFC 3463) of a bounce: the ESP's own field, else the first
    one in the remote server's reply."""
    for text in (_ses_recipient(event).get("status"), _raw(event).get("status")):
        found = ENHANCED_STATUS.search(str(text or ""))
        if found:
            return found.group(0)
    found = ENHANCED_STATUS.search(str(getattr(event, "mta_response", None) or ""))
    return found.group(0) if found else ""


def diagnostic(event) -> str:
    """The remote server's reply, else the ESP's description, on one line."""
    text = getattr(event, "mta_response", None) or getattr(event, "description", None) or ""
    return " ".join(str(text).split())[:MAX_DIAGNOSTIC]


# --- Whose it is -----------------------------------------------------------------------


def recipient_address(event) -> str:
    """The event's recipient, "" when it is not a plausible address (kept out of the tables:
    a suppression of garbage protects nobody)."""
    address = str(getattr(event, "recipient", None) or "").strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    return address if len(address) <= 254 and ADDRESS.fullmatch(address) else ""


def signed_message_ref(event) -> tuple[int, int] | None:
    """(email id, user id) from the first of the event's candidate Message-IDs that carries
    our signature; None when none does."""
    for candidate in candidate_message_ids(event):
        if isinstance(candidate, str) and len(candidate) <= MAX_MESSAGE_ID:
            found = read_message_id(candidate)
            if found is not None:
                return found
    return None


def candidate_message_ids(event) -> Iterable:
    """Where each ESP may hand our Message-ID back; each is verified, none trusted."""
    metadata = getattr(event, "metadata", None)
    if isinstance(metadata, Mapping):
        yield metadata.get(METADATA_KEY)
    yield getattr(event, "message_id", None)
    raw = _raw(event)
    yield raw.get("smtp-id")  # SendGrid: the Message-ID header of what it relayed
    yield from _ses_message_ids(raw)


def _ses_message_ids(raw: Mapping) -> Iterable:
    """SES with "include original headers": commonHeaders.messageId and the headers list."""
    mail = raw.get("mail")
    if not isinstance(mail, Mapping):
        return
    common = mail.get("commonHeaders")
    if isinstance(common, Mapping):
        yield common.get("messageId")
    headers = mail.get("headers")
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, Mapping) and str(header.get("name", "")).lower() == "message-id":
            yield header.get("value")


def _ses_recipient(event) -> Mapping:
    """The SES bouncedRecipients entry of this event's recipient ({} when none)."""
    bounce = _raw(event).get("bounce")
    recipients = bounce.get("bouncedRecipients") if isinstance(bounce, Mapping) else None
    recipient = getattr(event, "recipient", None)
    for entry in recipients if isinstance(recipients, list) else []:
        if isinstance(entry, Mapping) and entry.get("emailAddress") == recipient:
            return entry
    return {}


def _raw(event) -> Mapping:
    """The ESP's own payload of the event ({} when it is not a mapping)."""
    raw = getattr(event, "esp_event", None)
    return raw if isinstance(raw, Mapping) else {}


# --- Once only -------------------------------------------------------------------------


def dedupe_key(event, source: str, kind: str, address: str) -> str:
    """One key per (message, recipient, kind): the same event posted twice, and the two
    posts some ESPs make of one bounce (Postmark's Bounce and SubscriptionChange), count
    once, as do a message's repeated deferrals (the soft-bounce limit counts messages, not
    retries). Without a message id, the ESP's event id, else a hash of the whole payload."""
    identity = (
        getattr(event, "message_id", None)
        or getattr(event, "event_id", None)
        or _payload_digest(event)
    )
    text = f"{source}\n{identity}\n{address.lower()}\n{kind}"
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _payload_digest(event) -> str:
    raw = getattr(event, "esp_event", None)
    if hasattr(raw, "lists"):  # a QueryDict (Mailgun's legacy form posts)
        raw = dict(raw.lists())
    text = json.dumps(raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
