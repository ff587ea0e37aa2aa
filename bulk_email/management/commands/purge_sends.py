"""manage.py purge_sends --older-than DAYS: retention of finished sends (api/retention.py)."""

from django.core.management.base import BaseCommand, CommandError

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
        verb = "Would fold" if dry_run else "Folded"
        self.stdout.write(
            f"{verb} {purge.sends} send(s) finished more than {older_than} days ago: "
            f"{purge.batches} batch(es), {purge.outcomes} failed/skipped row(s); "
            f"{purge.feedback_events} feedback event(s) older than that "
            f"{'would be ' if dry_run else ''}deleted."
        )
