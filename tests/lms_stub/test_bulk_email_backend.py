"""lms_stub's backend passes the LMS port contract."""

import datetime

import pytest
from django.utils import timezone

from bulk_email.testing import LMSBackendContract, World
from lms_stub.bulk_email_backend import StubLMSBackend
from lms_stub.models import CourseAccessRole
from tests.factories import enroll, give_role, make_cohort, make_course, make_user


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
