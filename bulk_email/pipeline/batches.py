"""Sending one batch: claim it, deliver to the recipients it has not reached, record each
outcome under the claim, and finish it; the end of a task (Success, Failure).

Every step is safe to run twice, concurrently, or after a crash:

- a batch is *claimed* with a conditional UPDATE that hands out a ``claim_token``; every
  progress write names that token, so a worker that lost its claim stops at once;
- progress is noted after each message (progress.py: in Redis, with the Batch row brought up
  to date at checkpoints; or one small UPDATE of the row), so a batch taken over after a
  crash resumes after the last recipient reached and at most the one message in flight is
  sent twice;
- a claim whose heartbeat is older than ``BATCH_LEASE_SECONDS`` is given up by the
  dispatcher and the batch sent on by whoever claims it next.
"""

import datetime
import logging
import secrets
from dataclasses import dataclass, replace

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from .. import app_settings, progress, recipients, rendering
from ..exceptions import (
    EmailTemplateError,
    InvalidEmailError,
    SMTPConfigurationError,
    TransientSendError,
)
from ..lms import Recipient, get_lms
from ..models import Batch, EmailTask, RecipientOutcome
from ..progress import ClaimLost
from .recording import BatchProgress, TaskStopped
from .steps import BatchSender

logger = logging.getLogger(__name__)


def lease() -> datetime.timedelta:
    return datetime.timedelta(seconds=app_settings.get("BATCH_LEASE_SECONDS"))


# --- Sending a batch ----------------------------------------------------------------------------


@dataclass
class Claim:
    batch: Batch
    token: str
    notes: progress.RedisNotes | progress.DatabaseNotes


BUSY = "busy"  # another worker holds a live claim: try again later


def claim_batch(*, batch_id: int) -> Claim | str | None:
    """The batch, claimed for this worker; BUSY while someone else works on it; None when
    there is nothing to do (done, failed, gone)."""
    now, token = timezone.now(), secrets.token_hex(8)
    claimable = Q(state=Batch.PENDING) | Q(state=Batch.CLAIMED, heartbeat__lt=now - lease())
    claimed = (
        Batch.objects.filter(claimable, pk=batch_id)
        .exclude(task__state__in=EmailTask.STOPPED_STATES)
        .transition(
            to=Batch.CLAIMED,
            claim_token=token,
            claimed_at=now,
            heartbeat=now,
            attempts=F("attempts") + 1,
        )
    )
    if claimed:
        batch = Batch.objects.select_related("task__email").get(pk=batch_id)
        notes = progress.notes_for(batch=batch, token=token, redis_url=app_settings.redis_url())
        claim = Claim(batch, token, notes)
        adopt_noted_progress(claim)
        return claim
    if Batch.objects.filter(pk=batch_id, state=Batch.CLAIMED).exclude(
        task__state__in=EmailTask.STOPPED_STATES
    ):
        return BUSY
    return None


def adopt_noted_progress(claim: Claim) -> None:
    """Bring the row up to the cursor the previous claim noted after its last checkpoint:
    everyone between was sent (failures and skips have their outcome rows)."""
    batch = claim.batch
    noted = claim.notes.adopt()
    if noted is None or noted <= batch.cursor:
        return
    done = outcome_user_ids(batch)
    sent = sum(1 for user_id in batch.user_ids[batch.cursor : noted] if user_id not in done)
    BatchProgress(claim, positions={}).update(cursor=noted, sent=F("sent") + sent)
    batch.refresh_from_db(fields=["cursor", "sent"])


def outcome_user_ids(batch: Batch) -> set[int]:
    return set(RecipientOutcome.objects.filter(batch=batch).values_list("user_id", flat=True))


