"""The learner-facing pages: the footer's unsubscribe page and RFC 8058 one-click, which work
without logging in (the signed token in the URL says who and which course), and the
dashboard's Email Settings endpoint, which needs the learner's session. Views only call
``api``; refusals go through http.py's one mapping."""

import json
import time
from dataclasses import asdict

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import api
from .exceptions import BadRequestError, BulkEmailError, InvalidTokenError
from .http import json_error, json_refusal, message_of, status_of
from .models import Optout

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
UNSUBSCRIBE_ACTIONS = ("unsubscribe", "resubscribe")

# --- Email Settings (learner dashboard) ---------------------------------------------------------


def posted_choice(request) -> bool:
    """Receive course email or not: JSON {"receive_email": true|false} from the dialog's
    script, or the dialog's form posted without script (an unticked checkbox is absent)."""
    if request.content_type != "application/json":
        return "receive_email" in request.POST
    try:
        value = json.loads(request.body).get("receive_email")
    except (ValueError, AttributeError) as error:
        raise BadRequestError(_('Send JSON like {"receive_email": false}.')) from error
    if not isinstance(value, bool):
        raise BadRequestError(_("receive_email must be true or false."), field="receive_email")
    return value


def setting_message(setting: api.EmailSetting) -> str:
    if setting.receive_email:
        message = _("Saved: you will receive course email from %(course_name)s.")
    else:
        message = _("Saved: you will no longer receive course email from %(course_name)s.")
    name = setting.course_name
    if translation.get_language_bidi():  # isolated (FSI...PDI): a Latin name keeps its order
        name = f"\u2068{name}\u2069"
    return message % {"course_name": name}


def setting_json(setting: api.EmailSetting) -> JsonResponse:
    return JsonResponse({**asdict(setting), "message": setting_message(setting)})


def return_address(request, course_id: str) -> str:
    """Where the form (no script) goes back to: its ``next`` when it is on this site."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe else api.email_settings_url(course_id=course_id)


def refusal(request, error: BulkEmailError, *, as_json: bool) -> HttpResponse:
    if as_json:
        return json_error(error)
    context = {"reason": message_of(error)}
    template = "bulk_email/email_settings_refused.html"
    return render(request, template, context, status=status_of(error))


def change_setting(request, access: api.CourseAccess, *, as_json: bool) -> HttpResponse:
    setting = api.set_receive_email(access=access, receive=posted_choice(request))
    if as_json:
        return setting_json(setting)
    messages.success(request, setting_message(setting), fail_silently=True)
    return redirect(return_address(request, access.course_id))


@never_cache
@require_http_methods(["GET", "POST"])
def email_settings(request, course_id: str) -> HttpResponse:
    """GET: the course's setting as JSON. POST: save it (JSON in and out for the dialog's
    script; a form post without script redirects back). Session auth and CSRF as usual."""
    as_json = request.method == "GET" or request.content_type == "application/json"
    if not request.user.is_authenticated:
        if as_json:
            message = _("Sign in to change your email settings.")
            return json_refusal(message, status=401, code="not_signed_in")
        return redirect_to_login(return_address(request, course_id))
    try:
        access = api.learner_access(user=request.user, course_id=course_id)
        if request.method == "GET":
            return setting_json(api.email_setting(access=access))
        return change_setting(request, access, as_json=as_json)
    except BulkEmailError as error:
        return refusal(request, error, as_json=as_json)


# --- A learner's bounced address: a test message, then its link clears the suppression ------------


def wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@never_cache
@require_http_methods(["POST"])
def address_test(request) -> HttpResponse:
    """ "Send me a test message" on the dashboard: POST with the CSRF token, signed in. JSON for
    a script (Accept: application/json); a form post returns to ``next`` with a message."""
    as_json = wants_json(request)
    if not request.user.is_authenticated:
        if as_json:
            return json_refusal(_("Sign in first."), status=401, code="not_signed_in")
        return redirect_to_login(safe_next(request))
    try:
        address = api.send_address_test(user=request.user)
    except BulkEmailError as error:
        if as_json:
            return json_error(error)
        messages.error(request, message_of(error), fail_silently=True)
        return redirect(safe_next(request))
    sent = _(
        "We sent a test message to %(address)s. Open it and follow its link to clear the block."
    ) % {"address": address}
    if as_json:
        return JsonResponse({"address": address, "message": sent})
    messages.success(request, sent, fail_silently=True)
    return redirect(safe_next(request))


def safe_next(request) -> str:
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe else "/"


@never_cache  # a CSRF token and the address on the page
@require_http_methods(["GET", "POST"])
def address_confirm(request, token: str) -> HttpResponse:
    """The test message's link. GET: a page with a Confirm button, changing nothing (mail
    scanners follow links). POST (CSRF): the suppression is deleted."""
    template = "bulk_email/address_confirm.html"
    try:
        if request.method == "POST":
            address = api.clear_tested_address(token=token)
            return render(request, template, {"state": "cleared", "address": address})
        test = api.read_address_test(token=token)
    except InvalidTokenError as error:
        return render(request, template, {"state": "invalid", "reason": str(error)}, status=400)
    return render(request, template, {"state": "confirm", "address": test.user.email})


# --- The footer's unsubscribe link --------------------------------------------------------------


def bad_link(request, error: InvalidTokenError) -> HttpResponse:
    context = {"reason": str(error)}
    return render(request, "bulk_email/bad_link.html", context, status=status_of(error))


def unsubscribe_page(
    request, subject: api.UnsubscribeRequest, state: str, *, status: int = 200
) -> HttpResponse:
    context = {
        "subject": subject,
        "state": state,
        "token": request.resolver_match.kwargs["token"],
        "settings_url": api.email_settings_url(course_id=subject.course_id),
        "for_someone_else": signed_in_as_someone_else(request, subject),
        "viewer_username": request.user.get_username(),
        "may_resubscribe": may_resubscribe(request, subject),
    }
    return render(request, "bulk_email/unsubscribe.html", context, status=status)


def signed_in_as_someone_else(request, subject: api.UnsubscribeRequest) -> bool:
    """Whether the viewer is signed in but not the link's owner (e.g. staff following a
    learner's link): the page then speaks of that account, never of "you"."""
    return request.user.is_authenticated and request.user.pk != subject.user_id


