"""The Email tab's cached counts (api/audience.py, bulk_email/audience.py): a count is asked
of a worker once and read from the cache after; every change to who a course reaches (an
enrollment, a cohort, an opt-out, a suppression) shows in the next count.

The cache is a real Redis (REDIS_TEST_URL), as on a site whose web processes and workers
share one; the changes are committed (transactional tests), as the generation is replaced
only once they are."""

import pytest
from django.test import override_settings

from bulk_email import api, audience
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
