"""manage.py purge_sends --older-than DAYS: retention of finished sends (api/retention.py)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext, ngettext

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
        self.stdout.write(purge_line(purge, older_than=older_than, dry_run=dry_run))


def purge_line(purge, *, older_than: int, dry_run: bool) -> str:
    """What was folded, or would be: one plural text per count, so that each of its words
    agrees with its own number (French "1 lot, 3 lignes")."""
    days = ngettext("%(count)d day", "%(count)d days", older_than) % {"count": older_than}
    if dry_run:
        sends = ngettext(
            "Would fold %(count)d send finished more than %(days)s ago",
            "Would fold %(count)d sends finished more than %(days)s ago",
            purge.sends,
        )
        events = ngettext(
            "%(count)d feedback event older than that would be deleted",
            "%(count)d feedback events older than that would be deleted",
            purge.feedback_events,
        )
    else:
        sends = ngettext(
            "Folded %(count)d send finished more than %(days)s ago",
            "Folded %(count)d sends finished more than %(days)s ago",
            purge.sends,
        )
        events = ngettext(
            "%(count)d feedback event older than that deleted",
            "%(count)d feedback events older than that deleted",
            purge.feedback_events,
        )
    batches = ngettext("%(count)d batch", "%(count)d batches", purge.batches)
    outcomes = ngettext(
        "%(count)d failed/skipped row", "%(count)d failed/skipped rows", purge.outcomes
    )
    return gettext("%(sends)s: %(batches)s, %(outcomes)s; %(events)s.") % {
        "sends": sends % {"count": purge.sends, "days": days},
        "batches": batches % {"count": purge.batches},
        "outcomes": outcomes % {"count": purge.outcomes},
        "events": events % {"count": purge.feedback_events},
    }
