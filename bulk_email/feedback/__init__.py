"""What comes back after a send: bounces (DSN), complaints (ARF), mailed unsubscribes and ESP
events. ``process_message`` takes a raw message (stdin, a mailbox); ``record_feedback`` does
what any of them says (webhooks call it directly)."""

from .messages import ProcessResult, process_message
from .record import FeedbackItem, record_feedback

__all__ = ["FeedbackItem", "ProcessResult", "process_message", "record_feedback"]
