"""Fast, idempotent seeding of courses with learners, for demos, tests and benchmarks.

Rows go in by chunks: on PostgreSQL with COPY (the users' ids taken from their sequence
first), elsewhere with ``bulk_create`` (100,000 learners in seconds, not one save per row).
COPY skips most of what ``bulk_create`` spends: a model instance per row and a statement of
50,000 parameters to build and parse per chunk (20,000 learners, back to back on PostgreSQL:
13.3 s with ``bulk_create``, 5.7 s with COPY).
Learners are numbered per course; a re-run creates only the numbers that are missing, so
seeding is idempotent and can grow a course.
"""

import datetime
import random
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from bulk_email import signals
from bulk_email.models import Optout

from .models import Cohort, CohortMembership, Course, CourseAccessRole, CourseEnrollment, CourseMode

CHUNK_SIZE = 5000

TRACK_NAMES = {
    "audit": "Audit",
    "honor": "Honor Code Certificate",
    "verified": "Verified Certificate",
    "professional": "Professional Education",
    "no-id-professional": "Professional Education (no ID)",
    "masters": "Master's",
}

FIRST_NAMES = [
    "Zoë",
    "Søren",
    "Łukasz",
    "José",
    "Amélie",
    "Björn",
    "Chloé",
    "Đorđe",
    "Renée",
    "Ítalo",
    "Анна",
    "Дмитрий",
    "Ελένη",
    "Γιώργος",
    "محمد",
    "فاطمة",
    "דוד",
    "美咲",
    "太郎",
    "伟",
    "秀英",
    "민준",
    "서연",
    "Aarav",
    "अनन्या",
    "Nguyễn",
    "Thảo",
    "Oğuz",
    "Ayşe",
    "Siobhán",
]
LAST_NAMES = [
    "Müller",
    "Ødegaard",
    "Wiśniewski",
    "García",
    "Lefèvre",
    "Ångström",
    "O'Brien",
    "Novák",
    "Иванова",
    "Παπαδόπουλος",
    "الحسن",
    "כהן",
    "山田",
    "王",
    "김",
    "शर्मा",
    "Trần",
    "Yılmaz",  # noqa: RUF001 (a real Turkish name)
    "Ní Bhriain",
    "Dubois",
    "Rossi",
    "Silva",
    "Kowalczyk",
    "Jensen",
    "Smith",
]


@dataclass
class SeedPlan:
    """What a course should contain; the shares are fractions of the learners."""

    course_id: str
    learners: int
    tracks: list[str] = field(default_factory=lambda: ["audit", "verified"])
    cohorts: int = 2
    display_name: str = ""
    inactive_share: float = 0.01  # accounts never activated
    unenrolled_share: float = 0.01  # enrollment is_active=False
    long_absent_share: float = 0.02  # last login 24 months ago
    never_logged_in_share: float = 0.05
    uncohorted_share: float = 0.2
    optout_share: float = 0.01


@dataclass
class SeedReport:
    course_id: str
    learners_created: int
    learners_total: int


def course_slug(course_id: str) -> str:
    """A username-safe short form of the course key: course-v1:Org+Num+Run -> org_num_run."""
    key = course_id.split(":", 1)[-1]
    return "".join(c if c.isalnum() else "_" for c in key).lower()


def ensure_course(plan: SeedPlan) -> Course:
    org = plan.course_id.split(":", 1)[-1].split("+")[0]
    course, _ = Course.objects.get_or_create(
        pk=plan.course_id,
        defaults={
            "display_name": plan.display_name or f"Course {plan.course_id}",
            "org": org,
            "end": timezone.now() + datetime.timedelta(days=180),
            "postal_address": f"{org} Learning, 1 Rue de l'École, 75005 Paris, France",
        },
    )
    for slug in plan.tracks:
        CourseMode.objects.get_or_create(
            course=course,
            mode_slug=slug,
            defaults={"mode_display_name": TRACK_NAMES.get(slug, slug.title())},
        )
    return course


def ensure_cohorts(course: Course, count: int) -> list[Cohort]:
    names = ["Default Group"] + [f"Cohort {chr(ord('A') + i)}" for i in range(max(count - 1, 0))]
    return [
        Cohort.objects.get_or_create(course=course, name=name, defaults={"is_default": i == 0})[0]
        for i, name in enumerate(names[:count])
    ]


