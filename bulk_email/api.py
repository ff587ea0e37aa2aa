"""The services that views, admin, commands and tasks call: keyword-only, typed, named for
what they do. Each refusal is a distinct BulkEmailError whose message can be shown as is."""

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from . import app_settings, recipients, rendering
from .exceptions import (
    BulkEmailDisabledError,
    BulkEmailError,
    InvalidEmailError,
    InvalidTokenError,
    NotCourseStaffError,
    NotEnrolledError,
    UnknownCourseError,
    UnknownTaskError,
)
from .lms import get_lms
from .models import BulkEmailFlag, CourseEmail, EmailTask, Optout, Target
from .tokens import read_token

# --- Checks -------------------------------------------------------------------------------------


def check_can_send(*, course_id: str, user: AbstractBaseUser) -> None:
    """Raise unless ``user`` may send bulk email for the course now."""
    if get_lms().get_course(course_id) is None:
        raise UnknownCourseError(f"There is no course {course_id}.")
    if not BulkEmailFlag.feature_enabled(course_id):
        raise BulkEmailDisabledError("Bulk email is not enabled for this course.")
    if not get_lms().is_course_staff(user, course_id):
        raise NotCourseStaffError("Only the course's Staff and Admins can send course email.")


def can_send(*, course_id: str, user: AbstractBaseUser) -> bool:
    """Whether ``check_can_send`` lets the user through: the dashboard shows the Email tab."""
    try:
        check_can_send(course_id=course_id, user=user)
    except BulkEmailError:
        return False
    return True


def clean_subject(subject: str) -> str:
    subject = (subject or "").strip()
    limit = app_settings.get("SUBJECT_MAX_LENGTH")
    if not subject:
        raise InvalidEmailError("Enter a subject.", field="subject")
    if len(subject) > limit:
        raise InvalidEmailError(
            f"The subject is {len(subject)} characters long; the limit is {limit}.",
            field="subject",
        )
    rendering.refuse_header_injection(subject=subject)
    return subject


def clean_html(html: str) -> str:
    """The sanitized message: what is stored is what is sent and what View shows."""
    limit = app_settings.get("MAX_HTML_LENGTH")
    if len(html or "") > limit:
        raise InvalidEmailError(
            f"The message is too large ({len(html):,} characters; the limit is {limit:,}).",
            field="message",
        )
    clean = rendering.sanitize_html(html or "")
    if not rendering.text_from_html(clean).strip() and "<img" not in clean:
        raise InvalidEmailError("Write a message: it is empty.", field="message")
    return clean


def clean_send_at(send_at: datetime.datetime | None) -> datetime.datetime | None:
    if send_at is None:
        return None
    if timezone.is_naive(send_at):
        raise InvalidEmailError("Give the time with its time zone.", field="send_at")
    if send_at <= timezone.now():
        raise InvalidEmailError("The scheduled time has passed; pick a later one.", field="send_at")
    return send_at


@dataclass(frozen=True)
class CleanEmail:
    subject: str
    html: str
    target_keys: list[str]
    send_at: datetime.datetime | None


def clean_email(
    *, course_id: str, subject: str, html: str, targets: list[str], send_at
) -> CleanEmail:
    cleaned = clean_fields(
        subject=lambda: clean_subject(subject),
        message=lambda: clean_html(html),
        targets=lambda: recipients.validate_target_keys(course_id=course_id, keys=targets),
        send_at=lambda: clean_send_at(send_at),
    )
    return CleanEmail(
        subject=cleaned["subject"],
        html=cleaned["message"],
        target_keys=cleaned["targets"],
        send_at=cleaned["send_at"],
    )


def clean_fields(**cleaners: Callable[[], Any]) -> dict[str, Any]:
    """Run every cleaner, then raise the first error carrying all of them: a form can mark
    each wrong field at once instead of one per attempt."""
    cleaned, errors = {}, []
    for name, cleaner in cleaners.items():
        try:
            cleaned[name] = cleaner()
        except InvalidEmailError as error:
            errors.append(error)
    if errors:
        first = errors[0]
        all_errors: dict = {}
        for error in errors:
            all_errors.setdefault(error.field, str(error))
        raise InvalidEmailError(str(first), field=first.field, errors=all_errors)
    return cleaned


# --- Sending ------------------------------------------------------------------------------------


