"""ESP webhooks: django-anymail's signals, heard when BULK_EMAIL["ESP_WEBHOOKS"] is on.

anymail's views (``include("anymail.urls")``) authenticate each post (WEBHOOK_SECRET basic
auth; Mailgun's signature too) and turn each ESP's payload into tracking and inbound events;
the receivers here hand them to the feedback package. The receivers are connected once, at
start-up, whenever anymail is installed, and read the setting on every event, so turning it
off (or on, in a test) needs no restart of the signal wiring. The feedback package is
imported on the first event, not at every process's start (flufl.bounce alone takes 0.1 s).
A database error propagates: anymail answers 500 and the ESP posts the event again, which
the dedupe key makes harmless. Any other error is one event that cannot be read: it is logged
and skipped, so that it does not make the ESP post it (and the events posted with it) again
and again for days.
"""

import logging
from contextlib import contextmanager

from django.db import DatabaseError

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

    with skipped_when_unreadable(esp_name, "tracking event"):
        outcome = record_tracking_event(event, esp_name)
        if outcome is not None:
            log.debug("%s %s event: %s", esp_name, event.event_type, outcome)


def on_inbound(sender, event, esp_name, **kwargs) -> None:
    if not app_settings.get("ESP_WEBHOOKS") or event.message is None:
        return
    from .feedback.esp import record_inbound_message

    with skipped_when_unreadable(esp_name, "inbound message"):
        result = record_inbound_message(event.message, esp_name)
        log.info("%s inbound message: %s", esp_name, result.line())


@contextmanager
def skipped_when_unreadable(esp_name: str, what: str):
    try:
        yield
    except DatabaseError:
        raise  # the ESP's retry will find the database again
    except Exception:
        log.exception("%s %s could not be recorded; skipped", esp_name, what)
