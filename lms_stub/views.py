"""The LMS-style site's pages: learner dashboard and the instructor dashboard shell."""

from dataclasses import dataclass

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.utils.translation import check_for_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views import i18n
from django.views.decorators.clickjacking import xframe_options_sameorigin

from bulk_email import api as bulk_email_api
from bulk_email import email_tab

from . import mailbox
from .models import Course, CourseAccessRole, CourseEnrollment, UserProfile

INSTRUCTOR_TABS = [
    ("course_info", gettext_lazy("Course Info")),
    ("membership", gettext_lazy("Membership")),
]


def home(request):
    return redirect("dashboard")


def favicon(request):
    """Browsers ask for /favicon.ico where a page names no icon (e.g. a raw error page)."""
    return redirect(static("lms_stub/favicon.svg"), permanent=True)


@dataclass(frozen=True)
class EnrolledCourse:
    """A row of the learner dashboard, with its Email Settings."""

    enrollment: CourseEnrollment
    receive_email: bool
    settings_url: str
    settings_open: bool
    email_enabled: bool  # Open edX leaves Email Settings out when the course sends none


def enrolled_courses(request) -> list[EnrolledCourse]:
    enrollments = (
        CourseEnrollment.objects.filter(user=request.user, is_active=True)
        .select_related("course")
        .order_by("course__display_name")
    )
    opted_out = bulk_email_api.opted_out_course_ids(
        user_id=request.user.pk, course_ids=[e.course_id for e in enrollments]
    )
    # The footer's "Email settings" link names the course whose dialog opens at once.
    open_course_id = request.GET.get("email_settings")
    return [
        EnrolledCourse(
            enrollment=e,
            receive_email=e.course_id not in opted_out,
            settings_url=bulk_email_api.email_settings_url(course_id=e.course_id),
            settings_open=e.course_id == open_course_id,
            email_enabled=bulk_email_api.course_email_enabled(course_id=e.course_id),
        )
        for e in enrollments
    ]


@login_required
def learner_dashboard(request):
    taught = Course.objects.filter(
        roles__user=request.user, roles__role__in=CourseAccessRole.TEAM_ROLES
    ).distinct()
    if request.user.is_superuser:
        taught = Course.objects.all()
    return render(
        request,
        "lms_stub/learner_dashboard.html",
        {
            "courses": enrolled_courses(request),
            "taught_courses": taught.order_by("display_name"),
            "bulk_email_address": bulk_email_api.address_suppression(user=request.user),
        },
    )


# --- The language: the top bar's selector, and the profile's language at sign-in -----------------


def set_language(request):
    """Django's set_language (the cookie, back to ``next``); signed in, the choice is saved
    on the profile too: the LMS's preferred language, which the person's course email and
    their next sign-in follow."""
    response = i18n.set_language(request)
    language = request.POST.get("language", "")
    if request.method == "POST" and request.user.is_authenticated and chosen(language):
        UserProfile.objects.update_or_create(user=request.user, defaults={"language": language})
    return response


def chosen(language: str) -> bool:
    return language in dict(settings.LANGUAGES) and check_for_language(language)


class LoginView(auth_views.LoginView):
    """Sign-in; the profile's language, when the person chose one, becomes the session's
    (the language cookie), whatever the browser asked for."""

    def form_valid(self, form):
        response = super().form_valid(form)
        profile = UserProfile.objects.filter(user=form.get_user()).first()
        if profile is not None and chosen(profile.language):
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                profile.language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response


def user_is_course_team(user, course: Course) -> bool:
    if user.is_superuser:
        return True
    return course.roles.filter(user=user, role__in=CourseAccessRole.TEAM_ROLES).exists()


# The instructor dashboard widens the site's policy (settings.CONTENT_SECURITY_POLICY) twice:
# - style-src 'unsafe-inline': CKEditor 4 writes <style> elements and style attributes into the
#   page and into its editing frame (skin, toolbar, dialogs, the editable area) and has no
#   nonce or hash mode. Styles cannot run script: script-src stays 'self'.
# - remote images: the Email tab's viewer shows a message's images after "Show images". Its
#   srcdoc frame inherits this policy and narrows img-src with a <meta> policy of its own until
#   then (email_tab/shared.js); a frame can narrow its parent's policy, never widen it.
INSTRUCTOR_DASHBOARD_CSP = {"style-src": [UNSAFE_INLINE], "img-src": ["https:", "http:"]}


