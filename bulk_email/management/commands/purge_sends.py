"""manage.py purge_sends --older-than DAYS: retention of finished sends (api/retention.py)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from bulk_email import api
from bulk_email.exceptions import BulkEmailError


class Command(BaseCommand):
    help = (
        "Fold sends that finished more than DAYS ago: their recipient lists and failed/skipped "
        "rows are deleted, their counts, email and audit trail kept; feedback events older "
        "than DAYS are deleted. Safe to run again (cron, or the purge_sends beat task)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")
        parser.add_argument("--dry-run", action="store_true", help="Count, change nothing.")

    def handle(self, *args, older_than: int, dry_run: bool, **options):
        try:
            purge = api.purge_sends(older_than_days=older_than, dry_run=dry_run)
        except BulkEmailError as refused:
            raise CommandError(str(refused)) from refused
        line = DRY_RUN_LINE if dry_run else DONE_LINE
        self.stdout.write(
            _(line)
            % {
                "sends": purge.sends,
                "days": older_than,
                "batches": purge.batches,
                "outcomes": purge.outcomes,
                "events": purge.feedback_events,
            }
        )


DRY_RUN_LINE = gettext_noop(
    "Would fold %(sends)d send(s) finished more than %(days)d days ago: %(batches)d batch(es), "
    "%(outcomes)d failed/skipped row(s); %(events)d feedback event(s) older than that would be "
    "deleted."
)
DONE_LINE = gettext_noop(
    "Folded %(sends)d send(s) finished more than %(days)d days ago: %(batches)d batch(es), "
    "%(outcomes)d failed/skipped row(s); %(events)d feedback event(s) older than that deleted."
)