def send_email(
    *,
    course_id: str,
    sender: AbstractBaseUser,
    subject: str,
    html: str,
    targets: list[str],
    send_at: datetime.datetime | None = None,
    template_name: str = "",
    from_addr: str = "",
) -> EmailTask:
    """Save the email with its targets and a task: Scheduled when ``send_at`` is given,
    else Queuing, then Pending once the fan-out is enqueued after the commit."""
    check_can_send(course_id=course_id, user=sender)
    clean = clean_email(
        course_id=course_id, subject=subject, html=html, targets=targets, send_at=send_at
    )
    if from_addr:
        rendering.refuse_header_injection(from_addr=from_addr)
    with transaction.atomic():
        email = CourseEmail.objects.create(
            course_id=course_id,
            sender=sender,
            subject=clean.subject,
            html_message=clean.html,
            template_name=template_name,
            from_addr=from_addr,
        )
        save_targets(email, clean.target_keys)
        task = EmailTask.objects.create(
            email=email,
            requester=sender,
            state=EmailTask.SCHEDULED if clean.send_at else EmailTask.QUEUING,
            send_at=clean.send_at,
            queue=queue_for(email),
        )
        if not clean.send_at:
            enqueue_fan_out_on_commit(task)
    return task


def save_targets(email: CourseEmail, target_keys: list[str]) -> None:
    email.targets.all().delete()
    Target.objects.bulk_create(
        Target(email=email, target_type=kind, target_value=value)
        for kind, value in map(Target.split_key, target_keys)
    )


def queue_for(email: CourseEmail) -> str:
    """Large sends get their own queue, so a test to Myself never waits behind them."""
    threshold = app_settings.get("LARGE_SEND_THRESHOLD")
    audience = recipients.email_audience(email=email)
    count = recipients.count_recipients(**audience, at_most=threshold + 1)
    return "large" if count > threshold else "default"


def enqueue_fan_out_on_commit(task: EmailTask) -> None:
    def enqueue():
        from .tasks import fan_out  # the one upward reference: tasks build on api

        EmailTask.objects.filter(pk=task.pk).transition(
            from_=[EmailTask.QUEUING], to=EmailTask.PENDING
        )
        fan_out.apply_async((task.pk,), queue=task.queue)

    transaction.on_commit(enqueue)


def check_can_manage(*, task: EmailTask, user: AbstractBaseUser) -> None:
    check_can_send(course_id=task.email.course_id, user=user)


def edit_scheduled(
    *,
    task: EmailTask,
    editor: AbstractBaseUser,
    subject: str,
    html: str,
    targets: list[str],
    send_at: datetime.datetime,
) -> EmailTask:
    """Change a scheduled email (subject, message, groups, time) while it is still Scheduled."""
    check_can_manage(task=task, user=editor)
    course_id = task.email.course_id
    clean = clean_email(
        course_id=course_id, subject=subject, html=html, targets=targets, send_at=send_at
    )
    if clean.send_at is None:
        raise InvalidEmailError("Give the time to send at.", field="send_at")
    with transaction.atomic():
        task = EmailTask.objects.select_for_update().select_related("email").get(pk=task.pk)
        if task.state != EmailTask.SCHEDULED:
            raise InvalidEmailError(
                f"This email can no longer be edited: it is {task.get_state_display()}.",
                field="state",
            )
        email = task.email
        email.subject, email.html_message = clean.subject, clean.html
        email.save(update_fields=["subject", "html_message", "modified"])
        save_targets(email, clean.target_keys)
        task.send_at, task.queue = clean.send_at, queue_for(email)
        task.save(update_fields=["send_at", "queue"])
    return task


def revoke(*, task: EmailTask, user: AbstractBaseUser) -> EmailTask:
    """Stop a send: Scheduled, Queuing or Pending ones never start; a running one's batches
    in hand stop within about a second (``pipeline.STOP_CHECK_SECONDS``) and the others are not
    sent."""
    check_can_manage(task=task, user=user)
    revoked = EmailTask.objects.filter(pk=task.pk).transition(
        to=EmailTask.REVOKED, finished_at=timezone.now()
    )
    task.refresh_from_db()
    if not revoked:
        raise InvalidEmailError(
            f"This send has already ended ({task.get_state_display()}).", field="state"
        )
    return task


def resend_to_failed(*, task: EmailTask, requester: AbstractBaseUser) -> EmailTask:
    """A new task of the same email to exactly the recipients whose outcome was failed."""
    check_can_manage(task=task, user=requester)
    task.refresh_from_db()
    if task.state not in EmailTask.FINAL_STATES:
        raise InvalidEmailError("Wait until this send has ended.", field="state")
    if not task.outcomes.filter(status="failed").exists():
        raise InvalidEmailError("No recipient of this send failed.", field="state")
    with transaction.atomic():
        resend = EmailTask.objects.create(
            email=task.email, requester=requester, resend_of=task, queue="default"
        )
        enqueue_fan_out_on_commit(resend)
    return resend


# --- Status -------------------------------------------------------------------------------------


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


# --- Operators ------------------------------------------------------------------------------


