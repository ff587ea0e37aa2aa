"""A send's per-recipient delivery report: who failed (the SMTP reply), was skipped (opted
out, suppressed, deactivated), bounced for good or complained (what came back afterwards), from the
RecipientOutcome rows the batches wrote and the FeedbackEvent rows feedback wrote.

Paged by keyset, never by offset: the report of a send to a million learners reads one
index range a page. The order is the outcomes by id, then the feedback events by id (they
keep arriving after the send, so they come last); a cursor names the last row shown as
``o<id>`` or ``f<id>``."""

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import recipients
from ..exceptions import BadRequestError
from ..models import EmailTask, FeedbackEvent, RecipientOutcome
from .access import CourseAccess

FAILED, SKIPPED, BOUNCED, COMPLAINED = "failed", "skipped", "bounced", "complained"
KINDS = (FAILED, SKIPPED, BOUNCED, COMPLAINED)
OUTCOME_KINDS = {FAILED: RecipientOutcome.FAILED, SKIPPED: RecipientOutcome.SKIPPED}
# Permanent bounces only, as the send's ``bounced`` count: a temporary one (4.x.x) says the
# message is still being retried, not that it failed, and is left out of the report.
FEEDBACK_KINDS = {
    BOUNCED: (FeedbackEvent.HARD_BOUNCE,),
    COMPLAINED: (FeedbackEvent.COMPLAINT,),
}
KIND_OF_EVENT = {event: kind for kind, events in FEEDBACK_KINDS.items() for event in events}
EVENT_LABELS = {
    FeedbackEvent.HARD_BOUNCE: gettext_lazy("Bounced."),
    FeedbackEvent.COMPLAINT: gettext_lazy("Marked as spam."),
}
OUTCOMES, FEEDBACK = "o", "f"  # the two segments, in report order
CURSOR = re.compile(r"\A([of])([0-9]{1,18})\Z")


@dataclass(frozen=True)
class DeliveryRow:
    """One recipient who did not simply receive the send, and why."""

    kind: str  # failed, skipped, bounced, complained
    user_id: int | None
    name: str
    email: str
    code: str  # the SMTP reply code or the DSN's status, e.g. "550" or "5.1.1"
    why: str
    source: str  # smtp (while sending), dsn, arf, ses, sendgrid ...
    at: datetime.datetime
    cursor: str


@dataclass(frozen=True)
class DeliveryPage:
    rows: list[DeliveryRow]
    next: str | None  # the cursor of the next page; None at the end
    counts: dict[str, int]


def clean_kind(kind: str) -> str:
    """ "" (every kind) or one of KINDS; BadRequestError otherwise."""
    if kind and kind not in KINDS:
        raise BadRequestError(
            _("kind must be one of %(kinds)s (or empty).") % {"kinds": ", ".join(KINDS)},
            field="kind",
        )
    return kind


def parse_cursor(after: str) -> tuple[str, int]:
    """``after`` as (segment, id); ("o", 0) for the start; BadRequestError when it is not a
    cursor this report gave."""
    if not after:
        return OUTCOMES, 0
    match = CURSOR.match(after)
    if match is None:
        raise BadRequestError(_("after must be the next cursor of a previous page."), field="after")
    return match.group(1), int(match.group(2))


def delivery_page(
    *, access: CourseAccess, task: EmailTask, kind: str = "", after: str = "", limit: int = 100
) -> DeliveryPage:
    """Up to ``limit`` rows after the cursor ``after``, with each kind's count (0 rows when
    ``limit`` is 0: the counts alone)."""
    access.owns(task)
    kind = clean_kind(kind)
    rows = list(_rows_after(task, kind, parse_cursor(after), limit + 1)) if limit else []
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(
        rows=rows, next=rows[-1].cursor if more else None, counts=delivery_counts(task=task)
    )


def delivery_rows(
    *, access: CourseAccess, task: EmailTask, kind: str = "", chunk: int = 1000
) -> Iterator[DeliveryRow]:
    """Every row of the report in order, read ``chunk`` rows a query (the CSV download)."""
    access.owns(task)
    kind = clean_kind(kind)
    position = (OUTCOMES, 0)
    while True:
        page = list(_rows_after(task, kind, position, chunk))
        yield from page
        if len(page) < chunk:
            return
        position = parse_cursor(page[-1].cursor)


def delivery_counts(*, task: EmailTask) -> dict[str, int]:
    """How many of each kind the send has (two grouped queries)."""
    counts = dict.fromkeys(KINDS, 0)
    by_status = task.outcomes.values_list("status").annotate(n=Count("pk")).order_by()
    for status, n in by_status:
        counts[status] += n
    by_kind = task.feedback.filter(kind__in=KIND_OF_EVENT).values_list("kind")
    for event, n in by_kind.annotate(n=Count("pk")).order_by():
        counts[KIND_OF_EVENT[event]] += n
    return counts


def _rows_after(task: EmailTask, kind: str, position: tuple[str, int], limit: int):
    """Up to ``limit`` rows after ``position``: the rest of the outcomes, then the events."""
    segment, last_id = position
    rows = []
    if segment == OUTCOMES and kind in ("", FAILED, SKIPPED):
        rows = _outcome_rows(task, kind, last_id, limit)
        last_id = 0  # the events segment starts from its beginning
    if len(rows) < limit and kind in ("", BOUNCED, COMPLAINED):
        rows += _feedback_rows(task, kind, last_id, limit - len(rows))
    return rows


def _outcome_rows(task: EmailTask, kind: str, after_id: int, limit: int) -> list[DeliveryRow]:
    outcomes = task.outcomes.filter(pk__gt=after_id).order_by("pk").select_related("user")
    if kind:
        outcomes = outcomes.filter(status=OUTCOME_KINDS[kind])
    found = list(outcomes[:limit])
    names = recipients.display_names(user_ids={row.user_id for row in found})
    return [
        DeliveryRow(
            kind=row.status,
            user_id=row.user_id,
            name=names.get(row.user_id, ""),
            email=row.user.email,
            code="" if row.code is None else str(row.code),
            # A reason the pipeline wrote (pipeline.batches) in the reader's language; a mail
            # server's reply, which no catalog has, as it came.
            why=_(row.detail) if row.detail else "",
            source="smtp" if row.status == RecipientOutcome.FAILED else "bulk_email",
            at=row.created,
            cursor=f"{OUTCOMES}{row.pk}",
        )
        for row in found
    ]


def _feedback_rows(task: EmailTask, kind: str, after_id: int, limit: int) -> list[DeliveryRow]:
    events = FEEDBACK_KINDS[kind] if kind else tuple(KIND_OF_EVENT)
    found = list(task.feedback.filter(pk__gt=after_id, kind__in=events).order_by("pk")[:limit])
    names = recipients.display_names(user_ids={row.user_id for row in found if row.user_id})
    return [
        DeliveryRow(
            kind=KIND_OF_EVENT[row.kind],
            user_id=row.user_id,
            name=names.get(row.user_id, ""),
            email=row.address,
            code=row.status_code,
            why=" ".join(filter(None, [str(EVENT_LABELS[row.kind]), row.diagnostic])),
            source=row.source,
            at=row.received,
            cursor=f"{FEEDBACK}{row.pk}",
        )
        for row in found
    ]


DELIVERY_COLUMNS = ["kind", "name", "email", "code", "why", "source", "when (UTC)"]


def delivery_csv_row(row: DeliveryRow) -> list:
    return [row.kind, row.name, row.email, row.code, row.why, row.source, row.at.isoformat()]