TEAM = [
    ("instructor", CourseAccessRole.INSTRUCTOR, "Prof. Ada Lovelace-Ngũgĩ"),
    ("staff", CourseAccessRole.STAFF, "Sébastien Staff"),
    ("staff2", CourseAccessRole.STAFF, "Мария Staff"),
    ("beta", CourseAccessRole.BETA_TESTER, "Beta Tester Björk"),
    ("moderator", CourseAccessRole.DISCUSSION_MODERATOR, "Mod Erator"),
    ("ta", CourseAccessRole.COMMUNITY_TA, "Tina Community-TA"),
]


def ensure_team(course: Course, slug: str) -> None:
    """The course team; ``staff2`` is also enrolled, to show team members are not learners."""
    for suffix, role, name in TEAM:
        user = ensure_user(f"{slug}_{suffix}", name)
        CourseAccessRole.objects.get_or_create(user=user, course=course, role=role)
        if suffix in {"staff2", "beta", "moderator", "ta"}:
            CourseEnrollment.objects.get_or_create(
                user=user, course=course, defaults={"mode": "audit", "created": timezone.now()}
            )


def ensure_user(username: str, full_name: str, password: str | None = None, **extra):
    from .models import UserProfile

    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.com", **extra}
    )
    if created:
        user.set_password(password) if password else user.set_unusable_password()
        user.save()
        UserProfile.objects.create(user=user, name=full_name)
    return user


def seed_course(plan: SeedPlan) -> SeedReport:
    course = ensure_course(plan)
    cohorts = ensure_cohorts(course, plan.cohorts)
    slug = course_slug(plan.course_id)
    ensure_team(course, slug)
    prefix = f"{slug}_l"
    existing = get_user_model().objects.filter(username__startswith=prefix).count()
    password = make_password(None)  # one unusable hash for all: hashing is the slow part
    for start in range(existing, plan.learners, CHUNK_SIZE):
        stop = min(start + CHUNK_SIZE, plan.learners)
        with transaction.atomic():
            create_learners(plan, course, cohorts, prefix, range(start, stop), password)
    if plan.learners > existing:
        refresh_statistics()
        # bulk_create sends no model signals: say it once, for the Email tab's counts.
        signals.audience_changed.send(sender=Course, course_id=plan.course_id)
    return SeedReport(
        plan.course_id, max(plan.learners - existing, 0), max(plan.learners, existing)
    )


SEEDED_TABLES = ("auth_user", "lms_stub_userprofile", "lms_stub_courseenrollment",
                 "lms_stub_cohortmembership", "bulk_email_optout")  # fmt: skip


def refresh_statistics() -> None:
    """ANALYZE the tables a bulk load filled, on PostgreSQL. Without fresh statistics the
    planner takes a 100,000-row table for an empty one and a recipient page costs 0.3 s
    instead of milliseconds; autovacuum would fix it within minutes, but it may be off (it
    is on this project's machines) and a benchmark starts at once."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(SEEDED_TABLES))


def create_learners(plan, course, cohorts, prefix, numbers: range, password: str) -> None:
    from .models import UserProfile

    now = timezone.now()
    rng = random.Random(f"{plan.course_id}:{numbers.start}")
    people = [make_learner(plan, prefix, n, rng, now, password) for n in numbers]
    if can_copy():
        copy_learners(plan, course, cohorts, people, now)
        return
    users = get_user_model().objects.bulk_create([p.user for p in people])
    for person, user in zip(people, users, strict=True):
        person.user = user
    UserProfile.objects.bulk_create(UserProfile(user=p.user, name=p.full_name) for p in people)
    CourseEnrollment.objects.bulk_create(
        CourseEnrollment(
            user=p.user,
            course=course,
            mode=plan.tracks[p.number % len(plan.tracks)],
            is_active=not p.unenrolled,
            created=p.enrolled,
        )
        for p in people
    )
    CohortMembership.objects.bulk_create(
        CohortMembership(cohort=cohorts[p.number % len(cohorts)], user=p.user)
        for p in people
        if cohorts and not p.uncohorted
    )
    Optout.objects.bulk_create(
        Optout(user=p.user, course_id=course.id, how=Optout.ADMIN) for p in people if p.opted_out
    )


def can_copy() -> bool:
    """PostgreSQL through psycopg 3, whose cursors have ``copy``."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        return hasattr(cursor.cursor, "copy")


