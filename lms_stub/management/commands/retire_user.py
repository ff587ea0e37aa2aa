"""Retire (erase) a user as an LMS's retirement pipeline does: bulk_email first, while the
address is still the user's, then the LMS's own rows."""

import hashlib

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from bulk_email import api as bulk_email_api
from lms_stub.models import UserProfile


class Command(BaseCommand):
    help = (
        "Retire a user: opted out of every course's bulk email, their bulk email records "
        "erased (counts kept), then the account deactivated and its name and address replaced."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(_("There is no user %(username)s.") % {"username": repr(username)})
        with transaction.atomic():
            done = bulk_email_api.retire_user(user_id=user.pk)
            anonymize(user)
        self.stdout.write(retired_line(user.pk, done))


def retired_line(user_id, done) -> str:
    """What retiring a user did: one plural text per count, so that each of its words agrees
    with its own number (French "1 suppression effacée, 2 événements anonymisés")."""
    courses = ngettext(
        "opted out of %(count)s more course", "opted out of %(count)s more courses",
        done.opted_out_of,
    )  # fmt: skip
    outcomes = ngettext(
        "%(count)s send outcome erased", "%(count)s send outcomes erased", done.outcomes_deleted
    )
    suppressions = ngettext(
        "%(count)s suppression erased", "%(count)s suppressions erased",
        done.suppressions_deleted,
    )  # fmt: skip
    batches = ngettext(
        "%(count)s batch list anonymized", "%(count)s batch lists anonymized",
        done.batches_scrubbed,
    )  # fmt: skip
    events = ngettext(
        "%(count)s feedback event anonymized", "%(count)s feedback events anonymized",
        done.feedback_anonymized,
    )  # fmt: skip
    return _("Retired user %(user)s: %(courses)s; %(outcomes)s, %(suppressions)s; "
             "%(batches)s, %(events)s.") % {
        "user": user_id,
        "courses": courses % {"count": done.opted_out_of},
        "outcomes": outcomes % {"count": done.outcomes_deleted},
        "suppressions": suppressions % {"count": done.suppressions_deleted},
        "batches": batches % {"count": done.batches_scrubbed},
        "events": events % {"count": done.feedback_anonymized},
    }  # fmt: skip


def anonymize(user) -> None:
    """The LMS's own part: Open edX replaces username and address by a salted hash."""
    retired = "retired__user_" + hashlib.sha256(f"{user.pk}:{user.username}".encode()).hexdigest()
    user.username, user.email = retired[:150], f"{retired[:60]}@retired.invalid"
    user.first_name = user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save()
    UserProfile.objects.filter(user=user).update(name="")