def send_batch(*, batch_id: int) -> str | None:
    """Send one batch to the recipients it has not reached yet.

    Returns BUSY when another worker holds it. Raises TransientSendError (the caller retries
    later; the claim is released) or SMTPConfigurationError (the task has failed)."""
    claim = claim_batch(batch_id=batch_id)
    if claim is None or claim == BUSY:
        return claim
    try:
        deliver_batch(claim)
    except ClaimLost:
        logger.warning("Batch %s was taken over by another worker; stopping.", batch_id)
        return None
    except TaskStopped:
        logger.info("The task of batch %s was revoked or failed; stopping.", batch_id)
        return None
    except (InvalidEmailError, EmailTemplateError) as error:  # refused when prepared
        fail_task(task_id=claim.batch.task_id, reason=f"The message cannot be sent: {error}")
        return None
    except SMTPConfigurationError as error:
        if not reached_anyone(claim.batch.task_id):
            fail_task(task_id=claim.batch.task_id, reason=str(error))
            raise
        # The same server took this send's messages before: an outage, not a wrong setting.
        outage = TransientSendError(f"The mail server is unavailable: {error.reason}")
        outage.stalls = release_after_transient(claim, made_progress=bool(error.outcomes))
        raise outage from error
    except TransientSendError as error:
        error.stalls = release_after_transient(claim, made_progress=bool(error.outcomes))
        raise
    finish_batch(claim)
    return None


def deliver_batch(claim: Claim) -> None:
    batch = claim.batch
    unreached = unreached_positions(batch)
    people = load_recipients([batch.user_ids[p] for p in unreached])
    progress = BatchProgress(claim, positions={batch.user_ids[p]: p for p in unreached})
    skips = skip_reasons(batch, people, [batch.user_ids[p] for p in unreached])
    progress.record_skips(skips)
    to_send = [people[user_id] for user_id in progress.positions if user_id not in skips]
    if not to_send:
        return
    to_send = with_languages(to_send, batch.task.email.course_id)
    by_language = prepared_by_language(batch.task.email, to_send)
    prepared = next(iter(by_language.values()))
    if prepared.uses_anonymous_id:
        to_send = with_anonymous_ids(to_send, prepared.course_id)
    sender = BatchSender(
        prepared, by_language=by_language, task_id=batch.task_id, on_outcome=progress.record
    )
    try:
        sender.send(to_send)
    finally:
        progress.close()


def with_languages(people: list[Recipient], course_id: str) -> list[Recipient]:
    """Each person's message language (rendering.message_language): the LMS is asked for
    the batch's preferred languages in one call, for the course only when someone has none
    of the site's."""
    lms = get_lms()
    preferred = lms.preferred_languages([person.user_id for person in people])
    chosen = {user_id: rendering.supported_language(code) for user_id, code in preferred.items()}
    fallback = ""
    if any(not chosen.get(person.user_id) for person in people):
        course = lms.get_course(course_id)
        fallback = rendering.message_language(None, course.language if course else None)
    return [replace(p, language=chosen.get(p.user_id) or fallback) for p in people]


def prepared_by_language(email, people: list[Recipient]) -> dict[str, rendering.PreparedMessage]:
    """The email prepared once per language among these people (cached per process: a
    send's later batches reuse them)."""
    languages = sorted({person.language for person in people})
    return {language: rendering.get_prepared_message(email, language) for language in languages}


def with_anonymous_ids(people: list[Recipient], course_id: str) -> list[Recipient]:
    """%%USER_ID%% is the LMS's anonymous per-course id: asked once for the whole batch."""
    ids = get_lms().anonymous_user_ids(course_id, [person.user_id for person in people])
    return [replace(p, anonymous_id=ids.get(p.user_id, "")) for p in people]


def unreached_positions(batch: Batch) -> list[int]:
    """Positions in ``user_ids`` at or after the cursor that have no outcome row yet."""
    # Outcome rows are written under a claim of the batch: on its first there are none.
    done = outcome_user_ids(batch) if batch.attempts > 1 else set()
    return [p for p in range(batch.cursor, len(batch.user_ids)) if batch.user_ids[p] not in done]


def load_recipients(user_ids: list[int]) -> dict[int, Recipient]:
    """The people as they are now (address changes since fan-out apply), active ones only."""
    rows = (
        get_user_model()
        .objects.filter(pk__in=recipients.id_list(user_ids), is_active=True)
        .annotate(full_name=get_lms().full_name_expression())
        .values_list("pk", "email", "full_name")
    )
    return {pk: Recipient(pk, email, name or "") for pk, email, name in rows}


