"""lms_stub's backend passes the LMS port contract, and reads a course's first page of
recipients from the course's own first enrollment."""

import datetime
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Min
from django.utils import timezone

from bulk_email.groups import available_groups
from bulk_email.recipients import recipient_id_pages
from bulk_email.testing import LMSBackendContract, World
from lms_stub.bulk_email_backend import StubLMSBackend
from lms_stub.models import CourseAccessRole, CourseEnrollment
from lms_stub.seeding import SeedPlan, course_slug, seed_course
from tests.factories import (
    enroll,
    give_role,
    make_cohort,
    make_course,
    make_user,
    opt_out,
    suppress,
)
from tests.plans import executed_plan, rows_read, statements_of


def months_ago(months: int) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=30 * months)


class TestStubLMSBackend(LMSBackendContract):
    backend = StubLMSBackend()

    def build_world(self) -> World:
        course = make_course(display_name="Physique générale — 物理", tracks=("audit", "verified"))
        other = make_course()
        users = {label: make_user(label) for label in ("instructor", "staff", "beta", "moderator")}
        give_role(users["instructor"], course, CourseAccessRole.INSTRUCTOR)
        give_role(users["staff"], course, CourseAccessRole.STAFF)
        give_role(users["beta"], course, CourseAccessRole.BETA_TESTER)
        give_role(users["moderator"], course, CourseAccessRole.DISCUSSION_MODERATOR)
        for label in ("staff", "beta", "moderator"):
            enroll(users[label], course)
        users["audit_learner"] = make_user("audit_learner")
        enroll(users["audit_learner"], course)
        users["verified_learner"] = make_user("verified_learner")
        enroll(users["verified_learner"], course, mode="verified")
        users["unenrolled"] = make_user("unenrolled")
        enroll(users["unenrolled"], course, is_active=False)
        users["inactive_account"] = make_user("inactive_account", is_active=False)
        enroll(users["inactive_account"], course)
        users["absent"] = make_user("absent", last_login=months_ago(24))
        enroll(users["absent"], course, created=months_ago(30))
        users["never_recent"] = make_user("never_recent", last_login=None)
        enroll(users["never_recent"], course, created=months_ago(1))
        users["never_old"] = make_user("never_old", last_login=None)
        enroll(users["never_old"], course, created=months_ago(24))
        users["other_course"] = make_user("other_course")
        enroll(users["other_course"], other)
        give_role(users["other_course"], other, CourseAccessRole.STAFF)
        default = make_cohort(
            course, "Default Group", members=[users["audit_learner"]], is_default=True
        )
        blue = make_cohort(course, "Blue", members=[users["verified_learner"], users["unenrolled"]])
        return World(
            course_id=course.id,
            course_name=course.display_name,
            other_course_id=other.id,
            users=users,
            cohort_ids={"Default Group": default.id, "Blue": blue.id},
        )


@pytest.mark.django_db
def test_preferred_languages_are_one_query_for_the_batch(django_assert_num_queries):
    from lms_stub.models import UserProfile

    users = [make_user() for _ in range(4)]
    for user, language in zip(users, ["fr", "ar", "", "en"], strict=True):
        UserProfile.objects.filter(user=user).update(language=language)
    with django_assert_num_queries(1):
        languages = StubLMSBackend().preferred_languages([u.pk for u in users])
    assert languages == {users[0].pk: "fr", users[1].pk: "ar", users[3].pk: "en"}


@pytest.mark.django_db
def test_the_course_language_is_the_courses_and_the_template_values_do_not_repeat_it():
    course = make_course(language="ar")
    assert StubLMSBackend().get_course(course.id).language == "ar"
    assert "course_language" not in StubLMSBackend().email_template_values(course.id)


# --- The first page of a course whose learners are the site's newest users -------------------

EARLIER = "course-v1:EarlierX+E1+2026"
NEWEST = "course-v1:NewestX+N1+2026"
EARLIER_LEARNERS = 2000
PAGE = 50


