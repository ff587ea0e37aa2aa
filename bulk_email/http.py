"""One mapping from bulk_email's exceptions to HTTP answers, for every view and endpoint,
and one JSON error shape: ``{"message", "field", "errors", "code"}``.

A configuration error is the operator's to mend, not the user's: it answers 500 with a
message that says so, and the reason goes to the log (anymail keeps its configuration error
outside its send-error tree for the same reason)."""

import logging

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.csrf import csrf_failure as django_csrf_failure

from .exceptions import (
    BulkEmailConfigurationError,
    BulkEmailError,
    InvalidEmailError,
    TooManyRequestsError,
)

logger = logging.getLogger(__name__)

STATUS_BY_ERROR = [
    # (exception type, HTTP status); the first match wins, so subclasses come first.
    (BulkEmailConfigurationError, 500),
    (LookupError, 404),  # UnknownCourseError, UnknownTaskError
    (PermissionDenied, 403),  # BulkEmailDisabledError, NotCourseStaffError, NotEnrolledError
    (TooManyRequestsError, 429),
    (BulkEmailError, 400),  # InvalidEmailError, BadRequestError, InvalidTokenError
]
CONFIGURATION_MESSAGE = _(
    "Bulk email is not configured correctly on this site; the operator will find the reason "
    "in the server log."
)


def status_of(error: BulkEmailError) -> int:
    status = next(code for kind, code in STATUS_BY_ERROR if isinstance(error, kind))
    if isinstance(error, InvalidEmailError) and error.field == "state":
        return 409  # the send has moved on: a conflict with the request, not its fields
    return status


def message_of(error: BulkEmailError) -> str:
    if isinstance(error, BulkEmailConfigurationError):
        logger.error("bulk_email configuration error: %s", error, exc_info=error)
        return str(CONFIGURATION_MESSAGE)
    return str(error)


def error_body(message: str, *, code: str, field: str | None = None, errors=None) -> dict:
    return {"message": message, "field": field, "errors": errors or {}, "code": code}


def json_error(error: BulkEmailError) -> JsonResponse:
    body = error_body(
        message_of(error),
        code=error.code,
        field=getattr(error, "field", None),
        errors=getattr(error, "errors", None),
    )
    return JsonResponse(body, status=status_of(error))


def json_refusal(message: str, *, status: int, code: str) -> JsonResponse:
    """A refusal that is not a bulk_email error: not signed in, method not allowed, CSRF."""
    return JsonResponse(error_body(message, code=code), status=status)


# --- CSRF refusals ------------------------------------------------------------------------------

CSRF_MESSAGE = _(
    "The request has no valid CSRF token (%(reason)s): send the csrftoken cookie's value in the "
    "X-CSRFToken header (and, over https, a Referer or Origin of this site)."
)


def json_endpoint(view):
    """Mark ``view`` as answering JSON whatever the request asks for (the Email tab's
    endpoints): its CSRF refusal is JSON too."""
    view.answers_json = True
    return view


def asks_bulk_email_for_json(request: HttpRequest) -> bool:
    """Whether the request went to one of bulk_email's JSON endpoints: one marked as such, or
    any bulk_email view with a JSON body or ``Accept: application/json`` (Email Settings)."""
    match = getattr(request, "resolver_match", None)
    if match is None or "bulk_email" not in match.app_names:
        return False
    if getattr(match.func, "answers_json", False):
        return True
    accepted = request.headers.get("Accept", "")
    return request.content_type == "application/json" or "application/json" in accepted


def csrf_failure(request: HttpRequest, reason: str = "", **kwargs) -> HttpResponse:
    """The site's ``CSRF_FAILURE_VIEW``: the one JSON error shape (code ``csrf``) for a script
    calling bulk_email's JSON endpoints, Django's own page for everything else."""
    if asks_bulk_email_for_json(request):
        return json_refusal(CSRF_MESSAGE % {"reason": reason}, status=403, code="csrf")
    return django_csrf_failure(request, reason, **kwargs)
