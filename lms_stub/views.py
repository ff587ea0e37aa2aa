"""The LMS-style site's pages: learner dashboard and the instructor dashboard shell."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render

from bulk_email import api as bulk_email_api
from bulk_email import email_tab

from .models import Course, CourseAccessRole, CourseEnrollment

INSTRUCTOR_TABS = [("course_info", "Course Info"), ("membership", "Membership")]


def home(request):
    return redirect("dashboard")


@login_required
def learner_dashboard(request):
    enrollments = (
        CourseEnrollment.objects.filter(user=request.user, is_active=True)
        .select_related("course")
        .order_by("course__display_name")
    )
    taught = Course.objects.filter(
        roles__user=request.user, roles__role__in=CourseAccessRole.TEAM_ROLES
    ).distinct()
    if request.user.is_superuser:
        taught = Course.objects.all()
    return render(
        request,
        "lms_stub/learner_dashboard.html",
        {"enrollments": enrollments, "taught_courses": taught.order_by("display_name")},
    )


def user_is_course_team(user, course: Course) -> bool:
    if user.is_superuser:
        return True
    return course.roles.filter(user=user, role__in=CourseAccessRole.TEAM_ROLES).exists()


@login_required
def instructor_dashboard(request, course_id: str):
    course = get_object_or_404(Course, pk=course_id)
    if not user_is_course_team(request.user, course):
        raise PermissionDenied(
            "Only the course's Staff and Admins can open its instructor dashboard."
        )
    tabs = instructor_tabs(request, course)
    tab = request.GET.get("tab", tabs[0][0])
    if tab not in dict(tabs):
        tab = tabs[0][0]
    context = {"course": course, "tabs": tabs, "active_tab": tab}
    context.update(TAB_CONTEXT[tab](request, course))
    return render(request, "lms_stub/instructor_dashboard.html", context)


def instructor_tabs(request, course: Course) -> list[tuple[str, str]]:
    """The Email tab only when bulk_email lets this user send for this course (flag, course
    authorization, Staff or Admin role): otherwise it is absent, not disabled."""
    if bulk_email_api.can_send(course_id=course.id, user=request.user):
        return [*INSTRUCTOR_TABS, EMAIL_TAB]
    return INSTRUCTOR_TABS


def course_info_context(request, course: Course) -> dict:
    enrollments = course.enrollments.aggregate(
        active=Count("id", filter=Q(is_active=True)), total=Count("id")
    )
    by_mode = (
        course.enrollments.filter(is_active=True)
        .values("mode")
        .annotate(count=Count("id"))
        .order_by("mode")
    )
    return {
        "enrollment_counts": enrollments,
        "by_mode": by_mode,
        "modes": course.modes.all(),
        "cohorts": course.cohorts.annotate(members=Count("memberships")),
    }


def membership_context(request, course: Course) -> dict:
    roles = course.roles.select_related("user", "user__lms_profile").order_by(
        "role", "user__username"
    )
    return {"roles": roles}


def email_context(request, course: Course) -> dict:
    return email_tab.tab_context(request, course.id)


EMAIL_TAB = ("email", "Email")
TAB_CONTEXT = {
    "course_info": course_info_context,
    "membership": membership_context,
    "email": email_context,
}
