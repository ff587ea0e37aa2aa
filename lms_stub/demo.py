"""The demo site's data: one Unicode-titled course, known logins, bulk email switched on."""

from django.db import transaction

from bulk_email.models import BulkEmailFlag, CourseAuthorization

from .models import CourseAccessRole, CourseEnrollment, UserProfile
from .seeding import SeedPlan, course_slug, ensure_user, seed_course

DEMO_COURSE_ID = "course-v1:DemoX+PHY101+2026"
DEMO_COURSE_NAME = "Physique générale — 物理"

# (role shown to the person, username, password)
DEMO_LOGINS = [
    ("instructor", "instructor", "instructor"),
    ("staff", "staff", "staff"),
    ("learner", "learner", "learner"),
    ("site admin", "admin", "admin"),
]


@transaction.atomic
def seed_demo(*, learners: int = 40) -> None:
    seed_course(
        SeedPlan(
            course_id=DEMO_COURSE_ID,
            display_name=DEMO_COURSE_NAME,
            learners=learners,
            tracks=["audit", "verified"],
            cohorts=2,
        )
    )
    instructor = ensure_user("instructor", "Prof. Hélène Durand", "instructor")
    staff = ensure_user("staff", "Søren Ødegaard", "staff")
    learner = ensure_user("learner", "Zoë Learner-学生", "learner")
    ensure_user("admin", "Site Admin", "admin", is_staff=True, is_superuser=True)
    for user, role in ((instructor, CourseAccessRole.INSTRUCTOR), (staff, CourseAccessRole.STAFF)):
        CourseAccessRole.objects.get_or_create(user=user, course_id=DEMO_COURSE_ID, role=role)
    CourseEnrollment.objects.get_or_create(
        user=learner,
        course_id=DEMO_COURSE_ID,
        defaults={"mode": "verified", "created": learner.date_joined},
    )
    give_demo_languages()
    enable_bulk_email()


def give_demo_languages() -> None:
    """A quarter of the demo course's seeded learners read French, a quarter Arabic (their
    profile's language): a send from the demo shows footers in three languages in the
    Mailbox. The known logins keep the browser's language."""
    prefix = f"{course_slug(DEMO_COURSE_ID)}_l"
    profiles = UserProfile.objects.filter(user__username__startswith=prefix, language="")
    for profile in profiles.select_related("user").order_by("user_id"):
        number = int(profile.user.username.removeprefix(prefix) or 0)
        profile.language = {1: "fr", 2: "ar"}.get(number % 4, "")
        if profile.language:
            profile.save(update_fields=["language"])


def enable_bulk_email() -> None:
    flag = BulkEmailFlag.current()
    flag.enabled = True
    flag.require_course_email_auth = True
    flag.save()
    CourseAuthorization.objects.update_or_create(
        course_id=DEMO_COURSE_ID, defaults={"email_enabled": True}
    )