def recent_tasks(*, course_id: str | None = None, limit: int = 20) -> list[EmailTask]:
    """The newest sends, with their email (for status listings)."""
    tasks = EmailTask.objects.select_related("email", "requester").order_by("-created")
    if course_id:
        tasks = tasks.filter(email__course_id=course_id)
    return list(tasks[:limit])


STUCK_REASON = "Never reached the task queue (was the broker down when it was sent?)."


def fail_stuck_tasks(*, older_than: datetime.timedelta, dry_run: bool = False) -> list[int]:
    """Sends still Queuing after ``older_than`` (their enqueue never happened) -> Failure.

    The dispatcher re-enqueues such sends by itself after a lease; this is for an operator
    who would rather end them, e.g. after a long broker outage."""
    stuck = EmailTask.objects.filter(
        state=EmailTask.QUEUING, created__lt=timezone.now() - older_than
    )
    ids = list(stuck.values_list("pk", flat=True))
    if not dry_run:
        EmailTask.objects.filter(pk__in=ids).transition(
            from_=[EmailTask.QUEUING],
            to=EmailTask.FAILURE,
            error=STUCK_REASON,
            finished_at=timezone.now(),
        )
    return ids


# --- The Email tab: previews, the course's sends, the task report -------------------------------


@dataclass(frozen=True)
class Preview:
    """A message as one recipient gets it: subject, HTML part (footer included), text part."""

    subject: str
    html: str
    text: str


def preview_email(*, course_id: str, user: AbstractBaseUser, subject: str, html: str) -> Preview:
    """The composed, unsaved email rendered for ``user`` as its sample recipient; nothing is
    stored or sent. Errors are the ones sending would raise (subject, message)."""
    check_can_send(course_id=course_id, user=user)
    cleaned = clean_fields(subject=lambda: clean_subject(subject), message=lambda: clean_html(html))
    email = CourseEmail(
        course_id=course_id, subject=cleaned["subject"], html_message=cleaned["message"]
    )
    return render_for(rendering.prepare_from_lms(email), user)


def preview_sent_email(*, task: EmailTask, user: AbstractBaseUser) -> Preview:
    """A saved email (scheduled or sent) as ``user`` would receive it: the View button."""
    check_can_manage(task=task, user=user)
    return render_for(rendering.get_prepared_message(task.email), user)


def render_for(prepared: rendering.PreparedMessage, user: AbstractBaseUser) -> Preview:
    person = recipients.person(user_id=user.pk)
    sample = rendering.Recipient(user_id=user.pk, email=person.email, full_name=person.full_name)
    message = rendering.render_message(prepared, sample)
    return Preview(subject=message.subject, html=message.html, text=message.text)


def get_task(*, course_id: str, task_id: int, user: AbstractBaseUser) -> EmailTask:
    """The course's send ``task_id``; UnknownTaskError when the course has none such (another
    course's task included: its id says nothing to this course's staff)."""
    check_can_send(course_id=course_id, user=user)
    task = (
        EmailTask.objects.select_related("email")
        .filter(pk=task_id, email__course_id=course_id)
        .first()
    )
    if task is None:
        raise UnknownTaskError(f"This course has no email task {task_id}.")
    return task


@dataclass(frozen=True)
class ScheduledEmail:
    """What Edit starts from: the stored subject, message, groups and time."""

    task_id: int
    subject: str
    html: str
    target_keys: list[str]
    send_at: datetime.datetime | None


def email_of_task(*, task: EmailTask, user: AbstractBaseUser) -> ScheduledEmail:
    check_can_manage(task=task, user=user)
    email = task.email
    return ScheduledEmail(
        task_id=task.pk,
        subject=email.subject,
        html=email.html_message,
        target_keys=recipients.email_audience(email=email)["target_keys"],
        send_at=task.send_at,
    )


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

    @property
    def duration(self) -> datetime.timedelta | None:
        """Started to finished; a running send's time so far; None before it starts."""
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


def list_tasks(
    *, course_id: str, user: AbstractBaseUser, limit: int | None = 100
) -> list[TaskSummary]:
    """The course's sends, newest first, with their counts (three queries whatever the
    number: tasks with summed batch counts, their targets, the people's names)."""
    check_can_send(course_id=course_id, user=user)
    tasks = EmailTask.objects.filter(email__course_id=course_id).with_counts()
    tasks = tasks.order_by("-created", "-pk")
    tasks = list(tasks.select_related("email").prefetch_related("email__targets")[:limit])
    return summarize(course_id, tasks)


def task_summary(*, task: EmailTask, user: AbstractBaseUser) -> TaskSummary:
    """One send's summary: what the progress bar polls."""
    check_can_manage(task=task, user=user)
    one = EmailTask.objects.filter(pk=task.pk).with_counts()
    return summarize(task.email.course_id, list(one.select_related("email")))[0]


