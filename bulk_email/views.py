"""The learner-facing unsubscribe pages. They work without logging in: the signed token in the
URL says who and which course. Views only call ``api``."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import api
from .exceptions import InvalidTokenError
from .models import Optout

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"


def bad_link(request, error: InvalidTokenError) -> HttpResponse:
    return render(request, "bulk_email/bad_link.html", {"reason": str(error)}, status=400)


def unsubscribe_page(request, subject: api.UnsubscribeRequest, state: str) -> HttpResponse:
    context = {"subject": subject, "state": state, "token": request.resolver_match.kwargs["token"]}
    return render(request, "bulk_email/unsubscribe.html", context)


def apply_choice(request, subject: api.UnsubscribeRequest) -> str:
    """Carry out the posted button; the page state to show next."""
    if request.POST.get("action") == "resubscribe":
        api.opt_in(user_id=subject.user_id, course_id=subject.course_id)
        return "resubscribed"
    api.opt_out(user_id=subject.user_id, course_id=subject.course_id, how=Optout.LINK)
    return "unsubscribed"


@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str) -> HttpResponse:
    """GET: a confirmation page that changes nothing (mail scanners follow links). POST: the
    Unsubscribe or Resubscribe button."""
    try:
        subject = api.read_unsubscribe_token(token=token)
    except InvalidTokenError as error:
        return bad_link(request, error)
    if request.method == "POST":
        return unsubscribe_page(request, subject, apply_choice(request, subject))
    return unsubscribe_page(request, subject, "unsubscribed" if subject.opted_out else "confirm")


@csrf_exempt  # RFC 8058: mail providers POST here without cookies or a CSRF token
@require_http_methods(["GET", "POST"])
def one_click_unsubscribe(request, token: str) -> HttpResponse:
    """RFC 8058 one-click: POST "List-Unsubscribe=One-Click" (form-encoded or multipart)
    unsubscribes and answers 200 with no redirect. A GET (a person who opened the URL) gets
    the confirmation page, which changes nothing by itself."""
    if request.method == "GET":
        return unsubscribe(request, token)
    if request.POST.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
        return HttpResponse(
            "Expected List-Unsubscribe=One-Click.", status=400, content_type="text/plain"
        )
    try:
        subject = api.read_unsubscribe_token(token=token)
    except InvalidTokenError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    api.opt_out(user_id=subject.user_id, course_id=subject.course_id, how=Optout.ONE_CLICK)
    return HttpResponse("Unsubscribed.", content_type="text/plain")
