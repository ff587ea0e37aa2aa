"""Sending: SMTP replies and errors classified (``classify``), one SMTP session per worker
process (``session``), the ways a rendered message leaves (``transports``: the direct SMTP
path or any Django EmailBackend), and the shared send-rate limit (``ratelimit``).

Sending never renders: the worker side (pipeline/steps.py) renders each recipient's message
and hands it to a transport; what a transport needs of a message is ``transports.Message``.
"""

from .classify import Outcome, OutcomeKind, Verdict, classify, classify_reply, stop_error
from .ratelimit import LocalRateLimiter, RedisRateLimiter, get_rate_limiter
from .session import (
    Result,
    SMTPConfig,
    SMTPSession,
    close_session,
    get_session,
    read_replies,
    read_reply,
)
from .transports import (
    DJANGO_SMTP_BACKEND,
    ESP_METADATA_KEY,
    BackendTransport,
    Message,
    NeedsSMTPUTF8,
    SMTPTransport,
    Transport,
    get_transport,
)

__all__ = [
    "DJANGO_SMTP_BACKEND",
    "ESP_METADATA_KEY",
    "BackendTransport",
    "LocalRateLimiter",
    "Message",
    "NeedsSMTPUTF8",
    "Outcome",
    "OutcomeKind",
    "RedisRateLimiter",
    "Result",
    "SMTPConfig",
    "SMTPSession",
    "SMTPTransport",
    "Transport",
    "Verdict",
    "classify",
    "classify_reply",
    "close_session",
    "get_rate_limiter",
    "get_session",
    "get_transport",
    "read_replies",
    "read_reply",
    "stop_error",
]
