"""Read the feedback mailbox (FEEDBACK_IMAP or FEEDBACK_MAILDIR) once: every waiting bounce,
complaint and mailed unsubscribe is processed and taken out. Safe to run from cron or celery
beat: a run that finds another one running does nothing (docs/feedback.md)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from bulk_email.exceptions import BulkEmailError
from bulk_email.feedback.poll import poll_feedback

# An operator's cron may tell "nothing to do" (0) from "try again" (75, EX_TEMPFAIL).
EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = (
        "Process the bounces, complaints and mailed unsubscribes waiting in the feedback "
        "mailbox (BULK_EMAIL FEEDBACK_IMAP or FEEDBACK_MAILDIR), at most --limit of them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit", type=int, default=None, help="Messages this run takes at most."
        )

    def handle(self, *args, **options):
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError(_("--limit must be at least 1."))
        try:
            report = poll_feedback(limit=limit)
        except (BulkEmailError, DatabaseError) as error:
            raise CommandError(str(error), returncode=EX_TEMPFAIL) from error
        if report.busy:
            self.stdout.write(_("%(mailbox)s: another poll_feedback is running; nothing done.")
                              % {"mailbox": report.mailbox})  # fmt: skip
            return
        counts = ", ".join(f"{o}: {n}" for o, n in sorted(report.outcomes.items())) or "-"
        read = sum(report.outcomes.values())
        line = ngettext(
            "%(mailbox)s: %(count)d message in %(seconds).1f s (%(counts)s)",
            "%(mailbox)s: %(count)d messages in %(seconds).1f s (%(counts)s)",
            read,
        )
        values = {"mailbox": report.mailbox, "count": read, "seconds": report.seconds}
        self.stdout.write(line % {**values, "counts": counts})
