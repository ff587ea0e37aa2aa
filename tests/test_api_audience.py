"""The Email tab's cached counts (api/audience.py, bulk_email/audience.py): a count is asked
of a worker once and read from the cache after; every change to who a course reaches (an
enrollment, a cohort, an opt-out, a suppression) shows in the next count.

The cache is a real Redis (REDIS_TEST_URL), as on a site whose web processes and workers
share one; the changes are committed (transactional tests), as the generation is replaced
only once they are."""

import pytest
from django.test import override_settings

from bulk_email import api, app_settings, audience
from bulk_email.models import Optout
from lms_stub.models import CohortMembership, CourseAccessRole, CourseEnrollment
from tests.factories import enroll, give_role, make_cohort, make_course, make_user, suppress

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def redis_cache(redis_url):
    cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    with override_settings(CACHES={"default": cache}):
        audience.cache().clear()
        yield
        audience.cache().clear()


class Worker:
    """Records what the tab asks to be counted; ``run`` counts it, as a worker would."""

    def __init__(self):
        self.asked = []

    def __call__(self, *arguments):
        self.asked.append(arguments)

    def run(self):
        for course_id, generation, sender_id in self.asked:
            api.audience.count_histogram(
                course_id=course_id, generation=generation, sender_id=sender_id
            )
        self.asked.clear()


@pytest.fixture
def course():
    return make_course(tracks=("audit", "verified"))


def staff(course):
    user = make_user()
    give_role(user, course, CourseAccessRole.INSTRUCTOR)
    return user


@pytest.fixture
def sender(course):
    return staff(course)


def counts(course, sender, worker):
    """The counts once counted: asked for (None, pending), counted, asked for again."""
    found = api.audience.group_counts(course_id=course.id, sender_id=sender.pk, schedule=worker)
    if found is None:
        worker.run()
        found = api.audience.group_counts(course_id=course.id, sender_id=sender.pk, schedule=worker)
    return found


def test_a_count_is_asked_of_a_worker_once_then_read_from_the_cache(course, sender):
    enroll(make_user(), course, mode="verified")
    worker = Worker()

    def ask():
        return api.audience.group_counts(course_id=course.id, sender_id=sender.pk, schedule=worker)

    assert ask() is None and ask() is None
    assert len(worker.asked) == 1, "one count under way, not one per request"
    worker.run()
    assert ask()["learners"] == 1 and ask()["myself"] == 1 and ask()["staff"] == 1
    assert worker.asked == []


def test_the_total_counts_each_person_once(course, sender):
    learner = make_user()
    enroll(learner, course, mode="verified")
    worker = Worker()
    counts(course, sender, worker)
    total = api.audience.count_recipients(
        course_id=course.id, sender_id=sender.pk, schedule=worker,
        target_keys=["myself", "staff", "learners", "track:verified"],
    )  # fmt: skip
    assert total == 2  # the sender (Myself and Staff) and the learner


def test_an_enrollment_shows_in_the_next_count(course, sender):
    worker = Worker()
    assert counts(course, sender, worker)["learners"] == 0
    enroll(make_user(), course, mode="audit")
    assert counts(course, sender, worker)["learners"] == 1
    CourseEnrollment.objects.filter(course=course).update(is_active=False)  # no signal
    assert counts(course, sender, worker)["learners"] == 1, "an update() announces nothing"
    CourseEnrollment.objects.filter(course=course).first().save()  # the LMS's way: a save
    assert counts(course, sender, worker)["learners"] == 0


def test_a_cohort_membership_shows_in_the_next_count(course, sender):
    learner = make_user()
    enroll(learner, course)
    cohort = make_cohort(course, "Blue")
    worker = Worker()
    assert counts(course, sender, worker)[f"cohort:{cohort.pk}"] == 0
    CohortMembership.objects.create(cohort=cohort, user=learner)
    assert counts(course, sender, worker)[f"cohort:{cohort.pk}"] == 1


