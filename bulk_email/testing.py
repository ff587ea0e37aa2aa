"""The contract every bulk_email LMS backend must pass.

To check a backend for another LMS, subclass ``LMSBackendContract`` in a test module, set
``backend`` and implement ``build_world()`` to create, in that LMS, the people listed in
``WORLD_PEOPLE`` (label -> what they are). The tests then check every method of the port.
"""

import datetime
from dataclasses import dataclass

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulk_email.lms import CourseInfo, LMSBackend

# Course A has tracks "audit" and "verified" and cohorts "Default Group" (default) and "Blue".
WORLD_PEOPLE = {
    "instructor": "Admin (instructor) role in A, not enrolled",
    "staff": "Staff role in A, also enrolled in A (audit)",
    "beta": "beta tester in A, enrolled (audit)",
    "moderator": "discussion moderator in A, enrolled (audit)",
    "audit_learner": "enrolled in A (audit), in cohort Default Group",
    "verified_learner": "enrolled in A (verified), in cohort Blue",
    "unenrolled": "inactive enrollment in A (audit), in cohort Blue",
    "inactive_account": "account not activated, enrolled in A (audit)",
    "absent": "last login 24 months ago, enrolled in A 30 months ago (audit)",
    "never_recent": "never logged in, enrolled in A 1 month ago (audit)",
    "never_old": "never logged in, enrolled in A 24 months ago (audit)",
    "other_course": "enrolled in course B only, and Staff of B",
}


@dataclass
class World:
    course_id: str
    course_name: str
    other_course_id: str
    users: dict  # label in WORLD_PEOPLE -> user
    cohort_ids: dict  # cohort name -> id


def ids(queryset: QuerySet) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


