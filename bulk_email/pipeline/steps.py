"""Per recipient, one fixed sequence of small steps, in the style of anymail's
``backends/base.py``: ``render`` → ``rate_limit`` → ``deliver`` → ``record``; at the end
``finish`` records the results still in flight. Override a step in a subclass to change it;
``deliver`` is the transport's own (``open_transport`` picks the transport).

``BatchSender(prepared, task_id=..., on_outcome=...).send(recipients)`` returns one ``Outcome`` per
recipient, in recipient order, and passes each to ``on_outcome`` as soon as it is known (a
message's when the next one is sent, or at the end). A recipient that cannot be rendered
(an address that is not one) or that the server refuses fails alone (PERMANENT). Anything
else stops the batch: ``TransientSendError`` (back off, retry ``unsent``) or
``SMTPConfigurationError`` (stop and show ``reason``), both carrying the outcomes so far and
the recipients still unsent, from the one stopped at.
"""

from collections.abc import Callable, Iterable, Mapping

from ..exceptions import InvalidEmailError
from ..lms import Recipient
from ..rendering import PreparedMessage, RenderedMessage, render_message
from ..sending import (
    Outcome,
    OutcomeKind,
    Result,
    Transport,
    Verdict,
    classify,
    get_rate_limiter,
    get_transport,
    stop_error,
)

# Read once: an Enum member read off its class costs ~0.25 µs on Python 3.11, once a message.
SENT, PERMANENT = OutcomeKind.SENT, OutcomeKind.PERMANENT


class SendStopped(Exception):
    """A failure that is not the recipient's own: the batch stops (see ``BatchSender.send``)."""

    def __init__(self, verdict: Verdict):
        self.verdict = verdict


class BatchSender:
    """Sends one prepared email to a batch of recipients, one step at a time."""

    def __init__(
        self,
        prepared: PreparedMessage,
        *,
        by_language: Mapping[str, PreparedMessage] | None = None,
        task_id: int | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ):
        self.prepared = prepared
        # The same email prepared in each recipient's language (Recipient.language); a
        # recipient whose language is not in it gets ``prepared``.
        self.by_language = by_language or {}
        # The send's task: the prepared message is the email's, shared by every send of it,
        # while the feedback addresses (VERP, mailto) name the task; given per batch.
        self.task_id = task_id
        self.on_outcome = on_outcome
        self.outcomes: list[Outcome] = []
        self.limiter = None
        self.transport: Transport | None = None

    def send(self, recipients: Iterable[Recipient]) -> list[Outcome]:
        recipients = list(recipients)
        self.outcomes = []
        self.limiter = get_rate_limiter()
        self.transport = self.open_transport(recipients)
        try:
            self.send_each(recipients)
            self.finish()
        except SendStopped as stopped:
            unsent = recipients[len(self.outcomes) :]  # from the one stopped at, in order
            raise stop_error(stopped.verdict, outcomes=self.outcomes, unsent=unsent) from stopped
        finally:
            self.transport.finish()
        return self.outcomes

    def send_each(self, recipients: list[Recipient]) -> None:
        # The steps are looked up once per batch, not once per message.
        render, rate_limit, deliver, record = (
            self.render, self.rate_limit, self.transport.deliver, self.record
        )  # fmt: skip
        for recipient in recipients:
            try:
                message = render(recipient)
            except InvalidEmailError as error:
                self.fail_unrenderable(recipient, error)
                continue
            rate_limit()
            record(deliver(message))

    def open_transport(self, recipients: list[Recipient]) -> Transport:
        try:
            return get_transport()
        except Exception as error:  # opening a backend fails the same ways as sending
            raise stop_error(classify(error), outcomes=self.outcomes, unsent=recipients) from error

    # --- The steps, in order ---------------------------------------------------------------

    def render(self, recipient: Recipient) -> RenderedMessage:
        prepared = self.by_language.get(recipient.language, self.prepared)
        return render_message(prepared, recipient, task_id=self.task_id)

    def rate_limit(self) -> None:
        if self.limiter is not None:
            self.limiter.wait()

    # deliver: ``self.transport.deliver``, called as it is (no wrapper: this runs once a
    # message); a different delivery is a different transport, from ``open_transport``.

    def record(self, results: list[Result]) -> None:
        """Each delivery's outcome, in order; SendStopped at a failure not the recipient's."""
        for message, error in results:
            self.add(self.outcome_of(message, error))

    def finish(self) -> None:
        self.record(self.transport.flush())

    # --- What the steps share ----------------------------------------------------------------

    def outcome_of(self, message: RenderedMessage, error: BaseException | None) -> Outcome:
        recipient, message_id = message.recipient, message.message_id
        if error is None:
            return Outcome(recipient, SENT, message_id=message_id)
        verdict = self.transport.classify(error)
        if verdict.kind is not PERMANENT:
            raise SendStopped(verdict) from error
        code, reason = verdict.code, verdict.reason
        return Outcome(recipient, PERMANENT, message_id=message_id, code=code, reason=reason)

    def fail_unrenderable(self, recipient: Recipient, error: InvalidEmailError) -> None:
        """That recipient fails alone, after the message in flight (outcomes keep their order)."""
        self.record(self.transport.flush())
        self.add(Outcome(recipient, PERMANENT, reason=str(error)))

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
