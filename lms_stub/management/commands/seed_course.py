import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from lms_stub.seeding import SeedPlan, seed_course


def course_key(value: str) -> str:
    if not value.startswith("course-v1:") or value.count("+") != 2:
        raise CommandError(f"--course-id must look like course-v1:Org+Number+Run, not {value!r}")
    return value


class Command(BaseCommand):
    help = (
        "Seed a course with N learners across tracks and cohorts, a course team, inactive, "
        "long-absent and never-logged-in learners, with Unicode names. Idempotent: a re-run "
        "only adds the learners that are missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--course-id", required=True, type=str)
        parser.add_argument("--learners", type=int, default=100)
        parser.add_argument(
            "--tracks", default="audit,verified", help="Comma-separated mode slugs (first: audit)."
        )
        parser.add_argument(
            "--cohorts",
            type=int,
            default=2,
            help='Number of cohorts; the first is "Default Group".',
        )
        parser.add_argument("--name", default="", help="Display name of a new course.")
        parser.add_argument(
            "--optout-percent", type=float, default=1.0, help="Share of learners opted out."
        )

    def handle(self, *args, **options):
        tracks = [t.strip() for t in options["tracks"].split(",") if t.strip()]
        if not tracks:
            raise CommandError(_("--tracks needs at least one mode slug, e.g. audit,verified"))
        if options["learners"] < 0 or options["cohorts"] < 0:
            raise CommandError(_("--learners and --cohorts must not be negative"))
        plan = SeedPlan(
            course_id=course_key(options["course_id"]),
            learners=options["learners"],
            tracks=tracks,
            cohorts=options["cohorts"],
            display_name=options["name"],
            optout_share=options["optout_percent"] / 100,
        )
        started = time.perf_counter()
        report = seed_course(plan)
        elapsed = time.perf_counter() - started
        self.stdout.write(
            ngettext(
                "%(course)s: %(created)s learner created, %(total)s in all, in %(seconds).1f s",
                "%(course)s: %(created)s learners created, %(total)s in all, in %(seconds).1f s",
                report.learners_created,
            )
            % {
                "course": report.course_id,
                "created": report.learners_created,
                "total": report.learners_total,
                "seconds": elapsed,
            }
        )
