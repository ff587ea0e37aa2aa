"""The instructor dashboard's Email tab: the context of the fragment a host dashboard includes
(``bulk_email/email_tab.html``), and the JSON endpoints the tab's script calls.

Endpoints use the session (a signed-in browser, or curl with its cookies) and Django's CSRF
protection on every method that changes something. Every one checks ``api.check_can_send``
first: 401 when not signed in, 403 when the user is not the course's Staff or Admin or the
feature is off for the course, 404 for an unknown course or a task of another course.
Refusals of the services come back as 400 with ``{"message", "field", "errors"}``. Views
call ``api``, ``recipients`` and ``rendering`` only. docs/email_tab.md lists the endpoints.
"""

import csv
import dataclasses
import datetime
import json
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path, reverse

from . import api, app_settings, pipeline, recipients
from .exceptions import BulkEmailError, InvalidEmailError
from .forms import ComposeForm
from .models import EmailTask

# --- The fragment --------------------------------------------------------------------------------


def tab_context(request: HttpRequest, course_id: str) -> dict:
    """What ``bulk_email/email_tab.html`` needs. The host renders the tab only when
    ``api.can_send`` says so; the endpoints check again on every call."""
    groups = recipients.available_groups(course_id=course_id)
    counts = recipients.group_counts(course_id=course_id, sender_id=request.user.pk)
    return {
        "bulk_email_form": ComposeForm(),
        "bulk_email_groups": [(group, counts[group.key]) for group in groups],
        "bulk_email_config": {
            "courseId": course_id,
            "subjectMaxLength": app_settings.get("SUBJECT_MAX_LENGTH"),
            "urls": endpoint_urls(course_id),
            "states": state_sets(),
        },
    }


def state_sets() -> dict:
    """The workflow states as the tab's script compares them: its sets and each name come from
    here, so the script never spells a state."""
    running, stopped = pipeline.RUNNING_STATES, pipeline.STOPPED_STATES
    return {
        "running": list(running),
        "active": [EmailTask.QUEUING, EmailTask.PENDING, *running],
        "stopped": list(stopped),
        "final": list(EmailTask.FINAL_STATES),
        "names": {state: state for state, _label in EmailTask.STATE_CHOICES},
    }


def endpoint_urls(course_id: str) -> dict[str, str]:
    """The script's endpoints; a task's own URLs are ``tasks`` + "<id>/" (+ "email/" ...)."""
    names = ["groups", "count", "preview", "emails", "tasks", "report_csv"]
    return {name: reverse(f"bulk_email:tab_{name}", args=[course_id]) for name in names}


# --- JSON plumbing -------------------------------------------------------------------------------

REFUSALS = [
    # (exception type, HTTP status); the first match wins, so subclasses come first.
    (InvalidEmailError, 400),
    (LookupError, 404),  # UnknownCourseError, UnknownTaskError
    (PermissionDenied, 403),  # BulkEmailDisabledError, NotCourseStaffError
    (BulkEmailError, 400),
]


def refusal(error: BulkEmailError) -> JsonResponse:
    status = next(code for kind, code in REFUSALS if isinstance(error, kind))
    body = {"message": str(error)}
    if isinstance(error, InvalidEmailError):
        # A send that has moved on (field "state") conflicts with the request, not its fields.
        status = 409 if error.field == "state" else status
        body.update(field=error.field, errors=error.errors)
    return JsonResponse(body, status=status)


class BadRequest(Exception):
    """The request body is not what the endpoint reads (not JSON, a wrong type)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def course_endpoint(*methods: str) -> Callable:
    """Allow ``methods``; answer 401 to anonymous users; check the user may send for the course;
    turn the services' refusals and malformed bodies into JSON errors."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def endpoint(request: HttpRequest, course_id: str, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = JsonResponse({"message": "Method not allowed."}, status=405)
                response["Allow"] = ", ".join(methods)
                return response
            if not request.user.is_authenticated:
                return JsonResponse({"message": "Sign in first."}, status=401)
            try:
                api.check_can_send(course_id=course_id, user=request.user)
                return view(request, course_id, **kwargs)
            except BulkEmailError as error:
                return refusal(error)
            except BadRequest as error:
                body = {"message": str(error), "field": error.field}
                body["errors"] = {error.field: str(error)} if error.field else {}
                return JsonResponse(body, status=400)

        return endpoint

    return decorate


