"""record_feedback: what each kind of feedback does to the tables, once."""

import dataclasses
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from bulk_email.feedback.record import (
    COMPLAINT,
    COUNTED,
    DUPLICATE,
    HARD_BOUNCE,
    IGNORED,
    OPTED_OUT,
    OUTCOME_IGNORED,
    SOFT_BOUNCE,
    SUPPRESSED,
    UNSUBSCRIBE,
    FeedbackItem,
    record_feedback,
)
from bulk_email.models import EmailTask, FeedbackEvent, Optout, Suppression
from tests.factories import make_course, make_task, make_user, suppress

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def send():
    course = make_course()
    learner = make_user("ann", email="Ann@Example.com")
    task = make_task(course, make_user("prof"))
    return course, learner, task


def item(kind, send, key="k1", **fields) -> FeedbackItem:
    _course, learner, task = send
    fields = {"address": learner.email, "source": "dsn", **fields}
    return FeedbackItem(kind=kind, dedupe_key=key, user_id=learner.pk, task_id=task.pk, **fields)


def counts(task) -> tuple[int, int]:
    task = EmailTask.objects.get(pk=task.pk)
    return task.bounced, task.complained


def test_a_hard_bounce_suppresses_the_address_and_counts_on_its_send(send):
    outcome = record_feedback(item(HARD_BOUNCE, send, status_code="5.1.1", diagnostic="no user"))
    assert outcome == SUPPRESSED
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason) == ("ann@example.com", "hard_bounce")
    assert (suppression.status_code, suppression.diagnostic, suppression.count) == (
        "5.1.1",
        "no user",
        1,
    )
    assert suppression.user_id == send[1].pk
    assert counts(send[2]) == (1, 0)
    event = FeedbackEvent.objects.get()
    assert (event.kind, event.task_id, event.course_id) == (HARD_BOUNCE, send[2].pk, send[0].id)


def test_the_same_event_twice_changes_nothing_the_second_time(send):
    assert record_feedback(item(HARD_BOUNCE, send)) == SUPPRESSED
    assert record_feedback(item(HARD_BOUNCE, send)) == DUPLICATE
    assert FeedbackEvent.objects.count() == 1
    assert Suppression.objects.get().count == 1
    assert counts(send[2]) == (1, 0)


def test_a_second_hard_bounce_confirms_the_suppression(send):
    record_feedback(item(HARD_BOUNCE, send, key="a", status_code="5.1.1"))
    record_feedback(item(HARD_BOUNCE, send, key="b", status_code="5.2.1", diagnostic="gone"))
    suppression = Suppression.objects.get()
    assert (suppression.count, suppression.status_code, suppression.diagnostic) == (
        2,
        "5.2.1",
        "gone",
    )
    assert counts(send[2]) == (2, 0)


def test_soft_bounces_count_until_the_limit_then_suppress(send, settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "SOFT_BOUNCE_LIMIT": 3}
    assert record_feedback(item(SOFT_BOUNCE, send, key="1", status_code="4.2.2")) == COUNTED
    assert record_feedback(item(SOFT_BOUNCE, send, key="2")) == COUNTED
    assert not Suppression.objects.exists()
    assert record_feedback(item(SOFT_BOUNCE, send, key="3")) == SUPPRESSED
    assert Suppression.objects.get().reason == Suppression.SOFT_BOUNCES
    assert counts(send[2]) == (0, 0)  # a temporary failure is not a bounce of the send


def test_soft_bounces_older_than_the_window_do_not_count(send, settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "SOFT_BOUNCE_LIMIT": 2, "SOFT_BOUNCE_DAYS": 7}
    record_feedback(item(SOFT_BOUNCE, send, key="old"))
    FeedbackEvent.objects.update(received=timezone.now() - timedelta(days=8))
    assert record_feedback(item(SOFT_BOUNCE, send, key="new")) == COUNTED
    assert not Suppression.objects.exists()


def test_a_complaint_opts_out_of_that_course_and_suppresses(send):
    course, learner, task = send
    other_course = make_course()
    assert record_feedback(item(COMPLAINT, send, source="arf")) == SUPPRESSED
    optout = Optout.objects.get()
    assert (optout.user_id, optout.course_id, optout.how) == (learner.pk, course.id, "complaint")
    assert not Optout.objects.filter(course_id=other_course.id).exists()
    assert Suppression.objects.get().reason == Suppression.COMPLAINT
    assert counts(task) == (0, 1)


def test_a_complaint_outranks_a_bounce_and_a_bounce_does_not_weaken_it(send):
    record_feedback(item(HARD_BOUNCE, send, key="a"))
    record_feedback(item(COMPLAINT, send, key="b"))
    record_feedback(item(HARD_BOUNCE, send, key="c"))
    assert Suppression.objects.get().reason == Suppression.COMPLAINT


def test_an_operators_suppression_stays_manual(send):
    suppress("ann@example.com", reason=Suppression.MANUAL)
    record_feedback(item(HARD_BOUNCE, send))
    assert Suppression.objects.get().reason == Suppression.MANUAL


