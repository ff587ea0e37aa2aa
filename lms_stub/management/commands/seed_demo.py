from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from lms_stub.demo import DEMO_LOGINS, seed_demo


class Command(BaseCommand):
    help = "Create (or refresh) the demo course, its logins, and enable bulk email. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--learners", type=int, default=40, help="Learners in the demo course (it only grows)."
        )

    def handle(self, *args, **options):
        seed_demo(learners=options["learners"])
        self.stdout.write(_("Demo logins (username / password):"))
        for role, username, password in DEMO_LOGINS:
            self.stdout.write(f"  {role:<12} {username} / {password}")