def test_an_opt_out_and_an_opt_in_show_in_the_next_count(course, sender):
    learner = make_user()
    enroll(learner, course)
    worker = Worker()
    assert counts(course, sender, worker)["learners"] == 1
    api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.DASHBOARD)
    assert counts(course, sender, worker)["learners"] == 0
    api.opt_in(user_id=learner.pk, course_id=course.id)
    assert counts(course, sender, worker)["learners"] == 1


def test_a_suppression_shows_in_the_next_count_of_every_course(course, sender):
    learner = make_user()
    enroll(learner, course)
    other = make_course()
    enroll(learner, other)
    worker = Worker()
    assert counts(course, sender, worker)["learners"] == 1
    assert counts(other, staff(other), worker)["learners"] == 1
    row = suppress(learner.email)
    assert counts(course, sender, worker)["learners"] == 0
    assert counts(other, staff(other), worker)["learners"] == 0
    row.delete()  # cleared (the learner fixed their address)
    assert counts(course, sender, worker)["learners"] == 1


def test_a_count_that_started_before_a_change_is_never_served_after_it(course, sender):
    """The worker files its count under the generation it was asked for: a change while it
    counted replaced that generation, so the next request asks again."""
    worker = Worker()
    api.audience.group_counts(course_id=course.id, sender_id=sender.pk, schedule=worker)
    enroll(make_user(), course)  # while the count is "under way"
    worker.run()  # files the count under the old generation
    again = api.audience.group_counts(course_id=course.id, sender_id=sender.pk, schedule=worker)
    assert again is None and len(worker.asked) == 1
    worker.run()
    assert counts(course, sender, worker)["learners"] == 1


def test_a_breakdown_is_counted_by_a_worker_too(course, sender):
    enroll(make_user(), course)
    asked = []
    found = api.audience.group_breakdown(
        course_id=course.id,
        sender_id=sender.pk,
        key="learners",
        schedule=lambda *a: asked.append(a),
    )
    assert found is None and len(asked) == 1
    course_id, generation, sender_id, key = asked[0]
    api.audience.count_breakdown(
        course_id=course_id, generation=generation, sender_id=sender_id, key=key
    )
    found = api.audience.group_breakdown(
        course_id=course.id, sender_id=sender.pk, key="learners", schedule=asked.append
    )
    assert found.receive == 1 and found.left_out == 0


# --- Counts kept warm for the courses in use ------------------------------------------------------


class Recounts:
    """Records the recounts asked for after a change (tasks.schedule_recount); ``run`` does
    them, as a worker would."""

    def __init__(self):
        self.asked = []
        self.delays = []

    def __call__(self, course_id, delay=0.0):
        self.asked.append(course_id)
        self.delays.append(delay)

    def run(self):
        done = [api.audience.recount(course_id=course_id) for course_id in self.asked]
        self.asked.clear()
        self.delays.clear()
        return done


def forget(kind: str, course_id: str, generation: str) -> None:
    """What the cache forgets when the entry's time is up."""
    audience.cache().delete(api.audience._key(kind, course_id, generation))


@pytest.fixture
def recounts(monkeypatch):
    from bulk_email import tasks

    recorder = Recounts()
    monkeypatch.setattr(tasks, "schedule_recount", recorder)
    return recorder


def test_a_course_in_use_is_recounted_after_a_change_before_any_page_asks(course, sender, recounts):
    learner = make_user()
    enroll(learner, course)
    worker = Worker()
    assert counts(course, sender, worker)["learners"] == 1  # the tab was opened: in use
    api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.DASHBOARD)
    assert recounts.asked == [course.id]
    assert not api.audience.is_counted(course_id=course.id)
    assert recounts.run() == [True]
    assert api.audience.is_counted(course_id=course.id)
    found = api.audience.group_counts(course_id=course.id, sender_id=sender.pk, schedule=worker)
    assert found["learners"] == 0 and worker.asked == [], "read at once, nothing to count"