def summarize(course_id: str, tasks: list[EmailTask]) -> list[TaskSummary]:
    labels = {group.key: group.label for group in recipients.available_groups(course_id=course_id)}
    people = {task.email.sender_id for task in tasks} | {task.requester_id for task in tasks}
    names = recipients.display_names(user_ids=people - {None})
    return [_summary(task, labels, names) for task in tasks]


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
    )


REPORT_COLUMNS = [
    "task id", "requester", "created", "state", "duration (s)", "total", "sent", "failed",
    "skipped",
]  # fmt: skip


def task_report_rows(*, course_id: str, user: AbstractBaseUser) -> list[list]:
    """The email task history report: one row per send, newest first, in REPORT_COLUMNS
    order; times in UTC (ISO 8601), durations in whole seconds."""
    rows = []
    for task in list_tasks(course_id=course_id, user=user, limit=None):
        duration = task.duration
        rows.append(
            [
                task.task_id,
                task.requester,
                task.created.isoformat(),
                task.state_label,
                "" if duration is None else round(duration.total_seconds()),
                task.total,
                task.sent,
                task.failed,
                task.skipped,
            ]
        )
    return rows


# --- Opting out ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnsubscribeRequest:
    """Who a genuine unsubscribe token speaks for, and their current choice."""

    user_id: int
    course_id: str
    course_name: str
    opted_out: bool


def opt_out(*, user_id: int, course_id: str, how: str) -> Optout:
    """Record that the user receives no more bulk email of the course; idempotent (the first
    opt-out, and how it was made, is kept)."""
    optout, _ = Optout.objects.get_or_create(
        user_id=user_id, course_id=course_id, defaults={"how": how}
    )
    return optout


def opt_in(*, user_id: int, course_id: str) -> None:
    """Undo an opt-out: the user receives the course's bulk email again."""
    Optout.objects.filter(user_id=user_id, course_id=course_id).delete()


def is_opted_out(*, user_id: int, course_id: str) -> bool:
    return Optout.objects.filter(user_id=user_id, course_id=course_id).exists()


def read_unsubscribe_token(*, token: str) -> UnsubscribeRequest:
    """The request a token stands for; InvalidTokenError when the token is not genuine or its
    user no longer exists."""
    subject = read_token(token)
    if not get_user_model().objects.filter(pk=subject.user_id).exists():
        raise InvalidTokenError("This unsubscribe link is for an account that no longer exists.")
    course = get_lms().get_course(subject.course_id)
    return UnsubscribeRequest(
        user_id=subject.user_id,
        course_id=subject.course_id,
        course_name=course.display_name if course else subject.course_id,
        opted_out=is_opted_out(user_id=subject.user_id, course_id=subject.course_id),
    )


# --- The learner's Email Settings ---------------------------------------------------------------


@dataclass(frozen=True)
class EmailSetting:
    """One course's Email Settings as the learner sees them."""

    course_id: str
    course_name: str
    receive_email: bool


def check_can_choose_email(*, user: AbstractBaseUser, course_id: str) -> str:
    """The course's name, when ``user`` may change its Email Settings: only learners enrolled
    in it (a stranger has nothing to opt out of, and must not learn who is enrolled)."""
    course = get_lms().get_course(course_id)
    if course is None:
        raise UnknownCourseError(f"There is no course {course_id}.")
    if not get_lms().is_enrolled(user, course_id):
        raise NotEnrolledError(
            "You can change the email settings only of courses you are enrolled in."
        )
    return course.display_name


def email_setting(*, user: AbstractBaseUser, course_id: str) -> EmailSetting:
    course_name = check_can_choose_email(user=user, course_id=course_id)
    receive = not is_opted_out(user_id=user.pk, course_id=course_id)
    return EmailSetting(course_id=course_id, course_name=course_name, receive_email=receive)


def set_receive_email(*, user: AbstractBaseUser, course_id: str, receive: bool) -> EmailSetting:
    """The dashboard's "Receive course emails" checkbox: opt in, or opt out (how=dashboard)."""
    course_name = check_can_choose_email(user=user, course_id=course_id)
    if receive:
        opt_in(user_id=user.pk, course_id=course_id)
    else:
        opt_out(user_id=user.pk, course_id=course_id, how=Optout.DASHBOARD)
    return EmailSetting(course_id=course_id, course_name=course_name, receive_email=receive)


def opted_out_course_ids(*, user_id: int, course_ids: list[str]) -> set[str]:
    """Of ``course_ids``, those the user opted out of: one query for a whole dashboard."""
    rows = Optout.objects.filter(user_id=user_id, course_id__in=course_ids)
    return set(rows.values_list("course_id", flat=True))


def email_settings_url(*, course_id: str) -> str:
    """The LMS page where a learner changes this course's Email Settings."""
    return get_lms().email_settings_url(course_id)
