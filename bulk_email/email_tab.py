"""The instructor dashboard's Email tab: the context of the fragment a host dashboard includes
(``bulk_email/email_tab.html``), and the JSON endpoints the tab's script calls.

Endpoints use the session (a signed-in browser, or curl with its cookies) and Django's CSRF
protection on every method that changes something. Every one is authorized once, by
``course_endpoint``, into the ``api.CourseAccess`` the services take: 401 when not signed in,
403 when the user is not the course's Staff or Admin or the feature is off for the course,
404 for an unknown course or a task of another course. Every refusal has the shape
``{"message", "field", "errors", "code"}`` (http.py). docs/email_tab.md lists the endpoints.
"""

import csv
import dataclasses
import datetime
import itertools
import json
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path, reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from . import api, app_settings, converters, recipients, rendering  # noqa: F401 (converters)
from .breakdown import Breakdown
from .exceptions import BadRequestError, BulkEmailError
from .forms import ComposeForm
from .http import json_endpoint, json_error, json_refusal
from .lms import get_lms
from .models import EmailTask
from .tasks import schedule_breakdown, schedule_count

# --- The fragment --------------------------------------------------------------------------------


def tab_context(request: HttpRequest, course_id: str) -> dict:
    """What ``bulk_email/email_tab.html`` needs. The host renders the tab only when
    ``api.can_send`` says so; the endpoints check again on every call."""
    groups = recipients.available_groups(course_id=course_id)
    # The counts when a worker has them already; otherwise None, the worker is asked, and the
    # script fills them in from the groups endpoint (a million learners take seconds to
    # count, the page must not wait: docs/performance.md). Who each group leaves out, and
    # why, is fetched when someone asks (the group's "why?").
    counts = api.audience.group_counts(
        course_id=course_id, sender_id=request.user.pk, schedule=schedule_count
    )
    return {
        "bulk_email_sender": api.sender_options(course=get_lms().get_course(course_id)),
        "bulk_email_form": ComposeForm(),
        "bulk_email_groups": [(group, counts and counts[group.key]) for group in groups],
        "bulk_email_config": {
            "courseId": course_id,
            "subjectMaxLength": app_settings.get("SUBJECT_MAX_LENGTH"),
            "urls": endpoint_urls(course_id),
            "states": state_sets(),
            "warnings": warning_thresholds(),
            "historyRefreshSeconds": app_settings.get("HISTORY_REFRESH_SECONDS"),
            # The %%KEYWORDS%% filled per recipient: any other is sent as written (warned).
            "keywords": list(rendering.KEYWORDS),
        },
    }


def state_sets() -> dict:
    """The state names and sets of models.EmailTask, for the script: never copied into it."""
    return {
        "names": {state: state for state, _ in EmailTask.STATE_CHOICES},
        "active": list(EmailTask.ACTIVE_STATES),
        "running": list(EmailTask.RUNNING_STATES),
        "stopped": list(EmailTask.STOPPED_STATES),
        "final": list(EmailTask.FINAL_STATES),
    }


def warning_thresholds() -> dict[str, float]:
    """The rates past which a send is flagged, for the tab's explanation of its warnings."""
    return {
        "bounceRate": app_settings.get("BOUNCE_RATE_WARNING"),
        "complaintRate": app_settings.get("COMPLAINT_RATE_WARNING"),
    }


def endpoint_urls(course_id: str) -> dict[str, str]:
    """The script's endpoints; a task's own URLs are ``tasks`` + "<id>/" (+ "email/" ...)."""
    names = ["groups", "count", "preview", "emails", "tasks", "report_csv"]
    return {name: reverse(f"bulk_email:tab_{name}", args=[course_id]) for name in names}


# --- JSON plumbing -------------------------------------------------------------------------------