@dataclass
class NewestCourse:
    """A course seeded after one with many more learners: its people have the highest ids."""

    sender_id: int  # its instructor
    opted_out_id: int  # one of its first learners, opted out
    suppressed_id: int  # another, whose address is suppressed
    below_it: int  # a page bound just below its first person: the path of every later page

    def first_page(self, keys: list[str], *, after_id: int = 0) -> list[int]:
        audience = {"course_id": NEWEST, "sender_id": self.sender_id, "target_keys": keys}
        return next(recipient_id_pages(**audience, page_size=PAGE, after_id=after_id), [])


@pytest.fixture
def newest_course() -> NewestCourse:
    # Seeding ANALYZEs the tables on PostgreSQL: the planner knows their sizes.
    seed_course(SeedPlan(course_id=EARLIER, learners=EARLIER_LEARNERS))
    seed_course(SeedPlan(course_id=NEWEST, learners=300, tracks=["audit", "verified"]))
    people = get_user_model().objects.filter(username__startswith=course_slug(NEWEST))
    first_learners = people.filter(
        enrollments__course_id=NEWEST, enrollments__is_active=True, is_active=True
    ).order_by("pk")
    opted_out, suppressed = first_learners[:2]
    opt_out(opted_out, NEWEST)
    suppress(suppressed.email)
    return NewestCourse(
        sender_id=people.get(username__endswith="_instructor").pk,
        opted_out_id=opted_out.pk,
        suppressed_id=suppressed.pk,
        below_it=people.aggregate(first=Min("pk"))["first"] - 1,
    )


def every_group_and_all_together() -> list[list[str]]:
    groups = [[group.key] for group in available_groups(course_id=NEWEST)]
    return [*groups, [key for (key,) in groups]]


@pytest.mark.django_db
@pytest.mark.parametrize("mode", [None, "audit", "verified"])
def test_enrolled_learners_of_the_newest_course_are_its_active_enrollments(newest_course, mode):
    enrollments = CourseEnrollment.objects.filter(
        course_id=NEWEST, is_active=True, **({"mode": mode} if mode else {})
    )
    backend = StubLMSBackend()
    learners = backend.enrolled_learners(NEWEST, mode=mode)
    assert set(learners.values_list("pk", flat=True)) == set(
        enrollments.filter(user__is_active=True).values_list("user_id", flat=True)
    )
    everyone = backend.enrolled_learners(NEWEST, mode=mode, activated_only=False)
    assert set(everyone.values_list("pk", flat=True)) == set(
        enrollments.values_list("user_id", flat=True)
    )


@pytest.mark.django_db
def test_a_course_without_enrollments_has_no_learners(newest_course):
    assert not StubLMSBackend().enrolled_learners(make_course().id).exists()


@pytest.mark.django_db
def test_the_first_page_of_the_newest_course_is_the_page_read_from_just_below_it(newest_course):
    """Every group, and all of them together: the first page, bounded by the course's first
    enrollment, is the page a later page's bound gives, opt-outs and suppressions applied."""
    course = newest_course
    for keys in every_group_and_all_together():
        page = course.first_page(keys)
        assert page == course.first_page(keys, after_id=course.below_it), keys
        assert page and not {course.opted_out_id, course.suppressed_id} & set(page), keys
    learners = course.first_page(["learners"])
    assert len(learners) == PAGE and learners[0] > course.below_it
    assert course.first_page(["myself"]) == [course.sender_id]


@pytest.mark.django_db
@pytest.mark.parametrize("keys", [["learners"], ["track:verified"]], ids=",".join)
def test_the_first_page_of_the_newest_course_reads_no_other_courses_users(newest_course, keys):
    """PostgreSQL merged the course's enrollments with the user table read from id 1, through
    every user of the course seeded before it; the page now starts at its first enrollment."""
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL plan: this runs in the PostgreSQL pass")
    with connection.cursor() as cursor:
        # At a few thousand users, reading the whole user table costs PostgreSQL less than a
        # page of index probes, bounds or not; without that choice the plan shows where the
        # page's index scans start, which is what this test is about (the test's transaction
        # ends the setting).
        cursor.execute("SET LOCAL enable_seqscan = off")
    (page_query,) = statements_of(lambda: newest_course.first_page(keys))
    read = rows_read(executed_plan(*page_query), "auth_user")
    # The course's own 306 people at most, and a probe per id of the page; not the 2,000
    # users seeded before them (about 2,100 were read from id 1).
    assert read < EARLIER_LEARNERS / 2, read