def json_body(request: HttpRequest) -> dict:
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1_000_000
        raise BadRequest(
            f"The message is too large to send (the limit is {limit:.1f} MB).", field="message"
        ) from None
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def text_field(body: dict, name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string.", field=name)
    return value


def targets_field(body: dict) -> list[str]:
    value = body.get("targets", [])
    if not isinstance(value, list) or not all(isinstance(key, str) for key in value):
        raise BadRequest("targets must be a list of group keys.", field="targets")
    return value


def send_at_field(body: dict) -> datetime.datetime | None:
    """ISO 8601 with its offset, as the browser sends the instructor's local time; the api
    refuses a time without one."""
    value = body.get("send_at") or None
    if value is None:
        return None
    try:
        return datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadRequest(
            "Give a date and time, such as 2026-05-01T14:30+02:00.", "send_at"
        ) from None


def email_fields(body: dict) -> dict:
    """The compose fields as the services name them."""
    return {
        "subject": text_field(body, "subject"),
        "html": text_field(body, "message"),
        "targets": targets_field(body),
    }


def task_json(summary: api.TaskSummary) -> dict:
    data = dataclasses.asdict(summary)
    duration = summary.duration
    data["duration_seconds"] = None if duration is None else round(duration.total_seconds())
    return data


def preview_json(preview: api.Preview) -> dict:
    return {"subject": preview.subject, "html": preview.html, "text": preview.text}


# --- Endpoints -----------------------------------------------------------------------------------


@course_endpoint("GET")
def groups(request, course_id):
    """The "Send to" groups with how many people each reaches on its own."""
    counts = recipients.group_counts(course_id=course_id, sender_id=request.user.pk)
    offered = recipients.available_groups(course_id=course_id)
    return JsonResponse(
        {"groups": [{"key": g.key, "label": g.label, "count": counts[g.key]} for g in offered]}
    )


@course_endpoint("POST")
def count(request, course_id):
    """How many people the chosen groups reach together, each once: the confirm dialog's total."""
    keys = recipients.validate_target_keys(
        course_id=course_id, keys=targets_field(json_body(request))
    )
    total = recipients.count_recipients(
        course_id=course_id, sender_id=request.user.pk, target_keys=keys
    )
    return JsonResponse({"total": total, "targets": keys})


@course_endpoint("POST")
def preview(request, course_id):
    body = json_body(request)
    shown = api.preview_email(
        course_id=course_id,
        user=request.user,
        subject=text_field(body, "subject"),
        html=text_field(body, "message"),
    )
    return JsonResponse(preview_json(shown))


@course_endpoint("POST")
def emails(request, course_id):
    """Send now, or schedule with ``send_at``; a test to oneself is targets ["myself"]."""
    body = json_body(request)
    task = api.send_email(
        course_id=course_id, sender=request.user, send_at=send_at_field(body), **email_fields(body)
    )
    return JsonResponse(task_json(api.task_summary(task=task, user=request.user)), status=201)


@course_endpoint("GET")
def tasks(request, course_id):
    """The course's sends, newest first (``?limit=``, default 100; 0 for all)."""
    try:
        limit = int(request.GET.get("limit", 100)) or None
    except ValueError:
        raise BadRequest("limit must be a number.", field="limit") from None
    found = api.list_tasks(course_id=course_id, user=request.user, limit=limit)
    return JsonResponse({"tasks": [task_json(summary) for summary in found]})


@course_endpoint("GET", "PUT", "DELETE")
def task(request, course_id, task_id):
    """GET: state and counts (what the progress bar polls). PUT: edit a scheduled send.
    DELETE: revoke (a scheduled one never goes; a running one stops within about a second)."""
    found = api.get_task(course_id=course_id, task_id=task_id, user=request.user)
    if request.method == "PUT":
        body = json_body(request)
        found = api.edit_scheduled(
            task=found, editor=request.user, send_at=send_at_field(body), **email_fields(body)
        )
    elif request.method == "DELETE":
        found = api.revoke(task=found, user=request.user)
    return JsonResponse(task_json(api.task_summary(task=found, user=request.user)))


@course_endpoint("GET")
def task_email(request, course_id, task_id):
    """The stored email of a send (for Edit) and how it reads (for View, sandboxed)."""
    found = api.get_task(course_id=course_id, task_id=task_id, user=request.user)
    stored = api.email_of_task(task=found, user=request.user)
    shown = api.preview_sent_email(task=found, user=request.user)
    return JsonResponse(
        {
            "task_id": stored.task_id,
            "subject": stored.subject,
            "message": stored.html,
            "targets": stored.target_keys,
            "send_at": stored.send_at,
            "preview": preview_json(shown),
        }
    )


@course_endpoint("POST")
def resend(request, course_id, task_id):
    """A new send of the same email to exactly the recipients that failed."""
    found = api.get_task(course_id=course_id, task_id=task_id, user=request.user)
    again = api.resend_to_failed(task=found, requester=request.user)
    return JsonResponse(task_json(api.task_summary(task=again, user=request.user)), status=201)


class Echo:
    """A file-like whose write returns the line: csv.writer feeding a streaming response."""

    def write(self, value: str) -> str:
        return value


@course_endpoint("GET")
def report_csv(request, course_id):
    """The email task history report as CSV (UTC times), one row per send."""
    rows = api.task_report_rows(course_id=course_id, user=request.user)
    writer = csv.writer(Echo())
    lines = (writer.writerow(row) for row in [api.REPORT_COLUMNS, *rows])
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = f"email-tasks-{course_id.replace(':', '_').replace('+', '_')}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


COURSE = "courses/<str:course_id>/api/"
TASK = COURSE + "tasks/<int:task_id>/"

urlpatterns = [
    path(COURSE + "groups/", groups, name="tab_groups"),
    path(COURSE + "count/", count, name="tab_count"),
    path(COURSE + "preview/", preview, name="tab_preview"),
    path(COURSE + "emails/", emails, name="tab_emails"),
    path(COURSE + "tasks/", tasks, name="tab_tasks"),
    path(TASK, task, name="tab_task"),
    path(TASK + "email/", task_email, name="tab_task_email"),
    path(TASK + "resend/", resend, name="tab_resend"),
    path(COURSE + "report.csv", report_csv, name="tab_report_csv"),
]
