import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from bulk_email.models import BulkEmailFlag, CourseAuthorization, Optout
from lms_stub.demo import DEMO_COURSE_ID, seed_demo
from lms_stub.models import Cohort, CohortMembership, CourseAccessRole, CourseEnrollment, CourseMode
from lms_stub.seeding import SeedPlan, course_slug, seed_course

pytestmark = pytest.mark.django_db
COURSE = "course-v1:SeedX+S1+2026"


def test_seed_course_creates_learners_tracks_cohorts_and_team():
    report = seed_course(
        SeedPlan(course_id=COURSE, learners=600, tracks=["audit", "verified"], cohorts=3)
    )
    assert (report.learners_created, report.learners_total) == (600, 600)
    assert list(
        CourseMode.objects.filter(course_id=COURSE).values_list("mode_slug", flat=True)
    ) == ["audit", "verified"]
    cohorts = Cohort.objects.filter(course_id=COURSE)
    assert [c.name for c in cohorts] == ["Default Group", "Cohort A", "Cohort B"]
    assert cohorts.get(is_default=True).name == "Default Group"
    learners = get_user_model().objects.filter(username__startswith=f"{course_slug(COURSE)}_l")
    assert learners.count() == 600
    modes = set(CourseEnrollment.objects.filter(user__in=learners).values_list("mode", flat=True))
    assert modes == {"audit", "verified"}
    roles = set(CourseAccessRole.objects.filter(course_id=COURSE).values_list("role", flat=True))
    assert {"instructor", "staff", "beta_testers", "Moderator", "Community TA"} <= roles


def test_seeded_learners_include_every_kind_the_rules_care_about():
    seed_course(SeedPlan(course_id=COURSE, learners=2000))
    learners = get_user_model().objects.filter(username__startswith=f"{course_slug(COURSE)}_l")
    assert learners.filter(is_active=False).exists()
    assert learners.filter(last_login__isnull=True).exists()
    assert CourseEnrollment.objects.filter(course_id=COURSE, is_active=False).exists()
    assert Optout.objects.filter(course_id=COURSE).exists()
    in_cohort = CohortMembership.objects.filter(cohort__course_id=COURSE).count()
    assert 0 < in_cohort < 2000  # some learners are in no cohort
    names = learners.values_list("lms_profile__name", flat=True)
    assert any(not name.isascii() for name in names)


def test_seeding_is_idempotent_and_can_grow_a_course():
    seed_course(SeedPlan(course_id=COURSE, learners=50))
    again = seed_course(SeedPlan(course_id=COURSE, learners=50))
    grown = seed_course(SeedPlan(course_id=COURSE, learners=80))
    assert again.learners_created == 0 and grown.learners_created == 30
    assert (
        CourseEnrollment.objects.filter(course_id=COURSE).count() == 80 + 4
    )  # + the enrolled team members


def test_the_command_reports_and_refuses_bad_input(capsys):
    call_command("seed_course", "--course-id", COURSE, "--learners", "10", "--tracks", "audit")
    assert "10 learners created" in capsys.readouterr().out
    with pytest.raises(CommandError, match="course-v1:Org"):
        call_command("seed_course", "--course-id", "physics", "--learners", "1")
    with pytest.raises(CommandError, match="--tracks"):
        call_command("seed_course", "--course-id", COURSE, "--tracks", ",")


def test_seed_demo_is_idempotent_and_enables_bulk_email():
    seed_demo()
    seed_demo()
    assert BulkEmailFlag.feature_enabled(DEMO_COURSE_ID)
    assert CourseAuthorization.objects.get(course_id=DEMO_COURSE_ID).email_enabled
    instructor = get_user_model().objects.get(username="instructor")
    assert instructor.check_password("instructor")
    assert CourseAccessRole.objects.filter(user=instructor, role="instructor").count() == 1


def seeded_rows(course_id: str) -> dict:
    """What a seeded course holds, ids aside: the learners' rows by username."""
    learners = get_user_model().objects.filter(username__startswith=f"{course_slug(course_id)}_l")
    return {
        "users": sorted(learners.values_list("username", "email", "is_active", "last_login",
                                             "date_joined", "password", "lms_profile__name")),
        "enrollments": sorted(CourseEnrollment.objects.filter(course_id=course_id).values_list(
            "user__username", "mode", "is_active", "created")),
        "cohorts": sorted(CohortMembership.objects.filter(cohort__course_id=course_id)
                          .values_list("user__username", "cohort__name")),
        "optouts": sorted(Optout.objects.filter(course_id=course_id)
                          .values_list("user__username", "how")),
    }  # fmt: skip


def test_copy_seeds_the_same_rows_as_bulk_create(monkeypatch):
    """PostgreSQL's COPY path and the bulk_create path give the same course (the clock and
    the shared password hash held still), and a later save gets an id past the copied ones."""
    from django.contrib.auth import hashers
    from django.utils import timezone

    from lms_stub import seeding

    if not seeding.can_copy():
        pytest.skip("COPY is PostgreSQL's (through psycopg 3): the PostgreSQL pass runs this")
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    monkeypatch.setattr(hashers, "make_password", lambda password: "!same")
    monkeypatch.setattr(seeding, "make_password", lambda password: "!same")
    seed_course(SeedPlan(course_id=COURSE, learners=700, cohorts=3))
    copied = seeded_rows(COURSE)
    copied_max = get_user_model().objects.order_by("-pk").values_list("pk", flat=True)[0]
    assert get_user_model().objects.create(username="after-the-copy").pk > copied_max
    learners = get_user_model().objects.filter(username__startswith=f"{course_slug(COURSE)}_l")
    learners.delete()  # the same course again, through bulk_create this time
    monkeypatch.setattr(seeding, "can_copy", lambda: False)
    seed_course(SeedPlan(course_id=COURSE, learners=700, cohorts=3))

    assert len(copied["users"]) == 700
    assert copied["optouts"] and copied["cohorts"]
    assert copied == seeded_rows(COURSE)


@pytest.mark.django_db
def test_the_demo_has_learners_in_three_languages_and_its_logins_keep_the_browsers():
    from lms_stub.demo import seed_demo
    from lms_stub.models import UserProfile

    seed_demo(learners=12)
    seed_demo(learners=12)  # idempotent
    languages = list(UserProfile.objects.values_list("language", flat=True))
    assert (languages.count("fr"), languages.count("ar")) == (3, 3)
    assert UserProfile.objects.get(user__username="learner").language == ""
