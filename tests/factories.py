"""Small factory functions for tests: each makes one real row with sensible defaults."""

import datetime
import itertools

from django.contrib.auth import get_user_model
from django.utils import timezone

from lms_stub.models import (
    Cohort,
    CohortMembership,
    Course,
    CourseAccessRole,
    CourseEnrollment,
    CourseMode,
    UserProfile,
)

_numbers = itertools.count(1)


def make_user(username: str | None = None, *, name: str = "", **fields):
    number = next(_numbers)
    username = username or f"user{number}"
    fields.setdefault("email", f"{username}@example.com")
    fields.setdefault("last_login", timezone.now() - datetime.timedelta(days=1))
    password = fields.pop("password", None)
    user = get_user_model().objects.create(username=username, **fields)
    if password:
        user.set_password(password)
        user.save(update_fields=["password"])
    UserProfile.objects.create(user=user, name=name or f"Learner {number}")
    return user


def make_course(course_id: str | None = None, *, tracks=("audit",), **fields) -> Course:
    number = next(_numbers)
    course_id = course_id or f"course-v1:TestX+T{number}+2026"
    fields.setdefault("display_name", f"Test course {number}")
    fields.setdefault("org", course_id.split(":", 1)[1].split("+")[0])
    fields.setdefault("postal_address", "1 Test Street, Testville")
    course = Course.objects.create(id=course_id, **fields)
    for slug in tracks:
        CourseMode.objects.create(course=course, mode_slug=slug, mode_display_name=slug.title())
    return course


def enroll(user, course: Course, *, mode: str = "audit", is_active: bool = True, created=None):
    return CourseEnrollment.objects.create(
        user=user, course=course, mode=mode, is_active=is_active, created=created or timezone.now()
    )


def give_role(user, course: Course, role: str) -> CourseAccessRole:
    return CourseAccessRole.objects.create(user=user, course=course, role=role)


def make_cohort(course: Course, name: str, *, members=(), is_default: bool = False) -> Cohort:
    cohort = Cohort.objects.create(course=course, name=name, is_default=is_default)
    CohortMembership.objects.bulk_create(CohortMembership(cohort=cohort, user=u) for u in members)
    return cohort