@login_required
@csp_update(INSTRUCTOR_DASHBOARD_CSP)
def instructor_dashboard(request, course_id: str):
    course = get_object_or_404(Course, pk=course_id)
    if not user_is_course_team(request.user, course):
        raise PermissionDenied(
            _("Only the course's Staff and Admins can open its instructor dashboard.")
        )
    tabs = instructor_tabs(request, course)
    tab = request.GET.get("tab", tabs[0][0])
    if tab not in dict(tabs):
        tab = tabs[0][0]
    context = {"course": course, "tabs": tabs, "active_tab": tab}
    if EMAIL_TAB not in tabs:  # the course team sees why, not just an absent tab
        context["email_tab_absent"] = bulk_email_api.send_refusal(
            course_id=course.id, user=request.user
        )
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
        # On demand (a link): on a course of a million it costs seconds (docs/recipients.md).
        "all_learners": (
            all_learners_explained(request, course, enrollments["active"])
            if request.GET.get("explain") == "learners"
            else None
        ),
        "by_mode": by_mode,
        "modes": course.modes.all(),
        "cohorts": course.cohorts.annotate(members=Count("memberships")),
    }


def all_learners_explained(request, course: Course, active_enrollments: int) -> dict:
    """Why the Email tab's All Learners differs from the active enrollments: the course
    team's own enrollments, and who bulk_email's rules leave out (its breakdown)."""
    [(_group, breakdown)] = bulk_email_api.group_breakdowns(
        course_id=course.id, sender_id=request.user.pk, keys=["learners"]
    )
    team = active_enrollments - breakdown.receive - breakdown.left_out
    return {"breakdown": breakdown, "course_team": team}


def membership_context(request, course: Course) -> dict:
    roles = course.roles.select_related("user", "user__lms_profile").order_by(
        "role", "user__username"
    )
    return {"roles": roles}


def email_context(request, course: Course) -> dict:
    return email_tab.tab_context(request, course.id)


EMAIL_TAB = ("email", gettext_lazy("Email"))
TAB_CONTEXT = {
    "course_info": course_info_context,
    "membership": membership_context,
    "email": email_context,
}


# --- The development Mailbox --------------------------------------------------------------------


def require_mailbox() -> None:
    """The Mailbox shows every message the local sink got: development only."""
    if not settings.MAILBOX_ENABLED:
        raise Http404(_("The Mailbox is off (it is for development: DEBUG or MAILBOX_ENABLED)."))


def mailbox_list(request):
    """One page of the Mailbox, newest first. The list is ``summaries``, never ``messages``:
    that name belongs to Django's messages framework, which the base template shows."""
    require_mailbox()
    names = mailbox.message_names(settings.MAILBOX_DIR)
    page = Paginator(names, settings.MAILBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    summaries = mailbox.summarize_names(settings.MAILBOX_DIR, page.object_list)
    return render(request, "lms_stub/mailbox.html", {"summaries": summaries, "page": page})


def mailbox_message(request, name: str):
    require_mailbox()
    message = mailbox.read_message(settings.MAILBOX_DIR, name)
    if message is None:
        raise Http404(_("No such message in the Mailbox."))
    return render(request, "lms_stub/mailbox_message.html", {"message": message})


@xframe_options_sameorigin
def mailbox_message_html(request, name: str):
    """The HTML part alone, for the sandboxed frame of the message page; a CSP forbids any
    script and any network fetch but images."""
    require_mailbox()
    message = mailbox.read_message(settings.MAILBOX_DIR, name)
    if message is None:
        raise Http404(_("No such message in the Mailbox."))
    response = HttpResponse(message.html or "<p>(no HTML part)</p>")
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
        "sandbox allow-popups allow-popups-to-escape-sandbox"
    )
    return response