# Stored in English, as written (the worker has no reader); the delivery report translates them
# for whoever reads it, from these catalog entries.
OPTED_OUT = gettext_noop("Opted out of this course's email.")
NOT_ACTIVE = gettext_noop("The account is no longer active.")


def skip_reasons(batch: Batch, people: dict, user_ids: list[int]) -> dict[int, str]:
    """Why each recipient who must not be mailed any more is skipped (changes since fan-out:
    opt-outs, deactivations, suppressions; one query each)."""
    email = batch.task.email
    opted_out = recipients.opted_out_ids(
        **recipients.email_audience(email=email), user_ids=user_ids
    )
    reasons = {user_id: OPTED_OUT for user_id in opted_out}
    for user_id in user_ids:
        if user_id not in people:
            reasons.setdefault(user_id, NOT_ACTIVE)
    for user_id, why in recipients.suppressed_ids(user_ids=user_ids).items():
        reasons.setdefault(user_id, f"The address is suppressed ({why.lower()}).")
    return reasons


def reached_anyone(task_id: int) -> bool:
    return Batch.objects.filter(task_id=task_id, sent__gt=0).exists()


def release_after_transient(claim: Claim, *, made_progress: bool) -> int:
    """Hand the batch back for a retry; returns its stalls: transient failures in a row
    without reaching anyone. A throttling server that lets some messages through between
    refusals keeps the backoff short; one that refuses everything makes it grow."""
    stalls = 0 if made_progress else F("stalls") + 1
    Batch.objects.filter(pk=claim.batch.pk, claim_token=claim.token).transition(
        from_=[Batch.CLAIMED],
        to=Batch.PENDING,
        claim_token="",
        stalls=stalls,
        enqueued_at=timezone.now(),
    )
    EmailTask.objects.filter(pk=claim.batch.task_id).update(retries=F("retries") + 1)
    return Batch.objects.values_list("stalls", flat=True).get(pk=claim.batch.pk)


def finish_batch(claim: Claim) -> None:
    with transaction.atomic():
        finished = Batch.objects.filter(pk=claim.batch.pk, claim_token=claim.token).transition(
            from_=[Batch.CLAIMED], to=Batch.DONE, finished_at=timezone.now()
        )
        if finished:
            count_finished_batch(task_id=claim.batch.task_id)
    claim.notes.forget()


def count_finished_batch(*, task_id: int) -> None:
    """One more batch finished; the last one (fan-out done) makes the task a Success. Both
    statements run in the caller's transaction: the first locks the task row, so concurrent
    finishers are ordered and exactly one sees every batch finished."""
    EmailTask.objects.filter(pk=task_id).update(batches_finished=F("batches_finished") + 1)
    finish_if_complete(task_id=task_id)


def give_up_batch(*, batch_id: int, reason: str) -> None:
    """After the last retry: every recipient not reached yet is failed with ``reason``."""
    claim = claim_batch(batch_id=batch_id)
    if not isinstance(claim, Claim):
        return
    batch = claim.batch
    unreached = [batch.user_ids[p] for p in unreached_positions(batch)]
    progress = BatchProgress(claim, positions={})
    with transaction.atomic():
        progress.update(cursor=len(batch.user_ids), failed=F("failed") + len(unreached))
        RecipientOutcome.objects.bulk_create(
            progress.outcome(user_id, RecipientOutcome.FAILED, reason) for user_id in unreached
        )
    finish_batch(claim)


# --- The task's end -----------------------------------------------------------------------------


def finish_if_complete(*, task_id: int) -> None:
    """Success once fan-out is done and every batch finished (whichever comes last)."""
    EmailTask.objects.complete().filter(pk=task_id).transition(
        to=EmailTask.SUCCESS, finished_at=timezone.now()
    )


def fail_task(*, task_id: int, reason: str) -> None:
    EmailTask.objects.filter(pk=task_id).transition(
        to=EmailTask.FAILURE, error=reason, finished_at=timezone.now()
    )
