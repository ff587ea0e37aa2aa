"""The LMS port: everything bulk_email needs to know about the host LMS, in one class.

A host LMS implements ``LMSBackend`` once and names it in ``BULK_EMAIL["LMS_BACKEND"]``.
Courses, tracks and cohorts come back as small frozen data objects; membership comes back
as *user querysets*, so that recipient resolution composes them into one SQL query with
opt-outs, de-duplication and ordering done in the database. ``bulk_email/testing.py`` is
the contract every backend must pass.
"""

import datetime
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Expression, QuerySet
from django.utils.module_loading import import_string

from . import app_settings
from .exceptions import BulkEmailConfigurationError
from .tokens import salted_hmac_digest


@dataclass(frozen=True)
class CourseInfo:
    course_id: str
    display_name: str
    org: str
    end: datetime.datetime | None
    postal_address: str
    # The course's language (Open edX's course "language" setting), a BCP 47 tag such as
    # "fr"; "" when the LMS has none. The one source of it: the email's <html lang>, the
    # footer's language for learners with no preferred one of the site's, and an Open edX
    # template's {course_language} (docs/languages.md).
    language: str = ""


@dataclass(frozen=True)
class Track:
    """An enrollment mode of a course, e.g. slug "verified", name "Verified Certificate"."""

    slug: str
    display_name: str


@dataclass(frozen=True)
class Cohort:
    id: int
    name: str
    is_default: bool = False


@dataclass(frozen=True)
class EnrollmentFacts:
    """What ``LMSBackend.enrollment_facts`` gives: ``people``, the users with an active
    enrollment in the course, annotated with ``track``, ``cohort`` and ``enrolled``, one row
    per person and cohort of the course (one row for a person in no cohort); ``repeated``,
    the users with more than one row there (in several cohorts of the course: none in Open
    edX, where a learner is in one cohort of a course at most), counted person by person."""

    people: QuerySet
    repeated: QuerySet


@dataclass(frozen=True)
class Recipient:
    """A person as bulk_email mails them: user id, address and the LMS's full name; the
    anonymous per-course id (%%USER_ID%%) when the send asked the LMS for it; the language
    their message is prepared in (rendering.message_language; "" for the site's)."""

    user_id: int
    email: str
    full_name: str = ""
    anonymous_id: str = ""
    language: str = ""