def course_endpoint(*methods: str) -> Callable:
    """Allow ``methods``; answer 401 to anonymous users; authorize the user for the course
    once, into the ``api.CourseAccess`` the view receives; turn every refusal into the one
    JSON error shape."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def endpoint(request: HttpRequest, course_id: str, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = json_refusal(
                    _("Method not allowed."), status=405, code="method_not_allowed"
                )
                response["Allow"] = ", ".join(methods)
                return response
            if not request.user.is_authenticated:
                return json_refusal(_("Sign in first."), status=401, code="not_signed_in")
            try:
                access = api.staff_access(user=request.user, course_id=course_id)
                return view(request, access, **kwargs)
            except BulkEmailError as error:
                return json_error(error)

        return json_endpoint(endpoint)

    return decorate


def json_body(request: HttpRequest) -> dict:
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1_000_000
        raise BadRequestError(
            _("The message is too large to send (the limit is %(limit)s MB).")
            % {"limit": number_format(limit, decimal_pos=1)},
            field="message",
        ) from None
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError(_("The request body must be JSON.")) from None
    if not isinstance(body, dict):
        raise BadRequestError(_("The request body must be a JSON object."))
    return body


def text_field(body: dict, name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise BadRequestError(_("%(name)s must be a string.") % {"name": name}, field=name)
    return value


def targets_field(body: dict) -> list[str]:
    value = body.get("targets", [])
    if not isinstance(value, list) or not all(isinstance(key, str) for key in value):
        raise BadRequestError(_("targets must be a list of group keys."), field="targets")
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
        raise BadRequestError(
            _("Give a date and time, such as 2026-05-01T14:30+02:00."), field="send_at"
        ) from None


def email_fields(body: dict) -> dict:
    """The compose fields as the services name them."""
    return {
        "subject": text_field(body, "subject"),
        "html": text_field(body, "message"),
        "targets": targets_field(body),
        "from_addr": text_field(body, "from_addr"),
    }


def task_json(summary: api.TaskSummary) -> dict:
    data = dataclasses.asdict(summary)
    duration = summary.duration
    data["duration_seconds"] = None if duration is None else round(duration.total_seconds())
    for name in ("bounce_rate", "complaint_rate", "bounce_warning", "complaint_warning"):
        data[name] = getattr(summary, name)
    return data


def preview_json(preview: api.Preview) -> dict:
    return {"subject": preview.subject, "html": preview.html, "text": preview.text}


# --- Endpoints -----------------------------------------------------------------------------------


@course_endpoint("GET")
def groups(request, access):
    """The "Send to" groups with how many people each reaches on its own (``count``). With
    ``?key=...`` (repeatable), those groups only, each also with how many it leaves out by
    rule (``left_out``) and the sentence the tab shows (``why``): what the tab asks for when
    someone opens a group's "why?".

    Counts come from a worker (api/audience.py): 202 with ``"pending": true`` and null
    counts while it counts, then 200; the tab asks again until then."""
    keys = request.GET.getlist("key")
    if keys:
        keys = recipients.validate_target_keys(course_id=access.course_id, keys=keys)
        return group_breakdowns_response(request, access, keys)
    offered = recipients.available_groups(course_id=access.course_id)
    counts = api.audience.group_counts(
        course_id=access.course_id, sender_id=request.user.pk, schedule=schedule_count
    )
    listed = [{"key": g.key, "label": g.label, "count": counts and counts[g.key]} for g in offered]
    return counted_response({"groups": listed}, ready=counts is not None)


def group_breakdowns_response(request, access, keys: list[str]) -> JsonResponse:
    offered = {
        group.key: group for group in recipients.available_groups(course_id=access.course_id)
    }
    found = {
        key: api.audience.group_breakdown(course_id=access.course_id, sender_id=request.user.pk,
                                          key=key, schedule=schedule_breakdown)
        for key in keys
    }  # fmt: skip
    if None in found.values():
        return counted_response(
            {"groups": [group_json(offered[k], None) for k in keys]}, ready=False
        )
    return counted_response(
        {"groups": [group_json(offered[k], found[k]) for k in keys]}, ready=True
    )


def counted_response(data: dict, *, ready: bool) -> JsonResponse:
    """200 with the counts, or 202 ``"pending": true`` while a worker counts them."""
    return JsonResponse({**data, "pending": not ready}, status=200 if ready else 202)


def group_json(group, breakdown: Breakdown | None) -> dict:
    if breakdown is None:
        return {
            "key": group.key,
            "label": group.label,
            "count": None,
            "left_out": None,
            "why": None,
        }
    left_out = {
        "not_logged_in": breakdown.not_logged_in,
        "opted_out": breakdown.opted_out,
        "not_activated": breakdown.not_activated,
        "suppressed": breakdown.suppressed,
    }
    return {"key": group.key, "label": group.label, "count": breakdown.receive,
            "left_out": left_out, "why": breakdown.summary()}  # fmt: skip


@course_endpoint("POST")
def count(request, access):
    """How many people the chosen groups reach together, each once: the confirm dialog's
    total (``total``); 202 ``"pending": true`` and a null total while a worker counts."""
    keys = recipients.validate_target_keys(
        course_id=access.course_id, keys=targets_field(json_body(request))
    )
    total = api.audience.count_recipients(
        course_id=access.course_id, sender_id=request.user.pk, target_keys=keys,
        schedule=schedule_count,
    )  # fmt: skip
    return counted_response({"total": total, "targets": keys}, ready=total is not None)


@course_endpoint("POST")
def preview(request, access):
    body = json_body(request)
    shown = api.preview_email(
        access=access, subject=text_field(body, "subject"), html=text_field(body, "message")
    )
    return JsonResponse(preview_json(shown))


@course_endpoint("POST")
def emails(request, access):
    """Send now, or schedule with ``send_at``; a test to oneself is targets ["myself"]. With
    an idempotency key seen before (same user, same course): 200 and the task it made."""
    body = json_body(request)
    submitted = api.submit_email(
        access=access,
        send_at=send_at_field(body),
        idempotency_key=idempotency_key_field(request, body),
        **email_fields(body),
    )
    summary = api.task_summary(access=access, task=submitted.task)
    return JsonResponse(task_json(summary), status=200 if submitted.replayed else 201)


def idempotency_key_field(request: HttpRequest, body: dict) -> str | None:
    """The send's idempotency key: the ``Idempotency-Key`` header (the common convention
    for HTTP APIs) or the body's ``idempotency_key``; both may be given if they agree."""
    header = request.headers.get("Idempotency-Key")
    field = body.get("idempotency_key")
    if field is not None and not isinstance(field, str):
        raise BadRequestError(_("idempotency_key must be a string."), field="idempotency_key")
    if header and field and header != field:
        raise BadRequestError(
            _("The Idempotency-Key header and the idempotency_key field differ: give one."),
            field="idempotency_key",
        )
    return header or field or None


