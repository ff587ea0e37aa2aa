"""The commands: what views, admin, management commands and tasks call to change something.
Keyword-only, typed, named for what they do; staff actions take the ``CourseAccess`` their
caller checked once. Each refusal is a distinct BulkEmailError whose message can be shown."""

import datetime
import hashlib
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import app_settings, recipients, rendering, signals
from ..exceptions import InvalidEmailError
from ..models import CourseEmail, EmailTask, Optout, SendAuditEntry, Target
from .access import CourseAccess
from .selectors import EmailSetting
from .sender import chosen_from, sender_options
from .suppressions import clear_complaint_on_resubscribe
from .validation import clean_email, clean_idempotency_key

# --- Sending ------------------------------------------------------------------------------------


def send_email(
    *,
    access: CourseAccess,
    subject: str,
    html: str,
    targets: list[str],
    send_at: datetime.datetime | None = None,
    template_name: str = "",
    from_addr: str = "",
) -> EmailTask:
    """Save the email with its targets and a task: Scheduled when ``send_at`` is given,
    else Queuing, then Pending once the fan-out is enqueued after the commit."""
    fields = {"subject": subject, "html": html, "targets": targets, "send_at": send_at}
    return submit_email(
        access=access, template_name=template_name, from_addr=from_addr, **fields
    ).task


@dataclass(frozen=True)
class Submitted:
    """What a send request led to: its task, and whether an earlier request with the same
    idempotency key had made it already (then nothing new was saved or sent)."""

    task: EmailTask
    replayed: bool


def submit_email(
    *,
    access: CourseAccess,
    subject: str,
    html: str,
    targets: list[str],
    send_at: datetime.datetime | None = None,
    template_name: str = "",
    from_addr: str = "",
    idempotency_key: str | None = None,
) -> Submitted:
    """``send_email`` that sends at most once per ``idempotency_key`` (per course and
    sender): the same key again answers the task the first request made, even when the
    copies arrive at the same moment (the database's unique constraint decides)."""
    key = clean_idempotency_key(idempotency_key)
    earlier = key and task_of_idempotency_key(access, key)
    if earlier:
        return Submitted(task=earlier, replayed=True)
    clean = clean_email(
        course_id=access.course_id, subject=subject, html=html, targets=targets, send_at=send_at
    )
    options = sender_options(course=access.course)
    from_addr = chosen_from(options, from_addr)
    template_name = template_name or options.template_name
    rendering.refuse_header_injection(from_addr=from_addr)
    try:
        with transaction.atomic():
            task = save_send(access, clean, template_name, from_addr, key)
    except IntegrityError:
        # A copy of this request committed first, between the lookup and the insert.
        earlier = key and task_of_idempotency_key(access, key)
        if not earlier:
            raise
        return Submitted(task=earlier, replayed=True)
    return Submitted(task=task, replayed=False)


def task_of_idempotency_key(access: CourseAccess, key: str) -> EmailTask | None:
    """The first task (not a resend) of the email sent with ``key`` by this user here."""
    return (
        EmailTask.objects.filter(
            email__course_id=access.course_id,
            email__sender=access.user,
            email__idempotency_key=key,
            resend_of__isnull=True,
        )
        .order_by("pk")
        .first()
    )


def save_send(access, clean, template_name: str, from_addr: str, key: str | None) -> EmailTask:
    email = CourseEmail.objects.create(
        course_id=access.course_id,
        sender=access.user,
        subject=clean.subject,
        html_message=clean.html,
        template_name=template_name,
        from_addr=from_addr,
        idempotency_key=key,
    )
    save_targets(email, clean.target_keys)
    task = EmailTask.objects.create(
        email=email,
        requester=access.user,
        state=EmailTask.SCHEDULED if clean.send_at else EmailTask.QUEUING,
        send_at=clean.send_at,
        queue=queue_for(email),
    )
    action = SendAuditEntry.SCHEDULED if clean.send_at else SendAuditEntry.CREATED
    audit(task, access.user, action, snapshot(email, clean.target_keys, clean.send_at))
    if not clean.send_at:
        enqueue_fan_out_on_commit(task)
    signals.announce_on_commit(
        signals.email_created, CourseEmail, email=email, task=task, user=access.user
    )
    return task


def save_targets(email: CourseEmail, target_keys: list[str]) -> None:
    email.targets.all().delete()
    Target.objects.bulk_create(
        Target(email=email, target_type=kind, target_value=value)
        for kind, value in map(recipients.split_key, target_keys)
    )


def queue_for(email: CourseEmail) -> str:
    """Large sends get their own queue, so a test to Myself never waits behind them."""
    threshold = app_settings.get("LARGE_SEND_THRESHOLD")
    audience = recipients.email_audience(email=email)
    count = recipients.count_recipients(**audience, at_most=threshold + 1)
    return app_settings.get("LARGE_QUEUE" if count > threshold else "QUEUE")


def enqueue_fan_out_on_commit(task: EmailTask) -> None:
    def enqueue():
        from ..tasks import fan_out  # the one upward reference: tasks build on services

        EmailTask.objects.filter(pk=task.pk).transition(
            from_=[EmailTask.QUEUING], to=EmailTask.PENDING
        )
        fan_out.apply_async((task.pk,), queue=task.queue)

    transaction.on_commit(enqueue)


