"""Sending a batch the way a worker does (pipeline/steps.py), for the tests of sending."""

from bulk_email.pipeline.steps import BatchSender
from bulk_email.rendering import Recipient


def learners(count: int, start: int = 1) -> list[Recipient]:
    return [
        Recipient(n, f"learner{n}@example.com", f"Learner {n}") for n in range(start, start + count)
    ]


def send_batch(prepared, recipients, *, on_outcome=None):
    """Render, rate-limit, deliver and record each recipient: the worker's step sequence."""
    return BatchSender(prepared, on_outcome=on_outcome).send(recipients)