TASKS_LIMIT_MAX = 1000


def limit_param(request: HttpRequest) -> int | None:
    """``?limit=``: how many sends to list, 0 to TASKS_LIMIT_MAX (0: all); default 100."""
    return bounded_limit(request, zero_means=_("all")) or None


def bounded_limit(request: HttpRequest, *, zero_means: str) -> int:
    """``?limit=`` as a whole number from 0 to TASKS_LIMIT_MAX, default 100. Bounded before it
    reaches a query: a negative slice or a 30-digit number is a 500 there."""
    raw = request.GET.get("limit", "100").strip()
    digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(TASKS_LIMIT_MAX))
    if not digits or int(raw) > TASKS_LIMIT_MAX:
        raise BadRequestError(
            _("limit must be a whole number between 0 and %(max)d (0: %(zero_means)s).")
            % {"max": TASKS_LIMIT_MAX, "zero_means": zero_means},
            field="limit",
        )
    return int(raw)


def text_param(request: HttpRequest, name: str, *, max_length: int = 64) -> str:
    """A short query parameter; a longer one is refused before anything reads it."""
    value = request.GET.get(name, "")
    if len(value) > max_length:
        raise BadRequestError(_("%(name)s is too long.") % {"name": name}, field=name)
    return value


@course_endpoint("GET")
def tasks(request, access):
    """The course's sends, newest first (``?limit=``, default 100; 0 for all)."""
    found = api.list_tasks(access=access, limit=limit_param(request))
    return JsonResponse({"tasks": [task_json(summary) for summary in found]})


@course_endpoint("GET", "PUT", "DELETE")
def task(request, access, task_id):
    """GET: state and counts (what the progress bar polls). PUT: edit a scheduled send.
    DELETE: revoke (a scheduled one never goes; a running one stops within about a second)."""
    found = api.get_task(access=access, task_id=task_id)
    if request.method == "PUT":
        body = json_body(request)
        found = api.edit_scheduled(
            access=access, task=found, send_at=send_at_field(body), **email_fields(body)
        )
    elif request.method == "DELETE":
        found = api.revoke(access=access, task=found)
    return JsonResponse(task_json(api.task_summary(access=access, task=found)))