def edit_scheduled(
    *,
    access: CourseAccess,
    task: EmailTask,
    subject: str,
    html: str,
    targets: list[str],
    send_at: datetime.datetime,
    from_addr: str = "",
) -> EmailTask:
    """Change a scheduled email (subject, message, groups, time, and the From address among
    the allowed ones when given) while it is still Scheduled."""
    access.owns(task)
    clean = clean_email(
        course_id=access.course_id, subject=subject, html=html, targets=targets, send_at=send_at
    )
    if clean.send_at is None:
        raise InvalidEmailError(_("Give the time to send at."), field="send_at")
    new_from = chosen_from(sender_options(course=access.course), from_addr) if from_addr else ""
    with transaction.atomic():
        task = EmailTask.objects.select_for_update().select_related("email").get(pk=task.pk)
        if task.state != EmailTask.SCHEDULED:
            raise InvalidEmailError(
                _("This email can no longer be edited: it is %(state)s.")
                % {"state": task.get_state_display()},
                field="state",
            )
        email = task.email
        before = snapshot(email, stored_target_keys(email), task.send_at)
        email.subject, email.html_message = clean.subject, clean.html
        email.from_addr = new_from or email.from_addr
        email.save(update_fields=["subject", "html_message", "from_addr", "modified"])
        save_targets(email, clean.target_keys)
        task.send_at, task.queue = clean.send_at, queue_for(email)
        task.save(update_fields=["send_at", "queue"])
        after = snapshot(email, clean.target_keys, clean.send_at)
        audit(task, access.user, SendAuditEntry.EDITED, changed(before, after))
    return task


def revoke(*, access: CourseAccess, task: EmailTask) -> EmailTask:
    """Stop a send: Scheduled, Queuing or Pending ones never start; a running one's batches
    in hand stop within about a second (``pipeline.STOP_CHECK_SECONDS``) and the others are
    not sent."""
    access.owns(task)
    with transaction.atomic():
        was = EmailTask.objects.select_for_update().values_list("state", flat=True).get(pk=task.pk)
        revoked = EmailTask.objects.filter(pk=task.pk).transition(
            to=EmailTask.REVOKED, finished_at=timezone.now()
        )
        if revoked:
            changes = {"state": [was, EmailTask.REVOKED]}
            audit(task, access.user, SendAuditEntry.REVOKED, changes)
    task.refresh_from_db()
    if not revoked:
        raise InvalidEmailError(
            _("This send has already ended (%(state)s).") % {"state": task.get_state_display()},
            field="state",
        )
    return task


def resend_to_failed(*, access: CourseAccess, task: EmailTask) -> EmailTask:
    """A new task of the same email to exactly the recipients whose outcome was failed.

    Once per send: a second resend of the same send would reach again whoever the first one
    reached (a double click, two colleagues at once); the resend's own failures are resent
    from the resend. The send's row is locked while this is decided."""
    access.owns(task)
    task.refresh_from_db()
    if task.state not in EmailTask.FINAL_STATES:
        raise InvalidEmailError(_("Wait until this send has ended."), field="state")
    if not task.outcomes.filter(status="failed").exists():
        raise InvalidEmailError(_("No recipient of this send failed."), field="state")
    with transaction.atomic():
        # Concurrent resends of one send queue on its row; each then sees the one before.
        EmailTask.objects.select_for_update().filter(pk=task.pk).first()
        earlier = task.resends.order_by("pk").first()
        if earlier:
            raise InvalidEmailError(
                _(
                    "This send was already resent to its failed recipients (send %(send)s); "
                    "resend that one's failures instead."
                )
                % {"send": earlier.pk},
                field="state",
            )
        resend = EmailTask.objects.create(
            email=task.email, requester=access.user, resend_of=task, queue=app_settings.get("QUEUE")
        )
        audit(resend, access.user, SendAuditEntry.RESENT, {"resend_of": task.pk})
        enqueue_fan_out_on_commit(resend)
    return resend


# --- The audit trail ---------------------------------------------------------------------------


def audit(task: EmailTask, actor, action: str, changes: dict) -> SendAuditEntry:
    """Record a change to ``task``; called inside the change's own transaction."""
    return SendAuditEntry.objects.create(task=task, actor=actor, action=action, changes=changes)


def snapshot(email: CourseEmail, target_keys: list[str], send_at) -> dict:
    """What an audit entry compares: the body by its hash (the email row keeps the text)."""
    return {
        "subject": email.subject,
        "targets": sorted(target_keys),
        # Milliseconds, as JSON carries a time back (an edit that keeps the time is no change).
        "send_at": send_at.isoformat(timespec="milliseconds") if send_at else None,
        "body_sha256": hashlib.sha256(email.html_message.encode()).hexdigest(),
    }


def changed(before: dict, after: dict) -> dict:
    """Each field whose value differs, as [before, after]."""
    return {name: [before[name], after[name]] for name in after if before[name] != after[name]}


def stored_target_keys(email: CourseEmail) -> list[str]:
    return [target.key for target in email.targets.all()]


# --- Operators ------------------------------------------------------------------------------

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


# --- Opting out ---------------------------------------------------------------------------------


def opt_out(*, user_id: int, course_id: str, how: str) -> Optout:
    """Record that the user receives no more bulk email of the course; idempotent (the first
    opt-out, and how it was made, is kept)."""
    return Optout.objects.opt_out(user_id=user_id, course_id=course_id, how=how)


def opt_in(*, user_id: int, course_id: str) -> None:
    """Undo an opt-out: the user receives the course's bulk email again."""
    Optout.objects.opt_in(user_id=user_id, course_id=course_id)


def set_receive_email(*, access: CourseAccess, receive: bool) -> EmailSetting:
    """The dashboard's "Receive course emails" checkbox: opt in, or opt out (how=dashboard)."""
    if receive:
        opt_in(user_id=access.user.pk, course_id=access.course_id)
        clear_complaint_on_resubscribe(user=access.user)
    else:
        opt_out(user_id=access.user.pk, course_id=access.course_id, how=Optout.DASHBOARD)
    return EmailSetting(
        course_id=access.course_id, course_name=access.course.display_name, receive_email=receive
    )
