"""End sends stuck in Queuing: saved, but their fan-out never reached the broker."""

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

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
        line = (
            _("%(count)d stuck send(s) would fail: %(ids)s")
            if options["dry_run"]
            else _("%(count)d stuck send(s) failed: %(ids)s")
        )
        self.stdout.write(line % {"count": len(ids), "ids": ", ".join(map(str, ids)) or "-"})
