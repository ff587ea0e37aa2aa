"""Progress notes in a real Redis: the note per message, checkpoints of the row, a takeover
adopting what a dead worker noted, and the fall back to the database when Redis fails."""

import datetime

import pytest
import redis
from django.utils import timezone

from bulk_email import app_settings, pipeline, progress, sending
from bulk_email.lms import Recipient
from bulk_email.models import Batch, RecipientOutcome
from tests.factories import make_task, opt_out, run_fan_out

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_notes(settings, redis_url):
    """Batches of 3, notes in the test Redis, and checkpoints far apart unless a test says."""
    redis.Redis.from_url(redis_url).flushdb()
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL,
        "EMAILS_PER_TASK": 3,
        "REDIS_URL": redis_url,
        "PROGRESS_CHECKPOINT_SECONDS": 3600,
    }
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def first_batch(course_with_learners) -> tuple[Batch, list]:
    """The first batch (3 learners) of a send to the course's learners, and the learners."""
    course, instructor, learners = course_with_learners
    return Batch.objects.get(pk=run_fan_out(make_task(course, instructor))[0]), learners


def sent(user) -> sending.Outcome:
    return sending.Outcome(Recipient(user.pk, user.email), sending.OutcomeKind.SENT)


def die_after(claim: pipeline.Claim, users) -> None:
    """What a worker killed after these messages leaves behind: its notes, no final write."""
    positions = {user_id: p for p, user_id in enumerate(claim.batch.user_ids)}
    recorder = pipeline.BatchProgress(claim, positions=positions)
    for user in users:
        recorder.record(sent(user))
    # Its last note's reply is read only so that the test knows Redis has applied it (the
    # written note reaches Redis whether or not the process lives to read the reply).
    claim.notes.release()
    Batch.objects.filter(pk=claim.batch.pk).update(
        heartbeat=timezone.now() - datetime.timedelta(hours=1)
    )


def test_the_first_message_is_checkpointed_and_the_next_ones_only_noted(
    redis_notes,
    first_batch,
):
    batch, learners = first_batch
    claim = pipeline.claim_batch(batch_id=batch.pk)
    assert isinstance(claim.notes, progress.RedisNotes)
    die_after(claim, learners[:3])
    batch.refresh_from_db()
    assert (batch.cursor, batch.sent) == (1, 1)  # what staff see: the first one at once
    assert redis_notes.hget(claim.notes.key, "cursor") == b"3"


def test_a_takeover_adopts_what_the_dead_worker_noted_and_sends_only_the_rest(
    redis_notes,
    smtp_settings,
    smtp_sink,
    first_batch,
):
    batch, learners = first_batch
    die_after(pipeline.claim_batch(batch_id=batch.pk), learners[:2])
    assert pipeline.send_batch(batch_id=batch.pk) is None
    assert [m.rcpt_tos for m in smtp_sink.messages] == [[learners[2].email]]
    batch.refresh_from_db()
    assert (batch.state, batch.cursor, batch.sent) == (Batch.DONE, 3, 3)
    prefix = app_settings.redis_key_prefix()
    assert redis_notes.keys(f"{prefix}batch:*") == []  # the note ends with the batch


def test_a_skipped_recipient_between_checkpoint_and_note_is_not_counted_as_sent(
    redis_notes,
    course_with_learners,
    first_batch,
):
    course = course_with_learners[0]
    batch, learners = first_batch
    opt_out(learners[1], course.id)
    claim = pipeline.claim_batch(batch_id=batch.pk)
    recorder = pipeline.BatchProgress(claim, positions={})
    recorder.record_skips({learners[1].pk: "Opted out of this course's email."})
    die_after(claim, [learners[0], learners[2]])
    assert pipeline.send_batch(batch_id=batch.pk) is None  # nothing left to send
    batch.refresh_from_db()
    assert (batch.state, batch.cursor, batch.sent, batch.skipped) == (Batch.DONE, 3, 2, 1)


def test_the_old_owner_learns_at_its_next_note_that_the_batch_was_taken_over(
    redis_notes,
    first_batch,
):
    batch, learners = first_batch
    old = pipeline.claim_batch(batch_id=batch.pk)
    die_after(old, learners[:1])  # it only looked dead
    pipeline.claim_batch(batch_id=batch.pk)
    positions = {user_id: p for p, user_id in enumerate(batch.user_ids)}
    recorder = pipeline.BatchProgress(old, positions=positions)
    recorder.record(sent(learners[1]))  # written; its refusal is read with the next note
    with pytest.raises(pipeline.ClaimLost):
        recorder.record(sent(learners[2]))


def test_notes_lost_with_redis_fall_back_to_a_checkpoint_per_message(
    redis_notes,
    smtp_settings,
    smtp_sink,
    first_batch,
):
    batch, learners = first_batch
    claim = pipeline.claim_batch(batch_id=batch.pk)
    positions = {user_id: p for p, user_id in enumerate(batch.user_ids)}
    recorder = pipeline.BatchProgress(claim, positions=positions)
    recorder.record(sent(learners[0]))
    redis_notes.flushdb()  # Redis restarted without persistence
    recorder.record(sent(learners[1]))
    recorder.record(sent(learners[2]))  # reads the refusal of the note before
    batch.refresh_from_db()
    assert claim.notes.degraded and (batch.cursor, batch.sent) == (3, 3)


@pytest.fixture
def unreachable_redis(settings):
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL,
        "EMAILS_PER_TASK": 3,
        "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens on port 1
    }


def test_an_unreachable_redis_sends_with_database_checkpoints(
    unreachable_redis,
    smtp_settings,
    smtp_sink,
    first_batch,
):
    batch, learners = first_batch
    assert pipeline.send_batch(batch_id=batch.pk) is None
    batch.refresh_from_db()
    assert (batch.state, batch.cursor, batch.sent) == (Batch.DONE, 3, 3)
    assert sorted(a for m in smtp_sink.messages for a in m.rcpt_tos) == sorted(
        u.email for u in learners[:3]
    )
    assert not RecipientOutcome.objects.exists()


def test_without_redis_every_message_is_a_checkpoint(settings, first_batch):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "EMAILS_PER_TASK": 3, "REDIS_URL": None}
    settings.CELERY_BROKER_URL = "filesystem://"
    batch, learners = first_batch
    claim = pipeline.claim_batch(batch_id=batch.pk)
    assert isinstance(claim.notes, progress.DatabaseNotes)
    die_after(claim, learners[:2])
    batch.refresh_from_db()
    assert (batch.cursor, batch.sent) == (2, 2)


def test_two_sites_sharing_one_redis_database_keep_their_notes_apart(
    redis_notes, settings, first_batch
):
    """Two sites' batches can have the same id and creation time; their notes must not meet."""
    batch, _learners = first_batch
    notes = {}
    for site in ("lms-a:", "lms-b:"):
        settings.BULK_EMAIL = {**settings.BULK_EMAIL, "REDIS_KEY_PREFIX": site}
        notes[site] = progress.RedisNotes(redis_notes, batch=batch, token=f"{site}claim")
        assert notes[site].key.startswith(site)
        assert notes[site].adopt() is None  # nothing noted by the other site
        notes[site].note(cursor=2 if site == "lms-a:" else 1)
        notes[site].release()
    assert redis_notes.hget(notes["lms-a:"].key, "cursor") == b"2"
    assert redis_notes.hget(notes["lms-b:"].key, "cursor") == b"1"
