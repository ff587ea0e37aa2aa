"""Operators' view of the sends: state and progress of the newest tasks."""

from django.core.management.base import BaseCommand

from bulk_email import api


class Command(BaseCommand):
    help = "List the newest bulk email sends with their state and counts."

    def add_arguments(self, parser):
        parser.add_argument("--course-id", help="Only this course's sends.")
        parser.add_argument("--limit", type=int, default=20)

    def handle(self, *args, **options):
        tasks = api.recent_tasks(course_id=options["course_id"], limit=options["limit"])
        if not tasks:
            self.stdout.write("No sends.")
            return
        self.stdout.write(
            f"{'task':>6}  {'state':<9} {'total':>7} {'sent':>7} {'failed':>6} {'skipped':>7}  "
            "created           course / subject"
        )
        for task in tasks:
            status = api.task_status(task=task)
            self.stdout.write(
                f"{task.pk:>6}  {status.state_label:<9} {status.total:>7} {status.sent:>7} "
                f"{status.failed:>6} {status.skipped:>7}  {task.created:%Y-%m-%d %H:%M}  "
                f"{task.email.course_id} / {task.email.subject}"
                + (f"\n        error: {status.error}" if status.error else "")
            )
