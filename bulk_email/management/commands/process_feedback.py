"""Read one message that came back (a bounce, a complaint report, a mail to the unsubscribe
address) on stdin and act on it: the command a Postfix ``pipe`` transport, procmail or a
``.forward`` runs for each message (docs/feedback.md).

Its exit status is what the mail system acts on. 0 whatever the message says or however it
is broken: anything else would make the MTA bounce the bounce, or keep it forever. 75
(EX_TEMPFAIL) only when the database cannot be used (down, refusing, not migrated): the MTA
keeps the message and tries again later, and nothing is lost."""

import logging
import sys

from django.core.management.base import BaseCommand
from django.db import InterfaceError, InternalError, OperationalError, ProgrammingError
from django.utils.translation import gettext as _

from bulk_email import app_settings
from bulk_email.feedback import process_message

log = logging.getLogger(__name__)

EX_OK = 0
EX_TEMPFAIL = 75  # sysexits.h: "temporary failure; the user is invited to retry"
READ_CHUNK = 1 << 20
# The database cannot be used at all (down, refusing, not migrated): the MTA keeps the message
# and tries again. IntegrityError and DataError are about one message: not retried.
DATABASE_UNUSABLE = (OperationalError, InterfaceError, ProgrammingError, InternalError)


class Command(BaseCommand):
    help = (
        "Process one bounce, complaint report or mailed unsubscribe read from stdin; prints "
        "one line of what it did. Exits 0 whatever the message, 75 when the database is "
        "unreachable (the mail system retries)."
    )
    stealth_options = ("stdin",)
    requires_system_checks = []  # one run per message: start fast, keep stderr for errors

    def add_arguments(self, parser):
        parser.add_argument(
            "--recipient",
            action="append",
            default=[],
            help="The envelope recipient the MTA delivered it to (Postfix: "
            "${original_recipient}); may be given more than once.",
        )
        parser.add_argument(
            "--source", default="stdin", help="What to record as its source (default: stdin)."
        )

    def handle(self, *args, **options):
        stream = options.get("stdin") or sys.stdin.buffer
        raw = read_bounded(stream, app_settings.get("MAX_FEEDBACK_MESSAGE_BYTES"))
        try:
            result = process_message(
                raw, source=options["source"][:32], envelope_recipients=tuple(options["recipient"])
            )
        except DATABASE_UNUSABLE as error:
            problem = _("database unreachable, the message is left to the MTA: %(error)s")
            self.stderr.write(problem % {"error": error})
            sys.exit(EX_TEMPFAIL)
        except Exception as error:  # a bug of ours must not make the MTA bounce the bounce
            log.exception("process_feedback failed on a message")
            problem = _("error: the message was not processed (%(kind)s)")
            self.stderr.write(problem % {"kind": type(error).__name__})
            sys.exit(EX_OK)
        self.stdout.write(result.line())


def read_bounded(stream, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``stream`` (one more than allowed says "too large"),
    the rest read and dropped: the MTA writing into the pipe must see it all taken."""
    raw = stream.read(limit + 1)
    while len(raw) > limit and stream.read(READ_CHUNK):
        pass
    return raw
