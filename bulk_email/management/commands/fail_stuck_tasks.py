"""End sends stuck in Queuing: saved, but their fan-out never reached the broker."""

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from bulk_email import api


class Command(BaseCommand):
    help = (
        "Mark sends still Queuing after --minutes as Failure (the dispatcher would otherwise "
        "re-enqueue them). --dry-run lists them only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--minutes", type=int, default=30)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, **options):
        if options["minutes"] < 1:
            raise CommandError(_("--minutes must be at least 1."))
        ids = api.fail_stuck_tasks(
            older_than=datetime.timedelta(minutes=options["minutes"]), dry_run=options["dry_run"]
        )
        if options["dry_run"]:
            line = ngettext(
                "%(count)d stuck send would fail: %(ids)s",
                "%(count)d stuck sends would fail: %(ids)s",
                len(ids),
            )
        else:
            line = ngettext(
                "%(count)d stuck send failed: %(ids)s",
                "%(count)d stuck sends failed: %(ids)s",
                len(ids),
            )
        self.stdout.write(line % {"count": len(ids), "ids": ", ".join(map(str, ids)) or "-"})