@pytest.mark.django_db
class LMSBackendContract:
    backend: LMSBackend

    def build_world(self) -> World:
        raise NotImplementedError

    @pytest.fixture
    def world(self) -> World:
        world = self.build_world()
        assert set(world.users) == set(WORLD_PEOPLE)
        return world

    def people(self, world: World, *labels: str) -> set[int]:
        return {world.users[label].pk for label in labels}

    def test_get_course(self, world):
        course = self.backend.get_course(world.course_id)
        assert isinstance(course, CourseInfo)
        assert (course.course_id, course.display_name) == (world.course_id, world.course_name)
        assert self.backend.get_course("course-v1:No+Such+Course") is None

    def test_tracks(self, world):
        assert [t.slug for t in self.backend.course_tracks(world.course_id)] == [
            "audit",
            "verified",
        ]

    def test_cohorts(self, world):
        cohorts = {c.name: c for c in self.backend.course_cohorts(world.course_id)}
        assert set(cohorts) == {"Default Group", "Blue"}
        assert cohorts["Default Group"].is_default and not cohorts["Blue"].is_default
        assert cohorts["Blue"].id == world.cohort_ids["Blue"]

    def test_course_staff_is_staff_and_admin_only(self, world):
        assert ids(self.backend.course_staff(world.course_id)) == self.people(
            world, "instructor", "staff"
        )

    def test_enrolled_learners_are_active_accounts_with_active_enrollments(self, world):
        assert ids(self.backend.enrolled_learners(world.course_id)) == self.people(
            world,
            *("staff", "beta", "moderator", "audit_learner", "verified_learner"),
            *("absent", "never_recent", "never_old"),
        )

    def test_enrolled_learners_with_accounts_not_activated(self, world):
        learners = self.backend.enrolled_learners(world.course_id, activated_only=False)
        assert ids(learners) == self.people(
            world,
            *("staff", "beta", "moderator", "audit_learner", "verified_learner"),
            *("absent", "never_recent", "never_old", "inactive_account"),
        )

    def test_enrolled_learners_by_mode(self, world):
        learners = self.backend.enrolled_learners(world.course_id, mode="verified")
        assert ids(learners) == self.people(world, "verified_learner")

    def test_active_since_keeps_recent_logins_and_recent_never_logged_in(self, world):
        cutoff = timezone.now() - datetime.timedelta(days=548)
        learners = self.backend.enrolled_learners(world.course_id, active_since=cutoff)
        assert ids(learners) == self.people(
            world,
            *("staff", "beta", "moderator", "audit_learner", "verified_learner", "never_recent"),
        )

    def test_cohort_members(self, world):
        members = self.backend.cohort_members(world.course_id, world.cohort_ids["Blue"])
        assert ids(members) == self.people(world, "verified_learner", "unenrolled")

    def test_after_user_id_keeps_only_higher_user_ids(self, world):
        blue = world.cohort_ids["Blue"]
        for members in (
            lambda **kw: self.backend.enrolled_learners(world.course_id, **kw),
            lambda **kw: self.backend.enrolled_learners(world.course_id, mode="audit", **kw),
            lambda **kw: self.backend.cohort_members(world.course_id, blue, **kw),
        ):
            every_id = sorted(ids(members()))
            middle = every_id[len(every_id) // 2]
            assert ids(members(after_user_id=middle)) == {pk for pk in every_id if pk > middle}
            assert ids(members(after_user_id=0)) == set(every_id)

    def test_querysets_have_no_duplicates_and_compose_in_sql(self, world):
        for queryset in (
            self.backend.course_staff(world.course_id),
            self.backend.enrolled_learners(world.course_id),
            self.backend.cohort_members(world.course_id, world.cohort_ids["Blue"]),
        ):
            assert queryset.count() == len(ids(queryset))
            # Usable as a subquery: this is how recipients.py combines them.
            combined = queryset.model.objects.filter(pk__in=queryset.values("pk"))
            assert combined.count() == queryset.count()

    def test_full_name_expression(self, world):
        user = world.users["audit_learner"]
        annotated = (
            type(user)
            .objects.filter(pk=user.pk)
            .annotate(full_name=self.backend.full_name_expression())
        )
        assert annotated.get().full_name

    def test_is_course_staff(self, world):
        assert self.backend.is_course_staff(world.users["instructor"], world.course_id)
        assert self.backend.is_course_staff(world.users["staff"], world.course_id)
        for label in ("beta", "moderator", "audit_learner", "other_course"):
            assert not self.backend.is_course_staff(world.users[label], world.course_id)

    def test_is_enrolled(self, world):
        for label in ("audit_learner", "verified_learner"):
            assert self.backend.is_enrolled(world.users[label], world.course_id)
        for label in ("inactive_account", "unenrolled", "other_course", "instructor"):
            assert not self.backend.is_enrolled(world.users[label], world.course_id)

    def test_user_course_ids_name_every_course_of_the_user_once(self, world):
        user_courses = self.backend.user_course_ids
        assert user_courses(world.users["staff"].pk) == [world.course_id]
        assert user_courses(world.users["unenrolled"].pk) == [world.course_id]
        assert user_courses(world.users["other_course"].pk) == [world.other_course_id]

    def test_preferred_languages_are_asked_for_a_whole_batch_at_once(self, world):
        """One call per batch of recipients: as many queries for many users as for one
        (never one per user); only users asked about, each with a language tag string."""
        user_ids = [user.pk for user in world.users.values()]
        with CaptureQueriesContext(connection) as for_one:
            self.backend.preferred_languages(user_ids[:1])
        with CaptureQueriesContext(connection) as for_all:
            languages = self.backend.preferred_languages(user_ids)
        assert len(for_all) <= max(len(for_one), 1)
        assert set(languages) <= set(user_ids)
        assert all(isinstance(tag, str) for tag in languages.values())

    def test_the_course_language_is_a_tag_or_empty(self, world):
        assert isinstance(self.backend.get_course(world.course_id).language, str)

    def test_email_settings_url_is_an_absolute_path(self, world):
        assert self.backend.email_settings_url(world.course_id).startswith("/")
