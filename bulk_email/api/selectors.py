"""The queries: what the Email tab, the learner pages and the commands read. Keyword-only and
typed; staff reads take the ``CourseAccess`` their caller checked once."""

import dataclasses
import datetime
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import app_settings, breakdown, recipients, rendering
from ..exceptions import InvalidTokenError, UnknownTaskError
from ..groups import Group
from ..lms import get_lms
from ..models import CourseEmail, EmailTask, Optout, SendAuditEntry
from ..tokens import read_token
from .access import CourseAccess, course_or_refuse
from .validation import clean_fields, clean_html, clean_subject

# --- A send's status ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskStatus:
    task_id: int
    state: str
    state_label: str
    total: int
    sent: int
    failed: int
    skipped: int
    retries: int
    created: datetime.datetime
    send_at: datetime.datetime | None
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    error: str


def task_status(*, task: EmailTask) -> TaskStatus:
    """What the dashboard shows for a send (two queries: the task, its batch sums)."""
    task.refresh_from_db()
    counts = task.counts()
    return TaskStatus(
        task_id=task.pk,
        state=task.state,
        state_label=task.get_state_display(),
        total=counts.total,
        sent=counts.sent,
        failed=counts.failed,
        skipped=counts.skipped,
        retries=task.retries,
        created=task.created,
        send_at=task.send_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        error=task.error,
    )


def offered_groups(*, course_id: str) -> list[Group]:
    """The "Send to" groups the course offers now, in display order, with the keys scripts
    send to (``cohort:12``); UnknownCourseError for a course the LMS does not know."""
    course_or_refuse(course_id)
    return recipients.available_groups(course_id=course_id)


def group_breakdowns(
    *, course_id: str, sender_id: int | None, keys: list[str] | None = None
) -> list[tuple[Group, breakdown.Breakdown]]:
    """The offered groups (those of ``keys`` only, when given), each with how many it reaches
    and how many each rule leaves out (one query a group): why a count differs from the
    course's enrollments."""
    offered = recipients.available_groups(course_id=course_id)
    chosen = [group for group in offered if keys is None or group.key in keys]
    now = timezone.now()
    return [
        (group, breakdown.group_breakdown(
            course_id=course_id, sender_id=sender_id, key=group.key, now=now
        ))
        for group in chosen
    ]  # fmt: skip


def recent_tasks(*, course_id: str | None = None, limit: int = 20) -> list[EmailTask]:
    """The newest sends, with their email (for operators' status listings)."""
    tasks = EmailTask.objects.select_related("email", "requester").order_by("-created")
    if course_id:
        tasks = tasks.filter(email__course_id=course_id)
    return list(tasks[:limit])


def get_task(*, access: CourseAccess, task_id: int) -> EmailTask:
    """The course's send ``task_id``; UnknownTaskError when the course has none such (another
    course's task included: its id says nothing to this course's staff)."""
    task = (
        EmailTask.objects.select_related("email")
        .filter(pk=task_id, email__course_id=access.course_id)
        .first()
    )
    if task is None:
        raise UnknownTaskError(_("This course has no email task %(id)s.") % {"id": task_id})
    return task


# --- Previews -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """A message as one recipient gets it: subject, HTML part (footer included), text part."""

    subject: str
    html: str
    text: str


def preview_email(*, access: CourseAccess, subject: str, html: str) -> Preview:
    """The composed, unsaved email rendered for the viewer as its sample recipient; nothing is
    stored or sent. Errors are the ones sending would raise (subject, message)."""
    cleaned = clean_fields(subject=lambda: clean_subject(subject), message=lambda: clean_html(html))
    email = CourseEmail(
        course_id=access.course_id, subject=cleaned["subject"], html_message=cleaned["message"]
    )
    return render_for(rendering.prepare_from_lms(email), access.user)


def preview_sent_email(*, access: CourseAccess, task: EmailTask) -> Preview:
    """A saved email (scheduled or sent) as the viewer would receive it: the View button."""
    access.owns(task)
    return render_for(rendering.get_prepared_message(task.email), access.user)


def render_for(prepared: rendering.PreparedMessage, user: AbstractBaseUser) -> Preview:
    message = rendering.render_message(prepared, recipients.person(user_id=user.pk))
    return Preview(subject=message.subject, html=message.html, text=message.text)


@dataclass(frozen=True)
class ScheduledEmail:
    """What Edit starts from: the stored subject, message, groups and time."""

    task_id: int
    subject: str
    html: str
    target_keys: list[str]
    send_at: datetime.datetime | None


def email_of_task(*, access: CourseAccess, task: EmailTask) -> ScheduledEmail:
    email = access.owns(task).email
    return ScheduledEmail(
        task_id=task.pk,
        subject=email.subject,
        html=email.html_message,
        target_keys=recipients.email_audience(email=email)["target_keys"],
        send_at=task.send_at,
    )


