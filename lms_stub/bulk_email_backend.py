"""The one file that knows both apps: lms_stub's implementation of bulk_email's LMS port."""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, Expression, F, Q, QuerySet
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import urlencode

from bulk_email.lms import Cohort as CohortInfo
from bulk_email.lms import CourseInfo, LMSBackend, Track

from .models import Cohort, Course, CourseAccessRole, CourseEnrollment, CourseMode, UserProfile


class StubLMSBackend(LMSBackend):
    def get_course(self, course_id: str) -> CourseInfo | None:
        course = Course.objects.filter(pk=course_id).first()
        if course is None:
            return None
        return CourseInfo(
            course_id=course.id,
            display_name=course.display_name,
            org=course.org,
            end=course.end,
            postal_address=course.postal_address,
            language=course.language,
        )

    def course_tracks(self, course_id: str) -> list[Track]:
        modes = CourseMode.objects.filter(course_id=course_id).order_by("id")
        return [Track(slug=m.mode_slug, display_name=m.mode_display_name) for m in modes]

    def course_cohorts(self, course_id: str) -> list[CohortInfo]:
        cohorts = Cohort.objects.filter(course_id=course_id).order_by("-is_default", "name")
        return [CohortInfo(id=c.id, name=c.name, is_default=c.is_default) for c in cohorts]

    def course_staff(self, course_id: str) -> QuerySet:
        return get_user_model().objects.filter(
            pk__in=CourseAccessRole.objects.filter(
                course_id=course_id, role__in=CourseAccessRole.TEAM_ROLES
            ).values("user_id")
        )

    def enrolled_learners(
        self,
        course_id: str,
        *,
        mode: str | None = None,
        active_since: datetime.datetime | None = None,
        after_user_id: int = 0,
        activated_only: bool = True,
    ) -> QuerySet:
        enrollment = Q(enrollments__course_id=course_id, enrollments__is_active=True)
        if after_user_id:
            # On the enrollment's own column, so the (course, user) index starts at the page.
            enrollment &= Q(enrollments__user_id__gt=after_user_id)
        if mode is not None:
            enrollment &= Q(enrollments__mode=mode)
        if active_since is not None:
            enrollment &= Q(last_login__gte=active_since) | Q(
                last_login__isnull=True, enrollments__created__gte=active_since
            )
        # One enrollment per (user, course), so the join cannot duplicate users.
        users = get_user_model().objects.filter(enrollment)
        return users.filter(is_active=True) if activated_only else users

    def cohort_members(self, course_id: str, cohort_id: int, *, after_user_id: int = 0) -> QuerySet:
        # The course check is an uncorrelated EXISTS, evaluated once, rather than a join to
        # the cohort table: the join made PostgreSQL misjudge the cohort's size and hash it
        # whole instead of reading the membership index from the page's start.
        cohort_of_course = Cohort.objects.filter(pk=cohort_id, course_id=course_id)
        membership = Q(cohort_memberships__cohort_id=cohort_id) & Q(Exists(cohort_of_course))
        if after_user_id:
            membership &= Q(cohort_memberships__user_id__gt=after_user_id)
        return get_user_model().objects.filter(membership)

    def full_name_expression(self) -> Expression:
        return F("lms_profile__name")

    def email_settings_url(self, course_id: str) -> str:
        # The dashboard opens that course's Email Settings dialog (lms_stub.views).
        return reverse("dashboard") + "?" + urlencode({"email_settings": course_id})

    def preferred_languages(self, user_ids: list[int]) -> dict[int, str]:
        # One query for the batch: the profile's language, where the person chose one.
        profiles = UserProfile.objects.filter(user_id__in=user_ids).exclude(language="")
        return dict(profiles.values_list("user_id", "language"))

    def user_course_ids(self, user_id: int) -> list[str]:
        enrolled = CourseEnrollment.objects.filter(user_id=user_id).values_list("course_id")
        roles = CourseAccessRole.objects.filter(user_id=user_id).values_list("course_id")
        return sorted({course_id for (course_id,) in enrolled.union(roles)})

    def email_template_values(self, course_id: str) -> dict[str, str]:
        # lms_stub has no course pages for learners: the dashboard row of the course is its
        # place, and the dashboard holds what an account page would.
        site = settings.SITE_URL
        course_root = reverse("dashboard") + f"#course-{course_id}"
        return {
            "course_root": course_root,
            "course_url": site + course_root,
            "course_image_url": site + static("lms_stub/favicon.svg"),
            "account_settings_url": site + reverse("dashboard"),
            "logo_url": site + static("lms_stub/favicon.svg"),
            "platform_name": settings.PLATFORM_NAME,
        }
