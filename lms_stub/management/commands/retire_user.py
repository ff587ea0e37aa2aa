"""Retire (erase) a user as an LMS's retirement pipeline does: bulk_email first, while the
address is still the user's, then the LMS's own rows."""

import hashlib

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _

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
        self.stdout.write(
            _(
                "Retired user %(user)s: opted out of %(courses)s more course(s); "
                "%(outcomes)s send outcome(s), %(suppressions)s suppression(s) erased; "
                "%(batches)s batch list(s) and %(events)s feedback event(s) anonymized."
            )
            % {
                "user": user.pk,
                "courses": done.opted_out_of,
                "outcomes": done.outcomes_deleted,
                "suppressions": done.suppressions_deleted,
                "batches": done.batches_scrubbed,
                "events": done.feedback_anonymized,
            }
        )


def anonymize(user) -> None:
    """The LMS's own part: Open edX replaces username and address by a salted hash."""
    retired = "retired__user_" + hashlib.sha256(f"{user.pk}:{user.username}".encode()).hexdigest()
    user.username, user.email = retired[:150], f"{retired[:60]}@retired.invalid"
    user.first_name = user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save()
    UserProfile.objects.filter(user=user).update(name="")
