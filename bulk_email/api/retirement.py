"""Retirement (GDPR erasure), as Open edX's USER_RETIRE_MAILINGS: the user is opted out of
every course, and what bulk_email kept about them as a recipient goes, while every send's
counts stay as they were."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q

from ..lms import get_lms
from ..models import Batch, FeedbackEvent, Optout, RecipientOutcome, Suppression
from .suppressions import anonymize_removal_log


@dataclass(frozen=True)
class Retirement:
    """What retiring one user changed, for the LMS's retirement log."""

    opted_out_of: int
    outcomes_deleted: int
    batches_scrubbed: int
    suppressions_deleted: int
    feedback_anonymized: int
    removal_log_anonymized: int = 0  # admin log entries of the address's suppression removals


def retire_user(*, user_id: int) -> Retirement:
    """Call it from the LMS's retirement pipeline BEFORE the LMS rewrites the user's address:
    suppressions are found by the address as well as by the user.

    Kept: the opt-outs (so no course mails the retired account) and every count (a batch's
    sent / failed / skipped, a send's bounced / complained). Gone: the user's failed and
    skipped rows, their id in finished batches, their suppressions; feedback events lose
    address, user and diagnostic but keep their kind and send, so rates stay true. A batch
    still being sent keeps the id until it ends (the send skips the user, now opted out);
    retiring again afterwards removes it."""
    mine = rows_about(user_id)
    address = get_user_model().objects.filter(pk=user_id).values_list("email", flat=True).first()
    with transaction.atomic():
        return Retirement(
            opted_out_of=opt_out_everywhere(user_id),
            outcomes_deleted=RecipientOutcome.objects.filter(user_id=user_id).delete()[0],
            batches_scrubbed=scrub_finished_batches(user_id),
            suppressions_deleted=Suppression.objects.filter(mine).delete()[0],
            feedback_anonymized=FeedbackEvent.objects.filter(mine).update(
                address="", user=None, diagnostic=""
            ),
            removal_log_anonymized=anonymize_removal_log(address=address or ""),
        )


def rows_about(user_id: int) -> Q:
    """Suppressions and feedback events of the user: attributed to them, or naming their
    address (a bounce nobody could attribute names only the address)."""
    users = get_user_model().objects.filter(pk=user_id)
    address = users.values_list("email", flat=True).first()
    mine = Q(user_id=user_id)
    return mine | Q(address=Suppression.normalize(address)) if address else mine


def opt_out_everywhere(user_id: int) -> int:
    """Opt-outs added (courses already opted out of keep how they were made)."""
    already = set(Optout.objects.filter(user_id=user_id).values_list("course_id", flat=True))
    courses = [c for c in get_lms().user_course_ids(user_id) if c not in already]
    for course_id in courses:
        Optout.objects.opt_out(user_id=user_id, course_id=course_id, how=Optout.RETIRED)
    return len(courses)


def scrub_finished_batches(user_id: int) -> int:
    """Take the user's id out of finished batches; their cursor moves back with it, so
    each batch's count of recipients dealt with stays equal to its list."""
    scrubbed = 0
    for batch in batches_listing(user_id).filter(state=Batch.DONE).select_for_update():
        batch.user_ids = [uid for uid in batch.user_ids if uid != user_id]
        batch.cursor = min(batch.cursor, len(batch.user_ids))
        batch.save(update_fields=["user_ids", "cursor"])
        scrubbed += 1
    return scrubbed


def batches_listing(user_id: int):
    """Batches whose recipient list holds ``user_id``: a JSON containment test in
    PostgreSQL; SQLite (the embedded default) has none, so its ids are compared here."""
    if connection.vendor == "postgresql":
        return Batch.objects.filter(user_ids__contains=[user_id])
    listing = [pk for pk, ids in Batch.objects.values_list("pk", "user_ids") if user_id in ids]
    return Batch.objects.filter(pk__in=listing)
