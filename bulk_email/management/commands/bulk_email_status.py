"""Operators' view of the sends: state and progress of the newest tasks; or a course's
"Send to" groups with the keys that send_course_email --to takes."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from bulk_email import api
from bulk_email.exceptions import BulkEmailError


class Command(BaseCommand):
    help = (
        "List the newest bulk email sends with their state and counts (times with their UTC "
        "offset); with --groups, the course's groups and their keys (for send_course_email --to)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--course-id", help="Only this course's sends.")
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument(
            "--groups",
            action="store_true",
            help="List the course's groups (cohorts and tracks included) and their keys.",
        )

    def handle(self, *args, **options):
        if options["groups"]:
            self.list_groups(options["course_id"])
        else:
            self.list_sends(options["course_id"], options["limit"])

    def list_groups(self, course_id: str | None) -> None:
        if not course_id:
            raise CommandError(_("--groups needs --course-id: groups belong to a course."))
        try:
            groups = api.offered_groups(course_id=course_id)
        except BulkEmailError as error:
            raise CommandError(str(error)) from error
        width = max((len(group.key) for group in groups), default=0)
        for group in groups:
            self.stdout.write(f"{group.key:<{width}}  {group.label}")

    def list_sends(self, course_id: str | None, limit: int) -> None:
        tasks = api.recent_tasks(course_id=course_id, limit=limit)
        if not tasks:
            self.stdout.write(_("No sends."))
            return
        self.stdout.write(
            f"{'task':>6}  {'state':<9} {'total':>7} {'sent':>7} {'failed':>6} {'skipped':>7}  "
            "created                 course / subject"
        )
        for task in tasks:
            status = api.task_status(task=task)
            self.stdout.write(
                f"{task.pk:>6}  {status.state_label:<9} {status.total:>7} {status.sent:>7} "
                f"{status.failed:>6} {status.skipped:>7}  {zoned(task.created)}  "
                f"{task.email.course_id} / {task.email.subject}"
                + (error_line(status.error) if status.error else "")
            )


def error_line(error: str) -> str:
    return "\n        " + _("error: %(error)s") % {"error": error}


def zoned(moment) -> str:
    """In the site's time zone, with its UTC offset: a bare time is ambiguous to an operator
    on another machine or zone."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %z}"
