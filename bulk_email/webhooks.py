"""ESP webhooks: django-anymail's signals, heard when BULK_EMAIL["ESP_WEBHOOKS"] is on.

anymail's views (``include("anymail.urls")``) authenticate each post (WEBHOOK_SECRET basic
auth; Mailgun's signature too) and turn each ESP's payload into tracking and inbound events;
the receivers here hand them to the feedback package. The receivers are connected once, at
start-up, whenever anymail is installed, and read the setting on every event, so turning it
off (or on, in a test) needs no restart of the signal wiring. The feedback package is
imported on the first event, not at every process's start (flufl.bounce alone takes 0.1 s).
A database error propagates: anymail answers 500 and the ESP posts the event again, which
the dedupe key makes harmless.
"""

import logging

from . import app_settings

log = logging.getLogger(__name__)

DISPATCH_UID = "bulk_email.webhooks"


def connect() -> bool:
    """Connect the receivers to anymail's signals; False when anymail is not installed
    (``manage.py check`` says so when ESP_WEBHOOKS is on: bulk_email.E013)."""
    try:
        from anymail.signals import inbound, tracking
    except ImportError:
        return False
    tracking.connect(on_tracking, dispatch_uid=f"{DISPATCH_UID}.tracking")
    inbound.connect(on_inbound, dispatch_uid=f"{DISPATCH_UID}.inbound")
    return True


def on_tracking(sender, event, esp_name, **kwargs) -> None:
    if not app_settings.get("ESP_WEBHOOKS"):
        return
    from .feedback.esp import record_tracking_event  # here: flufl.bounce costs 0.1 s to import

    outcome = record_tracking_event(event, esp_name)
    if outcome is not None:
        log.info("%s %s event: %s", esp_name, event.event_type, outcome)


def on_inbound(sender, event, esp_name, **kwargs) -> None:
    if not app_settings.get("ESP_WEBHOOKS") or event.message is None:
        return
    from .feedback.esp import record_inbound_message

    result = record_inbound_message(event.message, esp_name)
    log.info("%s inbound message: %s", esp_name, result.line())
