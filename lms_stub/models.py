"""The slice of an LMS that bulk_email needs: courses, tracks, enrollments, roles, cohorts.

Shaped after Open edX (CourseOverview, CourseMode, CourseEnrollment, CourseAccessRole,
CourseUserGroup) so that the backend in bulk_email_backend.py reads like the one a real LMS
would need. The course key is the primary key, a string such as ``course-v1:Org+Num+Run``.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Course(models.Model):
    id = models.CharField(primary_key=True, max_length=255, help_text="course-v1:Org+Num+Run")
    display_name = models.CharField(max_length=255)
    org = models.CharField(max_length=255)
    end = models.DateTimeField(null=True, blank=True)
    postal_address = models.TextField(
        blank=True, help_text=_("The organisation's postal address, shown in the CAN-SPAM footer.")
    )
    # Open edX's course "language" setting: the mail's footer falls back to it.
    language = models.CharField(
        max_length=16, blank=True, help_text=_('The language the course is taught in, e.g. "fr".')
    )

    def __str__(self) -> str:
        return f"{self.display_name} ({self.id})"


class CourseMode(models.Model):
    """An enrollment track offered by a course (audit, verified, professional, ...)."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="modes")
    mode_slug = models.SlugField(max_length=100)
    mode_display_name = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "mode_slug"], name="unique_course_mode")
        ]
        ordering = ["course", "id"]

    def __str__(self) -> str:
        return f"{self.course_id}: {self.mode_slug}"


class UserProfile(models.Model):
    """The learner's full name lives here, as in Open edX (auth_userprofile.name), and the
    language they chose (Open edX keeps it as the "pref-lang" user preference)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lms_profile"
    )
    name = models.CharField(max_length=255, blank=True)
    language = models.CharField(
        max_length=16,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_(
            "The site's and course email's language for this person; empty: the browser's."
        ),
    )

    def __str__(self) -> str:
        return self.name


class CourseEnrollment(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments"
    )
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    mode = models.SlugField(max_length=100, default="audit")
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "user"], name="unique_enrollment")]
        indexes = [models.Index(fields=["course", "is_active", "mode", "user"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.course_id} ({self.mode})"


class CourseAccessRole(models.Model):
    INSTRUCTOR = "instructor"
    STAFF = "staff"
    BETA_TESTER = "beta_testers"
    DISCUSSION_MODERATOR = "Moderator"
    DISCUSSION_ADMIN = "Administrator"
    COMMUNITY_TA = "Community TA"
    GROUP_COMMUNITY_TA = "Group Moderator"
    ROLE_CHOICES = [
        (INSTRUCTOR, _("Admin (instructor)")),
        (STAFF, _("Staff")),
        (BETA_TESTER, _("Beta tester")),
        (DISCUSSION_MODERATOR, _("Discussion moderator")),
        (DISCUSSION_ADMIN, _("Discussion admin")),
        (COMMUNITY_TA, _("Community TA")),
        (GROUP_COMMUNITY_TA, _("Group community TA")),
    ]
    # Only these two make someone course team for bulk email (Open edX's rule).
    TEAM_ROLES = (INSTRUCTOR, STAFF)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="course_roles"
    )
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=64, choices=ROLE_CHOICES)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "course", "role"], name="unique_course_role")
        ]
        indexes = [models.Index(fields=["course", "role", "user"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} in {self.course_id}"


class Cohort(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="cohorts")
    name = models.CharField(max_length=255)
    is_default = models.BooleanField(
        default=False, help_text=_('The automatic "Default Group" cohort of the course.')
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "name"], name="unique_cohort_name")
        ]
        ordering = ["course", "id"]

    def __str__(self) -> str:
        return f"{self.course_id}: {self.name}"


class CohortMembership(models.Model):
    """Open edX allows one cohort per learner and course; the stub does not enforce that, so
    tests can prove that a learner reached through two cohorts still gets one copy."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cohort_memberships"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cohort", "user"], name="unique_cohort_membership")
        ]
        indexes = [models.Index(fields=["cohort", "user"])]

    def __str__(self) -> str:
        return f"{self.user_id} in cohort {self.cohort_id}"