# --- Resubscribing from a link is an undo --------------------------------------------------------
# Anyone holding a link (an old message, a forwarded one) could otherwise undo an opt-out made
# on the dashboard. So Resubscribe is offered to the link's owner signed in, or as an undo in
# the browser session that just unsubscribed with that link; anyone else is sent to sign in.

UNDO_SESSION_KEY = "bulk_email_unsubscribed_by_link"
UNDO_SECONDS = 3600
UNDO_KEPT = 20  # the session remembers this many recent unsubscribes, no more


def undo_key(subject: api.UnsubscribeRequest) -> str:
    return f"{subject.user_id}:{subject.course_id}"


def remember_unsubscribe(request, subject: api.UnsubscribeRequest) -> None:
    undo = dict(request.session.get(UNDO_SESSION_KEY, {}))
    undo[undo_key(subject)] = time.time()
    newest = sorted(undo.items(), key=lambda item: item[1])[-UNDO_KEPT:]
    request.session[UNDO_SESSION_KEY] = dict(newest)


def forget_unsubscribe(request, subject: api.UnsubscribeRequest) -> None:
    undo = dict(request.session.get(UNDO_SESSION_KEY, {}))
    if undo.pop(undo_key(subject), None) is not None:
        request.session[UNDO_SESSION_KEY] = undo


def may_resubscribe(request, subject: api.UnsubscribeRequest) -> bool:
    if request.user.is_authenticated and request.user.pk == subject.user_id:
        return True
    unsubscribed_at = request.session.get(UNDO_SESSION_KEY, {}).get(undo_key(subject))
    return unsubscribed_at is not None and time.time() - unsubscribed_at < UNDO_SECONDS


def current_state(subject: api.UnsubscribeRequest) -> str:
    return "unsubscribed" if subject.opted_out else "confirm"


def apply_choice(request, subject: api.UnsubscribeRequest) -> str:
    """Carry out the posted button; the page state to show next."""
    if request.POST.get("action") == "resubscribe":
        if not may_resubscribe(request, subject):
            raise PermissionDenied(_("Sign in to receive this course's email again."))
        api.opt_in(user_id=subject.user_id, course_id=subject.course_id)
        forget_unsubscribe(request, subject)
        return "resubscribed"
    api.opt_out(user_id=subject.user_id, course_id=subject.course_id, how=Optout.LINK)
    remember_unsubscribe(request, subject)
    return "unsubscribed"


@never_cache  # the page holds a CSRF token and the learner's current choice
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str) -> HttpResponse:
    """GET: a confirmation page that changes nothing (mail scanners follow links). POST: the
    Unsubscribe or Resubscribe button. In the language of the link's owner (their mail's)."""
    try:
        subject = api.read_unsubscribe_token(token=token)
    except InvalidTokenError as error:
        return bad_link(request, error)
    with translation.override(learner_language(request, subject)):
        return unsubscribe_answer(request, subject)


def learner_language(request, subject: api.UnsubscribeRequest) -> str:
    """The page reached logged out from the mail speaks as the mail did: the link owner's
    preferred language (the LMS port's) when the site has it, else the request's language
    (cookie, Accept-Language). Someone else signed in (staff following a learner's link)
    reads it in their own."""
    if signed_in_as_someone_else(request, subject):
        return translation.get_language()
    return api.preferred_language(user_id=subject.user_id) or translation.get_language()


def unsubscribe_answer(request, subject: api.UnsubscribeRequest) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("action") not in UNSUBSCRIBE_ACTIONS:  # not one of our buttons
            return unsubscribe_page(request, subject, current_state(subject), status=400)
        try:
            return unsubscribe_page(request, subject, apply_choice(request, subject))
        except PermissionDenied:  # a Resubscribe not offered to this viewer: nothing changes
            return unsubscribe_page(request, subject, current_state(subject), status=403)
    return unsubscribe_page(request, subject, current_state(subject))


@csrf_exempt  # RFC 8058: mail providers POST here without cookies or a CSRF token
@never_cache
@require_http_methods(["GET", "POST"])
def one_click_unsubscribe(request, token: str) -> HttpResponse:
    """RFC 8058 one-click: POST "List-Unsubscribe=One-Click" (form-encoded or multipart)
    unsubscribes and answers 200 with no redirect. A GET (a person who opened the URL) gets
    the confirmation page, which changes nothing by itself."""
    if request.method == "GET":
        return unsubscribe(request, token)
    if request.POST.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
        return HttpResponse(
            _("Expected List-Unsubscribe=One-Click."), status=400, content_type="text/plain"
        )
    try:
        subject = api.read_unsubscribe_token(token=token)
    except InvalidTokenError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    api.opt_out(user_id=subject.user_id, course_id=subject.course_id, how=Optout.ONE_CLICK)
    with translation.override(learner_language(request, subject)):
        return HttpResponse(_("Unsubscribed."), content_type="text/plain")
