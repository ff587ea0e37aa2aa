"""What comes back after a send: bounces (DSN), complaints (ARF), mailed unsubscribes and ESP
events, each turned into suppressions, opt-outs and counts by ``record_feedback``."""

from .record import FeedbackItem, record_feedback

__all__ = ["FeedbackItem", "record_feedback"]