def test_a_mailed_unsubscribe_opts_out_of_exactly_that_course(send):
    course, learner, task = send
    assert record_feedback(item(UNSUBSCRIBE, send, source="mailto")) == OPTED_OUT
    assert list(Optout.objects.values_list("user_id", "course_id", "how")) == [
        (learner.pk, course.id, "mailto")
    ]
    assert not Suppression.objects.exists()
    assert counts(task) == (0, 0)


def test_an_earlier_opt_out_is_kept_as_it_was(send):
    course, learner, _ = send
    Optout.objects.create(user=learner, course_id=course.id, how=Optout.DASHBOARD)
    assert record_feedback(item(UNSUBSCRIBE, send)) == OPTED_OUT
    assert Optout.objects.get().how == Optout.DASHBOARD


def test_ignored_feedback_is_recorded_and_changes_nothing(send):
    assert record_feedback(item(IGNORED, send, diagnostic="auto-reply")) == OUTCOME_IGNORED
    assert FeedbackEvent.objects.get().kind == IGNORED
    assert not Suppression.objects.exists() and not Optout.objects.exists()


def test_a_course_other_than_the_tasks_makes_it_ignored(send):
    other = make_course()
    assert record_feedback(item(COMPLAINT, send, course_id=other.id)) == OUTCOME_IGNORED
    assert FeedbackEvent.objects.get().kind == IGNORED
    assert not Suppression.objects.exists() and not Optout.objects.exists()
    assert counts(send[2]) == (0, 0)


@pytest.mark.parametrize("missing", ["user_id", "task_id"])
def test_a_deleted_user_or_task_makes_it_ignored(send, missing):
    stale = dataclasses.replace(item(UNSUBSCRIBE, send), **{missing: 987654})
    assert record_feedback(stale) == OUTCOME_IGNORED
    assert not Optout.objects.exists()


def test_a_bounce_without_user_or_task_suppresses_the_address_it_names():
    bounce = FeedbackItem(HARD_BOUNCE, " Bob@Example.org ", "dsn", "k", status_code="5.1.1")
    assert record_feedback(bounce) == SUPPRESSED
    assert Suppression.objects.get().address == "bob@example.org"


def test_a_bounce_with_no_address_and_no_user_changes_nothing():
    assert record_feedback(FeedbackItem(HARD_BOUNCE, "", "dsn", "k")) == OUTCOME_IGNORED
    assert not Suppression.objects.exists()
    assert FeedbackEvent.objects.count() == 1


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        record_feedback(FeedbackItem("bogus", "a@b.c", "dsn", "k"))


def test_oversized_fields_are_cut_to_their_columns(send):
    long = item(HARD_BOUNCE, send, status_code="5" * 100, diagnostic="x" * 10_000)
    record_feedback(long)
    event = FeedbackEvent.objects.get()
    assert len(event.status_code) == 16 and len(event.diagnostic) == 2000


@pytest.mark.django_db(transaction=True)
def test_the_same_event_from_two_processes_at_once_is_recorded_once(send):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises the whole file)")
    outcomes, barrier = [], threading.Barrier(4)

    def deliver():
        barrier.wait()
        try:
            outcomes.append(record_feedback(item(HARD_BOUNCE, send, key="same")))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [DUPLICATE] * 3 + [SUPPRESSED]
    assert Suppression.objects.get().count == 1
    assert counts(send[2]) == (1, 0)


@pytest.mark.django_db(transaction=True)
def test_different_bounces_of_one_address_at_once_make_one_suppression(send):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises the whole file)")
    outcomes, barrier = [], threading.Barrier(4)

    def deliver(key):
        barrier.wait()
        try:
            outcomes.append(record_feedback(item(HARD_BOUNCE, send, key=key)))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(f"k{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [SUPPRESSED] * 4
    assert Suppression.objects.get().count == 4
    assert counts(send[2]) == (4, 0)


def test_a_new_suppression_and_opt_out_are_announced_once(send, django_capture_on_commit_callbacks):
    from bulk_email import signals

    heard = []

    def listen(signal_name):
        return lambda sender, **arguments: heard.append((signal_name, arguments))

    suppressed, opted_out = listen("address_suppressed"), listen("opted_out")
    signals.address_suppressed.connect(suppressed)
    signals.opted_out.connect(opted_out)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            record_feedback(item(COMPLAINT, send, key="a", source="arf"))
            record_feedback(item(COMPLAINT, send, key="b", source="arf"))
            record_feedback(item(HARD_BOUNCE, send, key="c"))
    finally:
        signals.address_suppressed.disconnect(suppressed)
        signals.opted_out.disconnect(opted_out)
    _course, learner, _task = send
    assert sorted(name for name, _ in heard) == ["address_suppressed", "opted_out"]
    arguments = dict(heard)
    assert arguments["address_suppressed"] == {
        "address": "ann@example.com", "reason": "complaint", "source": "arf",
        "user_id": learner.pk, "signal": signals.address_suppressed,
    }  # fmt: skip
    assert arguments["opted_out"]["how"] == "complaint"