def copy_learners(plan, course, cohorts, people: list["SeededLearner"], now) -> None:
    """The same rows as the ``bulk_create`` path, through COPY."""
    from .models import UserProfile

    User = get_user_model()
    for person, user_id in zip(people, reserve_ids(User, len(people)), strict=True):
        person.user.pk = user_id
    fields = [field.name for field in User._meta.concrete_fields]
    attnames = [field.attname for field in User._meta.concrete_fields]
    copy_rows(User, fields, [tuple(getattr(p.user, a) for a in attnames) for p in people])
    copy_rows(UserProfile, ["user", "name"], [(p.user.pk, p.full_name) for p in people])
    copy_rows(
        CourseEnrollment,
        ["user", "course", "mode", "is_active", "created"],
        [(p.user.pk, course.pk, plan.tracks[p.number % len(plan.tracks)], not p.unenrolled,
          p.enrolled) for p in people],
    )  # fmt: skip
    copy_rows(
        CohortMembership,
        ["cohort", "user"],
        [(cohorts[p.number % len(cohorts)].pk, p.user.pk) for p in people
         if cohorts and not p.uncohorted],
    )  # fmt: skip
    copy_rows(
        Optout,
        ["user", "course_id", "created", "how"],
        [(p.user.pk, course.pk, now, Optout.ADMIN) for p in people if p.opted_out],
    )


def reserve_ids(model, count: int) -> list[int]:
    """``count`` primary keys from the table's own sequence, so later inserts never meet
    them."""
    table, column = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [connection.ops.quote_name(table), column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def copy_rows(model, fields: list[str], rows: list[tuple]) -> None:
    """``rows`` (values of ``fields``, foreign keys as ids) into the model's table by COPY;
    the model's other columns get their field's default, as ``bulk_create`` would give
    (Django's defaults are not the database's: a column left out would be NULL)."""
    if not rows:
        return
    others = [
        field
        for field in model._meta.concrete_fields
        if field.name not in fields and not (field.primary_key and field.auto_created)
    ]
    defaults = tuple(field.get_default() for field in others)
    quote = connection.ops.quote_name
    names = [model._meta.get_field(name).column for name in fields] + [f.column for f in others]
    statement = f"COPY {quote(model._meta.db_table)} ({', '.join(map(quote, names))}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row + defaults)


@dataclass
class SeededLearner:
    number: int
    user: object
    full_name: str
    enrolled: datetime.datetime
    unenrolled: bool
    uncohorted: bool
    opted_out: bool


def make_learner(plan: SeedPlan, prefix: str, number: int, rng, now, password) -> SeededLearner:
    kind = learner_kind(plan, rng.random())
    enrolled = now - datetime.timedelta(days=rng.randint(1, 400))
    last_login = now - datetime.timedelta(days=rng.randint(0, 60), seconds=rng.randint(0, 86399))
    if kind == "long_absent":
        last_login, enrolled = (
            now - datetime.timedelta(days=730),
            now - datetime.timedelta(days=800),
        )
    elif kind == "never_logged_in":
        last_login = None
    username = f"{prefix}{number:07d}"
    user = get_user_model()(
        username=username,
        email=f"{username}@learners.example.com",
        password=password,
        is_active=kind != "inactive",
        last_login=last_login,
        date_joined=enrolled,
    )
    return SeededLearner(
        number=number,
        user=user,
        full_name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        enrolled=enrolled,
        unenrolled=rng.random() < plan.unenrolled_share,
        uncohorted=rng.random() < plan.uncohorted_share,
        opted_out=rng.random() < plan.optout_share,
    )


def learner_kind(plan: SeedPlan, draw: float) -> str:
    """Split learners by one uniform draw into the plan's shares of special kinds."""
    edge = 0.0
    for kind, share in (
        ("inactive", plan.inactive_share),
        ("long_absent", plan.long_absent_share),
        ("never_logged_in", plan.never_logged_in_share),
    ):
        edge += share
        if draw < edge:
            return kind
    return "regular"