# --- The course's sends -------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSummary:
    """One send as the Email tab lists it: state, counts, what, to whom, by whom."""

    task_id: int
    state: str
    state_label: str
    subject: str
    target_keys: list[str]
    groups: list[str]
    author: str
    requester: str
    created: datetime.datetime
    send_at: datetime.datetime | None
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    total: int
    sent: int
    failed: int
    skipped: int
    resend_of: int | None
    error: str
    # From the audit trail: who last changed the scheduled send, who stopped it.
    edited_by: str = ""
    edited_at: datetime.datetime | None = None
    revoked_by: str = ""
    revoked_at: datetime.datetime | None = None
    # What came back after the send (they keep arriving after it ends) and the rates over
    # the messages sent; a warning when a rate passes BOUNCE_RATE_WARNING / COMPLAINT_RATE_WARNING.
    bounced: int = 0
    complained: int = 0
    # Left out at fan-out for a suppressed address: "skipped: suppressed".
    suppressed: int = 0

    @property
    def bounce_rate(self) -> float | None:
        return feedback_rate(self.bounced, self.sent)

    @property
    def complaint_rate(self) -> float | None:
        return feedback_rate(self.complained, self.sent)

    @property
    def bounce_warning(self) -> bool:
        return past_threshold(self.bounce_rate, "BOUNCE_RATE_WARNING")

    @property
    def complaint_warning(self) -> bool:
        return past_threshold(self.complaint_rate, "COMPLAINT_RATE_WARNING")

    @property
    def duration(self) -> datetime.timedelta | None:
        """Started to finished; a running send's time so far; None before it starts."""
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


def feedback_rate(count: int, sent: int) -> float | None:
    """``count`` of the messages sent, 0 to 1; None before any was sent (no rate yet)."""
    return count / sent if sent else None


def past_threshold(rate: float | None, setting: str) -> bool:
    return rate is not None and rate > app_settings.get(setting)


def list_tasks(*, access: CourseAccess, limit: int | None = 100) -> list[TaskSummary]:
    """The course's sends, newest first, with their counts (three queries whatever the
    number: tasks with summed batch counts, their targets, the people's names)."""
    tasks = EmailTask.objects.filter(email__course_id=access.course_id).with_counts()
    tasks = tasks.order_by("-created", "-pk").select_related("email")
    return summarize(access.course_id, list(tasks.prefetch_related("email__targets")[:limit]))


def task_summary(*, access: CourseAccess, task: EmailTask) -> TaskSummary:
    """One send's summary: what the progress bar polls."""
    access.owns(task)
    one = EmailTask.objects.filter(pk=task.pk).with_counts()
    return summarize(access.course_id, list(one.select_related("email")))[0]


def summarize(course_id: str, tasks: list[EmailTask]) -> list[TaskSummary]:
    labels = {group.key: group.label for group in recipients.available_groups(course_id=course_id)}
    latest = latest_audit_entries([task.pk for task in tasks])
    people = {task.email.sender_id for task in tasks} | {task.requester_id for task in tasks}
    people |= {entry.actor_id for entry in latest.values()}
    names = recipients.display_names(user_ids=people - {None})
    return [
        dataclasses.replace(_summary(task, labels, names), **_audit_fields(task, latest, names))
        for task in tasks
    ]


AUDITED_IN_SUMMARY = (SendAuditEntry.EDITED, SendAuditEntry.REVOKED)


def latest_audit_entries(task_ids: list[int]) -> dict[tuple[int, str], SendAuditEntry]:
    """The last edit and the revocation of each task, by (task id, action): one query."""
    entries = SendAuditEntry.objects.filter(task_id__in=task_ids, action__in=AUDITED_IN_SUMMARY)
    return {(entry.task_id, entry.action): entry for entry in entries.order_by("at", "pk")}


def _audit_fields(task: EmailTask, latest: dict, names: dict[int, str]) -> dict:
    edit = latest.get((task.pk, SendAuditEntry.EDITED))
    revocation = latest.get((task.pk, SendAuditEntry.REVOKED))
    return {
        "edited_by": names.get(edit.actor_id, "") if edit else "",
        "edited_at": edit.at if edit else None,
        "revoked_by": names.get(revocation.actor_id, "") if revocation else "",
        "revoked_at": revocation.at if revocation else None,
    }


