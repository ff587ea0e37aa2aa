"""Who may do what, checked once at the edge (a view, a command) into a small frozen object
that the services and selectors take: holding one is the proof the check passed, so no
service checks again."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext as _

from ..exceptions import (
    BulkEmailDisabledError,
    BulkEmailError,
    NotCourseStaffError,
    NotEnrolledError,
    UnknownCourseError,
    UnknownTaskError,
)
from ..lms import CourseInfo, get_lms
from ..models import BulkEmailFlag, EmailTask

STAFF = "staff"  # the course's Staff or Admin role: may send
LEARNER = "learner"  # enrolled: may change the course's Email Settings


@dataclass(frozen=True)
class CourseAccess:
    """A user's checked access to one course, in the roles the check granted."""

    user: AbstractBaseUser
    course: CourseInfo
    roles: frozenset[str]

    @property
    def course_id(self) -> str:
        return self.course.course_id

    def owns(self, task: EmailTask) -> EmailTask:
        """``task`` when it is a send of this course; UnknownTaskError otherwise (another
        course's task id says nothing to this course's staff)."""
        if task.email.course_id != self.course_id:
            raise UnknownTaskError(_("This course has no email task %(id)s.") % {"id": task.pk})
        return task


def course_or_refuse(course_id: str) -> CourseInfo:
    course = get_lms().get_course(course_id)
    if course is None:
        raise UnknownCourseError(_("There is no course %(course)s.") % {"course": course_id})
    return course


def staff_access(*, user: AbstractBaseUser, course_id: str) -> CourseAccess:
    """Raise unless ``user`` may send bulk email for the course now."""
    course = course_or_refuse(course_id)
    if reason := BulkEmailFlag.disabled_reason(course_id):
        raise BulkEmailDisabledError(reason)
    if not get_lms().is_course_staff(user, course_id):
        raise NotCourseStaffError(_("Only the course's Staff and Admins can send course email."))
    return CourseAccess(user=user, course=course, roles=frozenset({STAFF}))


def can_send(*, course_id: str, user: AbstractBaseUser) -> bool:
    """Whether ``staff_access`` lets the user through: the dashboard shows the Email tab."""
    return not send_refusal(course_id=course_id, user=user)


def send_refusal(*, course_id: str, user: AbstractBaseUser) -> str:
    """Why ``staff_access`` turns the user away ("" when it lets them through): the host
    shows it to the course team in place of the absent Email tab."""
    try:
        staff_access(user=user, course_id=course_id)
    except BulkEmailError as refused:
        return str(refused)
    return ""


def course_email_enabled(*, course_id: str) -> bool:
    """Whether the course sends bulk email at all: when it does not, learners' dashboards
    leave its Email Settings out, as Open edX does (there is nothing to opt out of)."""
    return BulkEmailFlag.feature_enabled(course_id)


def learner_access(*, user: AbstractBaseUser, course_id: str) -> CourseAccess:
    """Raise unless ``user`` may change the course's Email Settings: only learners enrolled
    in it (a stranger has nothing to opt out of, and must not learn who is enrolled)."""
    course = course_or_refuse(course_id)
    if not get_lms().is_enrolled(user, course_id):
        raise NotEnrolledError(
            _("You can change the email settings only of courses you are enrolled in.")
        )
    return CourseAccess(user=user, course=course, roles=frozenset({LEARNER}))
