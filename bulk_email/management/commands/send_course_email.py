"""A scripted send, through the same service as the Email tab."""

import datetime
import sys
import time
from pathlib import Path

from celery import current_app
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from bulk_email import api
from bulk_email.exceptions import BulkEmailError
from bulk_email.models import EmailTask

NO_WORKER_AFTER_SECONDS = 10.0  # a worker takes a send within a second or two when one runs


class Command(BaseCommand):
    help = "Send (or schedule) a course email to groups, as the given staff member."

    def add_arguments(self, parser):
        parser.add_argument("--course-id", required=True)
        parser.add_argument("--sender", required=True, help="Username of course Staff or Admin.")
        parser.add_argument("--subject", required=True)
        body = parser.add_mutually_exclusive_group(required=True)
        body.add_argument("--message", help="The message as HTML.")
        body.add_argument("--message-file", type=Path, help="A file holding the HTML message.")
        parser.add_argument(
            "--to",
            required=True,
            help="Comma-separated group keys: myself, staff, learners, track:<mode>, "
            "cohort:<id>. The course's keys, cohort ids included, are listed by "
            "`manage.py bulk_email_status --course-id COURSE --groups`.",
        )
        parser.add_argument(
            "--send-at", help="ISO 8601 time with zone, e.g. 2026-12-01T09:00+01:00"
        )
        parser.add_argument("--wait", action="store_true", help="Show progress until it ends.")
        parser.add_argument(
            "--no-worker-after",
            type=float,
            default=NO_WORKER_AFTER_SECONDS,
            metavar="SECONDS",
            help="With --wait: how long the send may wait for a worker before the command "
            f"says none has taken it and how to start one (default {NO_WORKER_AFTER_SECONDS:g}).",
        )

    def handle(self, *args, **options):
        try:
            access = api.staff_access(
                user=self.sender(options["sender"]), course_id=options["course_id"]
            )
            task = api.send_email(
                access=access,
                subject=options["subject"],
                html=self.message(options),
                targets=[key.strip() for key in options["to"].split(",") if key.strip()],
                send_at=self.send_at(options["send_at"]),
            )
        except BulkEmailError as error:
            raise CommandError(refusal(error, options["course_id"])) from error
        self.stdout.write(
            _("Task %(id)s: %(state)s, queue %(queue)s.")
            % {"id": task.pk, "state": task.get_state_display(), "queue": task.queue}
        )
        self.explain_groups(task, access)
        if options["wait"] and task.state != EmailTask.SCHEDULED:
            status = watch(task, self.stdout, no_worker_after=options["no_worker_after"])
            if status.state != EmailTask.SUCCESS:
                raise CommandError(
                    _("The send ended %(state)s: %(error)s")
                    % {"state": status.state_label, "error": status.error}
                )

    def explain_groups(self, task: EmailTask, access) -> None:
        """Each chosen group's reach and who it leaves out, so that a total below the
        course's enrollments comes with its reasons (counted now, as the send resolves)."""
        keys = [target.key for target in task.email.targets.all()]
        for group, breakdown in api.group_breakdowns(
            course_id=access.course_id, sender_id=access.user.pk, keys=keys
        ):
            self.stdout.write(f"  {group.label}: {breakdown.summary()}")

    def sender(self, username: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(_("No user %(username)r.") % {"username": username})
        return user

    def message(self, options) -> str:
        if options["message_file"] is None:
            return options["message"]
        try:
            return options["message_file"].read_text(encoding="utf-8")
        except OSError as error:
            problem = _("Cannot read %(file)s: %(error)s")
            file = options["message_file"]
            raise CommandError(problem % {"file": file, "error": error}) from error

    def send_at(self, text: str | None) -> datetime.datetime | None:
        if not text:
            return None
        try:
            return datetime.datetime.fromisoformat(text)
        except ValueError as error:
            raise CommandError(
                _("--send-at %(text)r is not an ISO 8601 time.") % {"text": text}
            ) from error


def refusal(error: BulkEmailError, course_id: str) -> str:
    """The service's reason; for groups, also where the course's group keys are listed."""
    if getattr(error, "field", None) != "targets":
        return str(error)
    listing = f"manage.py bulk_email_status --course-id {course_id} --groups"
    return _("%(error)s The course's groups and their keys: %(listing)s") % {
        "error": error,
        "listing": listing,
    }


def progress_line(status: api.TaskStatus, width: int = 30) -> str:
    done = status.sent + status.failed + status.skipped
    share = done / status.total if status.total else 0.0
    bar = "#" * round(share * width)
    counts = counts_line(status)
    return f"[{bar:<{width}}] {share:4.0%} {done}/{status.total}  {counts}  {status.state_label}"


def counts_line(status: api.TaskStatus) -> str:
    """ "90 sent, 5 failed, 5 skipped": one plural text per count, each agreeing with its own
    number, joined by the language's list separator (the Email tab's countsLine)."""
    parts = [
        ngettext("%(count)d sent", "%(count)d sent", status.sent) % {"count": status.sent},
        ngettext("%(count)d failed", "%(count)d failed", status.failed) % {"count": status.failed},
        ngettext("%(count)d skipped", "%(count)d skipped", status.skipped)
        % {"count": status.skipped},
    ]
    return pgettext("list separator", ", ").join(parts)


def no_worker_hint(task: EmailTask, waited: float) -> str:
    """Why a send stays Queuing or Pending: nothing consumes the broker's queue. It keeps
    waiting, as the send does: it starts whenever a worker comes."""
    return _(
        "No worker has taken this send after %(seconds).0f s. It stays queued (queue "
        "%(queue)s) and starts as soon as a worker runs; start one in another terminal:\n"
        "  %(command)s\n"
        "Still waiting (Ctrl-C stops the waiting, not the send)."
    ) % {
        "seconds": waited,
        "queue": task.queue,
        "command": f"celery -A {current_app.main} worker -Q large,default",
    }


def watch(
    task: EmailTask,
    out,
    *,
    poll_seconds: float = 0.5,
    no_worker_after: float = NO_WORKER_AFTER_SECONDS,
) -> api.TaskStatus:
    """Print a progress bar until the send ends, and once, if no worker takes the send in
    ``no_worker_after`` seconds, how to start one; the final status."""
    tty = sys.stdout.isatty()
    started = time.monotonic()
    hinted = False
    while True:
        status = api.task_status(task=task)
        line = progress_line(status)
        out.write(("\r" + line) if tty else line, ending="" if tty else "\n")
        out.flush()
        if status.state in EmailTask.FINAL_STATES:
            out.write("")
            return status
        waited = time.monotonic() - started
        if not hinted and status.state in EmailTask.WAITING_STATES and waited >= no_worker_after:
            out.write(("\n" if tty else "") + no_worker_hint(task, waited))
            hinted = True
        time.sleep(poll_seconds)