def _summary(task: EmailTask, labels: dict[str, str], names: dict[int, str]) -> TaskSummary:
    keys = sorted(target.key for target in task.email.targets.all())
    # A group the course no longer offers (a deleted cohort) is still named, by its key.
    groups = [labels[key] for key in labels if key in keys] + [k for k in keys if k not in labels]
    return TaskSummary(
        task_id=task.pk,
        state=task.state,
        state_label=task.get_state_display(),
        subject=task.email.subject,
        target_keys=keys,
        groups=groups,
        author=names.get(task.email.sender_id, ""),
        requester=names.get(task.requester_id, ""),
        created=task.created,
        send_at=task.send_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        total=task.total,
        sent=task.sum_sent or 0,
        failed=task.sum_failed or 0,
        skipped=task.sum_skipped or 0,
        resend_of=task.resend_of_id,
        error=task.error,
        bounced=task.bounced,
        complained=task.complained,
        suppressed=task.suppressed,
    )


REPORT_COLUMNS = [
    "task id", "requester", "created", "state", "duration (s)", "total", "sent", "failed",
    "skipped", "skipped: suppressed", "bounced", "complained", "bounce rate (%)",
    "complaint rate (%)",
    "last edited by", "last edited", "revoked by", "revoked",
]  # fmt: skip


def percent(rate: float | None) -> str | float:
    """A rate as the report writes it: a percentage to two decimals, empty when none."""
    return "" if rate is None else round(rate * 100, 2)


def task_report_rows(*, access: CourseAccess) -> list[list]:
    """The email task history report: one row per send, newest first, in REPORT_COLUMNS
    order; times in UTC (ISO 8601), durations in whole seconds."""
    return [_report_row(task) for task in list_tasks(access=access, limit=None)]


def _report_row(task: TaskSummary) -> list:
    duration = task.duration
    seconds = "" if duration is None else round(duration.total_seconds())
    return [
        task.task_id, task.requester, task.created.isoformat(), task.state_label, seconds,
        task.total, task.sent, task.failed, task.skipped, task.suppressed, task.bounced,
        task.complained,
        percent(task.bounce_rate), percent(task.complaint_rate),
        task.edited_by, iso_or_blank(task.edited_at),
        task.revoked_by, iso_or_blank(task.revoked_at),
    ]  # fmt: skip


def iso_or_blank(moment: datetime.datetime | None) -> str:
    return moment.isoformat() if moment else ""


@dataclass(frozen=True)
class AuditEntry:
    """One change to a send as staff read it: what, by whom, when, what changed."""

    action: str
    action_label: str
    actor: str
    at: datetime.datetime
    changes: dict


def audit_trail(*, access: CourseAccess, task: EmailTask) -> list[AuditEntry]:
    """Every recorded change to the send, oldest first (two queries)."""
    entries = list(access.owns(task).audit_entries.order_by("at", "pk"))
    names = recipients.display_names(user_ids={e.actor_id for e in entries} - {None})
    return [
        AuditEntry(
            action=entry.action,
            action_label=entry.get_action_display(),
            actor=names.get(entry.actor_id, ""),
            at=entry.at,
            changes=entry.changes,
        )
        for entry in entries
    ]


# --- Opt-outs and Email Settings ---------------------------------------------------------------


@dataclass(frozen=True)
class UnsubscribeRequest:
    """Who a genuine unsubscribe token speaks for, and their current choice."""

    user_id: int
    course_id: str
    course_name: str
    opted_out: bool


def is_opted_out(*, user_id: int, course_id: str) -> bool:
    return Optout.objects.filter(user_id=user_id, course_id=course_id).exists()


def read_unsubscribe_token(*, token: str) -> UnsubscribeRequest:
    """The request a token stands for; InvalidTokenError when the token is not genuine or its
    user no longer exists."""
    subject = read_token(token)
    if not get_user_model().objects.filter(pk=subject.user_id).exists():
        raise InvalidTokenError(_("This unsubscribe link is for an account that no longer exists."))
    course = get_lms().get_course(subject.course_id)
    return UnsubscribeRequest(
        user_id=subject.user_id,
        course_id=subject.course_id,
        course_name=course.display_name if course else subject.course_id,
        opted_out=is_opted_out(user_id=subject.user_id, course_id=subject.course_id),
    )


@dataclass(frozen=True)
class EmailSetting:
    """One course's Email Settings as the learner sees them."""

    course_id: str
    course_name: str
    receive_email: bool


def email_setting(*, access: CourseAccess) -> EmailSetting:
    receive = not is_opted_out(user_id=access.user.pk, course_id=access.course_id)
    return EmailSetting(
        course_id=access.course_id, course_name=access.course.display_name, receive_email=receive
    )


def opted_out_course_ids(*, user_id: int, course_ids: list[str]) -> set[str]:
    """Of ``course_ids``, those the user opted out of: one query for a whole dashboard."""
    rows = Optout.objects.filter(user_id=user_id, course_id__in=course_ids)
    return set(rows.values_list("course_id", flat=True))


def email_settings_url(*, course_id: str) -> str:
    """The LMS page where a learner changes this course's Email Settings."""
    return get_lms().email_settings_url(course_id)