def test_a_recount_places_the_staff_who_opened_the_tab(
    course, sender, recounts, django_assert_num_queries
):
    learner = make_user()
    enroll(learner, course)
    worker = Worker()
    counts(course, sender, worker)
    api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.DASHBOARD)
    recounts.run()
    with django_assert_num_queries(0):  # their place (Myself) too is counted already
        found = api.audience.group_counts(course_id=course.id, sender_id=sender.pk, schedule=worker)
    assert found["myself"] == 1 and found["learners"] == 0


def test_a_course_nobody_has_open_is_not_recounted(course, recounts):
    learner = make_user()
    enroll(learner, course)
    api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.DASHBOARD)
    assert recounts.asked == []
    assert api.audience.keep_warm(schedule=recounts) == []


def window_ends(course_id: str) -> None:
    """What the cache forgets when AUDIENCE_RECOUNT_SECONDS are over."""
    forget("recount", course_id, "")
    audience.cache().delete(api.audience._key("recount", course_id, "") + ":trailing")


def test_a_flood_of_changes_is_recounted_at_once_then_once_at_the_end_of_the_window(
    course, sender, recounts
):
    learners = [make_user() for _ in range(5)]
    for learner in learners:
        enroll(learner, course)
    worker = Worker()
    assert counts(course, sender, worker)["learners"] == 5
    api.opt_out(user_id=learners[0].pk, course_id=course.id, how=Optout.DASHBOARD)
    assert recounts.delays == [0.0], "the first change: at once"
    assert recounts.run() == [True]
    for learner in learners[1:]:
        api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.DASHBOARD)
    assert recounts.asked == [course.id], "the later ones: one recount for all of them"
    assert 0 < recounts.delays[0] <= app_settings.get("AUDIENCE_RECOUNT_SECONDS")
    assert not api.audience.is_counted(course_id=course.id)
    assert recounts.run() == [True]
    found = api.audience.group_counts(course_id=course.id, sender_id=sender.pk, schedule=worker)
    assert found["learners"] == 0 and worker.asked == [], "every change of the window counted"
    window_ends(course.id)
    enroll(make_user(), course)
    assert recounts.delays[0] == 0.0, "a new window: at once again"


def test_a_recount_of_counts_that_are_fresh_counts_nothing(course, sender, recounts):
    worker = Worker()
    counts(course, sender, worker)
    assert api.audience.recount(course_id=course.id) is False


def test_a_suppression_recounts_every_course_in_use(course, sender, recounts):
    learner = make_user()
    other = make_course()
    for each in (course, other):
        enroll(learner, each)
    worker = Worker()
    counts(course, sender, worker)
    counts(other, staff(other), worker)
    suppress(learner.email)
    assert set(recounts.asked) == {course.id, other.id}
    assert recounts.run().count(True) == 2, "each course counted once"
    found = api.audience.group_counts(course_id=other.id, sender_id=None, schedule=worker)
    assert found["learners"] == 0 and worker.asked == [], "read at once, nothing to count"


def test_counts_near_their_expiry_are_recounted_while_the_course_is_in_use(
    course, sender, recounts
):
    worker = Worker()
    counts(course, sender, worker)
    assert api.audience.keep_warm(schedule=recounts) == [], "fresh"
    forget("fresh", course.id, audience.generation(course_id=course.id))  # 3/4 of its life gone
    assert api.audience.keep_warm(schedule=recounts) == [course.id]
    assert recounts.run() == [True]


def test_a_recount_gives_way_to_a_count_of_the_same_generation_under_way(course, sender):
    worker = Worker()
    api.audience.group_counts(course_id=course.id, sender_id=sender.pk, schedule=worker)
    assert len(worker.asked) == 1  # the page's count, not done yet
    assert api.audience.recount(course_id=course.id) is False
    assert not api.audience.is_counted(course_id=course.id)


def test_a_broken_listener_does_not_undo_the_change(course, caplog, monkeypatch):
    def broken(course_id):
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(audience, "_after_bump", [broken])
    learner = make_user()
    enroll(learner, course)
    api.opt_out(user_id=learner.pk, course_id=course.id, how=Optout.DASHBOARD)
    assert Optout.objects.filter(user=learner, course_id=course.id).exists()
    assert "the broker is down" in caplog.text
