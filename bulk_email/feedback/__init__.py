"""What comes back after a send: bounces (DSN), complaints (ARF), mailed unsubscribes and ESP
events. ``process_message`` takes a raw message (stdin, a mailbox); ``record_feedback`` does
what any of them says (webhooks call it directly)."""

from .messages import ProcessResult, process_message, whose_message_id
from .record import FeedbackItem, make_dedupe_key, record_feedback

__all__ = [
    "FeedbackItem",
    "ProcessResult",
    "make_dedupe_key",
    "process_message",
    "record_feedback",
    "whose_message_id",
]