class LMSBackend:
    """The host LMS as bulk_email sees it: subclass it once per LMS.

    Every method must be implemented; each queryset method returns a queryset of
    ``AUTH_USER_MODEL`` that the caller may further filter, annotate and combine.
    """

    def get_course(self, course_id: str) -> CourseInfo | None:
        """The course, or None when the key names no course."""
        raise NotImplementedError

    def course_tracks(self, course_id: str) -> list[Track]:
        """The course's enrollment tracks, in display order."""
        raise NotImplementedError

    def course_cohorts(self, course_id: str) -> list[Cohort]:
        """The course's cohorts (the default group included when it exists), in display order."""
        raise NotImplementedError

    def course_staff(self, course_id: str) -> QuerySet:
        """Users with the Staff or Admin (instructor) role of the course: the course team.

        Beta testers, discussion moderators/admins and community TAs are not in it unless
        they hold Staff or Admin too."""
        raise NotImplementedError

    def enrolled_learners(
        self,
        course_id: str,
        *,
        mode: str | None = None,
        active_since: datetime.datetime | None = None,
        after_user_id: int = 0,
        activated_only: bool = True,
    ) -> QuerySet:
        """Activated accounts with an active enrollment in the course (in ``mode`` if given).

        With ``activated_only=False``, accounts not activated (``is_active`` false) too: the
        Email tab's breakdown counts how many of a group are left out for that.

        With ``active_since``: only those who logged in since then, or who never logged in
        and enrolled since then. Course team members are *not* removed here.

        With ``after_user_id``: only users whose id is above it, bounded on the enrollment
        table's user column. Recipient pages are read in user-id order from there; the
        caller's own ``pk__gt`` is not enough, because databases do not carry a range across
        a join, and without the bound every page scans the course's enrollments from the
        first one (seconds per page at a million learners instead of milliseconds)."""
        raise NotImplementedError

    def cohort_members(self, course_id: str, cohort_id: int, *, after_user_id: int = 0) -> QuerySet:
        """Users assigned to the cohort (enrollment is not checked here).

        ``after_user_id``: as in ``enrolled_learners``, bounded on the membership table."""
        raise NotImplementedError

    def enrollment_facts(self, course_id: str) -> EnrollmentFacts | None:
        """Optional, for the Email tab's counts at scale: the users with an active enrollment
        in the course (activated or not), annotated with ``track`` (the enrollment's mode
        slug), ``cohort`` (the id of a cohort of the course they are in, or None) and
        ``enrolled`` (when the enrollment was made, for the last-login rule); see
        ``EnrollmentFacts``.

        With it, every learner group of a course is counted in one pass over its enrollments
        (a second at a million learners); None, the default, counts group by group, which is
        exact too but reads the enrollments once per group (docs/performance.md)."""
        return None

    def full_name_expression(self) -> Expression:
        """An expression over the user table giving the user's full name (for annotate)."""
        raise NotImplementedError

    def email_settings_url(self, course_id: str) -> str:
        """Absolute path of the page where a learner turns this course's email on or off."""
        raise NotImplementedError

    def email_template_values(self, course_id: str) -> dict[str, str]:
        """What only the LMS knows for an Open edX email template's placeholders, by name:
        course_url, course_root, course_image_url, account_settings_url, logo_url,
        platform_name (absolute URLs). Any left out is filled with "". course_language is
        not asked here: it is ``CourseInfo.language``, the one source of it."""
        return {}

    def preferred_languages(self, user_ids: list[int]) -> dict[int, str]:
        """Each user's preferred language (Open edX's "pref-lang" user preference), a BCP 47
        tag such as "fr"; users with none may be left out. Called once per batch: one query
        for all of them, never one per user. The default knows of none (every footer is
        then in the course's language, else the site's)."""
        return {}

    def anonymous_user_ids(self, course_id: str, user_ids: list[int]) -> dict[int, str]:
        """Each user's anonymous id for the course, what %%USER_ID%% becomes (Open edX's
        ``anonymous_id_for_user``, used in survey links). Called once per batch. The default
        derives a stable one (HMAC of course and user under SECRET_KEY, 32 hex digits); an LMS
        that stores its own (Open edX's AnonymousUserId) returns those."""
        return {user_id: derived_anonymous_id(course_id, user_id) for user_id in user_ids}

    def user_course_ids(self, user_id: int) -> list[str]:
        """Every course the user is or was enrolled in, or has a role in: retiring the user
        (``bulk_email.api.retire_user``) opts them out of each one."""
        raise NotImplementedError

    def is_enrolled(self, user: AbstractBaseUser, course_id: str) -> bool:
        """Whether the user has an active enrollment in the course (whose email settings they
        may then change). Override when the LMS has a cheaper check."""
        return (
            user.is_authenticated
            and user.is_active
            and self.enrolled_learners(course_id).filter(pk=user.pk).exists()
        )

    def is_course_staff(self, user: AbstractBaseUser, course_id: str) -> bool:
        """Whether the user may send email for the course (Staff or Admin role)."""
        return (
            user.is_authenticated
            and user.is_active
            and self.course_staff(course_id).filter(pk=user.pk).exists()
        )


@cache
def _load_backend(dotted_path: str) -> LMSBackend:
    backend_class = import_string(dotted_path)
    if not (isinstance(backend_class, type) and issubclass(backend_class, LMSBackend)):
        raise BulkEmailConfigurationError(
            f'BULK_EMAIL["LMS_BACKEND"] = {dotted_path!r} is not a subclass of '
            "bulk_email.lms.LMSBackend."
        )
    return backend_class()


def get_lms() -> LMSBackend:
    """The configured LMS backend (one instance per dotted path and process)."""
    dotted_path = app_settings.get("LMS_BACKEND")
    if not dotted_path:
        raise BulkEmailConfigurationError(
            'BULK_EMAIL["LMS_BACKEND"] is not set: name the class that implements '
            "bulk_email.lms.LMSBackend for your LMS."
        )
    try:
        return _load_backend(dotted_path)
    except ImportError as error:
        raise BulkEmailConfigurationError(
            f'BULK_EMAIL["LMS_BACKEND"] = {dotted_path!r} cannot be imported: {error}'
        ) from error


def derived_anonymous_id(course_id: str, user_id: int) -> str:
    """Django's ``salted_hmac`` of the course and user, hex, 32 digits; through the key
    derived once (tokens.salted_hmac_digest, the same bytes): it runs once per recipient."""
    value = f"{course_id}\n{user_id}"
    digest = salted_hmac_digest(ANONYMOUS_ID_SALT, value, secret=settings.SECRET_KEY,
                                algorithm="sha256")  # fmt: skip
    return digest.hex()[:32]


ANONYMOUS_ID_SALT = "bulk_email.anonymous_user_id"