@course_endpoint("GET")
def task_email(request, access, task_id):
    """The stored email of a send (for Edit), how it reads (for View, sandboxed) and its
    audit trail (who created, edited, revoked or resent it, when, what changed)."""
    found = api.get_task(access=access, task_id=task_id)
    stored = api.email_of_task(access=access, task=found)
    shown = api.preview_sent_email(access=access, task=found)
    trail = api.audit_trail(access=access, task=found)
    return JsonResponse(
        {
            "task_id": stored.task_id,
            "subject": stored.subject,
            "message": stored.html,
            "targets": stored.target_keys,
            "send_at": stored.send_at,
            "preview": preview_json(shown),
            "audit": [dataclasses.asdict(entry) for entry in trail],
        }
    )


@course_endpoint("POST")
def resend(request, access, task_id):
    """A new send of the same email to exactly the recipients that failed."""
    found = api.get_task(access=access, task_id=task_id)
    again = api.resend_to_failed(access=access, task=found)
    return JsonResponse(task_json(api.task_summary(access=access, task=again)), status=201)


def delivery_row_json(row: api.DeliveryRow) -> dict:
    return dataclasses.asdict(row)


@course_endpoint("GET")
def task_recipients(request, access, task_id):
    """A send's delivery report, one page: ``?kind=`` (failed, skipped, bounced, complained;
    empty for all), ``?after=`` (the previous page's ``next``), ``?limit=`` (0 to 1000,
    default 100; 0 for the counts alone)."""
    found = api.get_task(access=access, task_id=task_id)
    page = api.delivery_page(
        access=access,
        task=found,
        kind=text_param(request, "kind"),
        after=text_param(request, "after"),
        limit=bounded_limit(request, zero_means=_("the counts alone")),
    )
    return JsonResponse(
        {
            "recipients": [delivery_row_json(row) for row in page.rows],
            "next": page.next,
            "counts": page.counts,
        }
    )


@course_endpoint("GET")
def task_recipients_csv(request, access, task_id):
    """The whole delivery report of a send as CSV (``?kind=`` as above), read in keyset
    chunks as it streams; every cell through ``csv_cell`` (a DSN's diagnostic is a
    stranger's text)."""
    found = api.get_task(access=access, task_id=task_id)
    rows = api.delivery_rows(access=access, task=found, kind=text_param(request, "kind"))
    first = next(rows, None)  # a bad kind is refused now, as JSON, not mid-stream
    table = [api.DELIVERY_COLUMNS, *([api.delivery_csv_row(first)] if first else [])]
    return csv_response(
        itertools.chain(table, map(api.delivery_csv_row, rows)),
        filename=f"delivery-{found.pk}-{safe_course(access.course_id)}.csv",
    )


class Echo:
    """A file-like whose write returns the line: csv.writer feeding a streaming response."""

    def write(self, value: str) -> str:
        return value


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """``value`` as a spreadsheet shows it, never runs it: text that a spreadsheet would read as
    a formula (a requester named ``=HYPERLINK(...)``) gets OWASP's leading single quote.
    Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


@course_endpoint("GET")
def report_csv(request, access):
    """The email task history report as CSV (UTC times), one row per send; every cell through
    ``csv_cell``."""
    rows = api.task_report_rows(access=access)
    filename = f"email-tasks-{safe_course(access.course_id)}.csv"
    return csv_response([api.REPORT_COLUMNS, *rows], filename=filename)


def safe_course(course_id: str) -> str:
    return course_id.replace(":", "_").replace("+", "_")


def csv_response(rows, *, filename: str) -> StreamingHttpResponse:
    """``rows`` (lists) streamed as a CSV download, every cell through ``csv_cell``."""
    writer = csv.writer(Echo())
    lines = (writer.writerow(map(csv_cell, row)) for row in rows)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


COURSE = "courses/<course_key:course_id>/api/"
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
    path(TASK + "recipients/", task_recipients, name="tab_task_recipients"),
    path(TASK + "recipients.csv", task_recipients_csv, name="tab_task_recipients_csv"),
    path(COURSE + "report.csv", report_csv, name="tab_report_csv"),
]
