"""The one file that knows both apps: lms_stub's implementation of bulk_email's LMS port."""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    Expression,
    F,
    FilteredRelation,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.signals import post_delete, post_save
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import urlencode

from bulk_email.lms import Cohort as CohortInfo
from bulk_email.lms import CourseInfo, EnrollmentFacts, LMSBackend, Track
from bulk_email.signals import audience_changed

from .models import (
    Cohort,
    CohortMembership,
    Course,
    CourseAccessRole,
    CourseEnrollment,
    CourseMode,
    UserProfile,
)


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
        else:
            # A first page has no last id to start from: the user table is read from the
            # course's own first enrollment, not from id 1 through every other course's users
            # (docs/recipients.md, "The first page"). PostgreSQL guesses that a bound it cannot
            # see keeps a third of the rows, and each such guess can tip a plan: so the user
            # table only (on the enrollments too, cohort pages hashed the whole cohort), and
            # not on later pages, whose bound is already right.
            enrollment &= Q(pk__gte=_first_enrolled_user_id(course_id))
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

    def enrollment_facts(self, course_id: str) -> EnrollmentFacts:
        enrolled = get_user_model().objects.filter(
            enrollments__course_id=course_id, enrollments__is_active=True
        )
        facts = enrolled.annotate(track=F("enrollments__mode"), enrolled=F("enrollments__created"))
        cohort_ids = list(Cohort.objects.filter(course_id=course_id).values_list("pk", flat=True))
        if not cohort_ids:
            no_cohort = facts.annotate(cohort=Value(None, output_field=BigIntegerField()))
            return EnrollmentFacts(people=no_cohort, repeated=enrolled.none())
        # The cohort as a LEFT JOIN on the course's few cohort ids, not a subquery a row: one
        # pass over each table. This stub lets a user be in several cohorts of a course (Open
        # edX does not): those are the repeated rows.
        in_course_cohort = FilteredRelation(
            "cohort_memberships", condition=Q(cohort_memberships__cohort_id__in=cohort_ids)
        )
        people = facts.annotate(course_cohort=in_course_cohort).annotate(
            cohort=F("course_cohort__cohort_id")
        )
        several = (
            CohortMembership.objects.filter(cohort_id__in=cohort_ids)
            .values("user_id")
            .annotate(cohorts=Count("pk"))
            .filter(cohorts__gt=1)
            .values("user_id")
        )
        return EnrollmentFacts(people=people, repeated=enrolled.filter(pk__in=several))

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


def _first_enrolled_user_id(course_id: str) -> Subquery:
    """The smallest user id enrolled in the course: one probe of the (course, user) index,
    run once per query (PostgreSQL's InitPlan) and then an index condition on the user
    table's primary key. Any enrollment, active or not: a bound at or below the first
    learner is all it must be, and without ``is_active`` the probe reads the index alone,
    where with it PostgreSQL chose to walk the user-id index through the other courses'
    enrollments. No enrollment: NULL, which keeps nobody, as the join would."""
    enrollments = CourseEnrollment.objects.filter(course_id=course_id)
    return Subquery(enrollments.order_by("user_id").values("user_id")[:1])


# --- Telling bulk_email who a course reaches changed (its Email tab's counts are cached) ------


def announce_audience_changes() -> None:
    """Send ``bulk_email.signals.audience_changed`` on every change to an enrollment, a cohort
    or its membership, a course-team role, or an account (every course): what a host LMS
    does for the Email tab's counts to follow it (docs/performance.md)."""
    for model in (CourseEnrollment, CourseAccessRole, Cohort, CohortMembership, CourseMode):
        for signal in (post_save, post_delete):
            signal.connect(
                _course_row_changed,
                sender=model,
                dispatch_uid=f"lms_stub.audience.{model.__name__}.{signal}",
            )
    user_model = get_user_model()
    for signal in (post_save, post_delete):
        signal.connect(
            _account_changed, sender=user_model, dispatch_uid=f"lms_stub.audience.user.{signal}"
        )


def _course_row_changed(sender, instance, **kwargs) -> None:
    course_id = (
        instance.cohort.course_id if isinstance(instance, CohortMembership) else instance.course_id
    )
    audience_changed.send(sender=sender, course_id=course_id)


def _account_changed(sender, instance, update_fields=None, **kwargs) -> None:
    # A login saves last_login alone, on every sign-in: not announced (that is the cache's
    # time limit's job, docs/performance.md), or every login would recount every course.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    audience_changed.send(sender=sender, course_id=None)
