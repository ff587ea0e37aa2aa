"""Recipient resolution against real rows of the LMS stub: who each group reaches, once each,
in user-id order, in keyset pages of constant query count."""

import datetime
import itertools
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulk_email.exceptions import InvalidEmailError
from bulk_email.groups import Group, available_groups, validate_target_keys
from bulk_email.lms import Recipient
from bulk_email.recipients import (
    count_recipients,
    display_names,
    eligibility_cutoff,
    email_audience,
    group_counts,
    months_before,
    opted_out_ids,
    recipient_id_pages,
    recipient_pages,
)
from lms_stub.models import CourseAccessRole
from lms_stub.seeding import SeedPlan, seed_course
from tests.factories import (
    enroll,
    give_role,
    make_cohort,
    make_course,
    make_email,
    make_user,
    opt_out,
    recipient_rows,
    suppress,
)
from tests.plans import executed_plan, rows_read, statements_of

pytestmark = pytest.mark.django_db

ADMIN, STAFF_ROLE = CourseAccessRole.INSTRUCTOR, CourseAccessRole.STAFF


def months_ago(months: int) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=30.5 * months)


# ---------------------------------------------------------------------------------------------
# The world: one course with a member for every row and column of the issue's table.
#
# Columns (group keys): myself, staff, learners, track:audit, track:verified, and the cohorts
# written "cohort:<name>" here, turned into "cohort:<id>" once the rows exist.
# Each row: label, how the person is made, and the groups that must reach them.

MEMBERS = [
    # label                  roles / enrollment / cohorts / extra            reached by
    ("sender", dict(roles=[ADMIN]), {"myself", "staff"}),
    ("admin", dict(roles=[ADMIN]), {"staff"}),
    ("staff_enrolled", dict(roles=[STAFF_ROLE], mode="audit", cohorts=["Blue"]),
     {"staff", "cohort:Blue"}),
    ("staff_absent", dict(roles=[STAFF_ROLE], last_login=months_ago(24)), {"staff"}),
    ("staff_inactive", dict(roles=[STAFF_ROLE], is_active=False), set()),
    ("staff_opted_out", dict(roles=[STAFF_ROLE], opted_out=True), set()),
    ("staff_suppressed", dict(roles=[STAFF_ROLE], suppressed=True), set()),
    ("beta", dict(roles=[CourseAccessRole.BETA_TESTER], mode="audit"),
     {"learners", "track:audit"}),
    ("community_ta", dict(roles=[CourseAccessRole.COMMUNITY_TA], mode="verified",
                          cohorts=["Red"]), {"learners", "track:verified", "cohort:Red"}),
    ("moderator", dict(roles=[CourseAccessRole.DISCUSSION_MODERATOR]), set()),
    ("audit", dict(mode="audit", cohorts=["Default Group"]),
     {"learners", "track:audit", "cohort:Default Group"}),
    ("verified", dict(mode="verified", cohorts=["Blue"]),
     {"learners", "track:verified", "cohort:Blue"}),
    ("two_cohorts", dict(mode="verified", cohorts=["Blue", "Red"]),
     {"learners", "track:verified", "cohort:Blue", "cohort:Red"}),
    ("no_cohort", dict(mode="audit"), {"learners", "track:audit"}),
    ("inactive_account", dict(mode="audit", cohorts=["Blue"], is_active=False), set()),
    ("opted_out", dict(mode="audit", cohorts=["Default Group"], opted_out=True), set()),
    ("suppressed", dict(mode="verified", cohorts=["Blue", "Red"], suppressed=True), set()),
    ("opted_out_elsewhere", dict(mode="audit", opted_out_of_other=True),
     {"learners", "track:audit"}),
    ("unenrolled", dict(mode="audit", enrollment_active=False, cohorts=["Blue"]), set()),
    ("absent_19_months", dict(mode="audit", cohorts=["Blue"], last_login=months_ago(19),
                              enrolled=months_ago(30)), set()),
    ("absent_17_months", dict(mode="verified", last_login=months_ago(17),
                              enrolled=months_ago(30)), {"learners", "track:verified"}),
    ("never_logged_in_recent", dict(mode="audit", cohorts=["Red"], last_login=None,
                                    enrolled=months_ago(1)),
     {"learners", "track:audit", "cohort:Red"}),
    ("never_logged_in_old", dict(mode="audit", cohorts=["Red"], last_login=None,
                                 enrolled=months_ago(24)), set()),
    ("other_course", dict(other_course=True, cohorts_of_other=True), set()),
]  # fmt: skip

COHORTS = ["Default Group", "Blue", "Red"]


@dataclass
class World:
    course_id: str
    other_course_id: str
    users: dict  # label -> user
    cohort_ids: dict  # name -> id
    other_cohort_id: int

    @property
    def sender_id(self) -> int:
        return self.users["sender"].pk

    def key(self, symbolic: str) -> str:
        """ "cohort:Blue" -> "cohort:<id of Blue>"; other keys unchanged."""
        kind, _, name = symbolic.partition(":")
        return f"cohort:{self.cohort_ids[name]}" if kind == "cohort" else symbolic

    def expected(self, *symbolic_keys: str) -> list[int]:
        """User ids the groups must reach, from the table, in the required order."""
        wanted = set(symbolic_keys)
        return sorted(self.users[label].pk for label, _, groups in MEMBERS if groups & wanted)

    def resolve(self, *symbolic_keys: str, **kwargs) -> list[int]:
        keys = [self.key(k) for k in symbolic_keys]
        rows = recipient_rows(
            course_id=self.course_id, sender_id=self.sender_id, target_keys=keys, **kwargs
        )
        return [row["pk"] for row in rows]


def build_world() -> World:
    course = make_course(tracks=("audit", "verified"))
    other = make_course(tracks=("audit", "verified"))
    users = {}
    memberships = {name: [] for name in COHORTS}
    other_members = []
    # Created in a scrambled order, so that user-id order is not table order.
    for label, spec, _ in sorted(MEMBERS, key=lambda row: hash(row[0]) % 7):
        users[label] = make_member(label, spec, course, other)
        for name in spec.get("cohorts", []):
            memberships[name].append(users[label])
        if spec.get("cohorts_of_other"):
            other_members.append(users[label])
    cohort_ids = {
        name: make_cohort(
            course, name, members=memberships[name], is_default=name == "Default Group"
        ).pk
        for name in COHORTS
    }
    other_cohort = make_cohort(other, "Blue", members=other_members)
    return World(course.id, other.id, users, cohort_ids, other_cohort.pk)


def make_member(label: str, spec: dict, course, other):
    fields = {"is_active": spec.get("is_active", True)}
    if "last_login" in spec:
        fields["last_login"] = spec["last_login"]
    user = make_user(label, name=f"{label} Ünïcödé", **fields)
    for role in spec.get("roles", []):
        give_role(user, course, role)
    if "mode" in spec:
        enroll(
            user,
            course,
            mode=spec["mode"],
            is_active=spec.get("enrollment_active", True),
            created=spec.get("enrolled"),
        )
    if spec.get("opted_out"):
        opt_out(user, course.id)
    if spec.get("suppressed"):  # the account's address in another case than the suppression's
        user.email = user.email.upper()
        user.save(update_fields=["email"])
        suppress(user.email)
    if spec.get("opted_out_of_other"):
        opt_out(user, other.id)
    if spec.get("other_course"):
        enroll(user, other)
        give_role(user, other, STAFF_ROLE)
    return user


@pytest.fixture
def world() -> World:
    return build_world()


# ---------------------------------------------------------------------------------------------
# Who each group reaches

SINGLE_GROUPS = [
    "myself",
    "staff",
    "learners",
    "track:audit",
    "track:verified",
    "cohort:Default Group",
    "cohort:Blue",
    "cohort:Red",
]
COMBINATIONS = [
    ("myself", "staff"),
    ("staff", "learners"),
    ("learners", "track:verified"),
    ("track:audit", "track:verified"),
    ("cohort:Blue", "cohort:Red"),
    ("learners", "track:audit", "cohort:Blue"),
    ("myself", "track:verified", "cohort:Red"),
    tuple(SINGLE_GROUPS),
]


@pytest.mark.parametrize("group", SINGLE_GROUPS)
def test_each_group_reaches_exactly_its_table_column(world, group):
    assert world.resolve(group) == world.expected(group)


@pytest.mark.parametrize("groups", COMBINATIONS, ids="+".join)
def test_several_groups_reach_each_person_once_in_user_id_order(world, groups):
    resolved = world.resolve(*groups)
    assert resolved == world.expected(*groups)
    assert len(resolved) == len(set(resolved))


def test_the_table_itself_covers_what_the_issue_names(world):
    everyone = world.resolve(*SINGLE_GROUPS)
    never = {"staff_inactive", "staff_opted_out", "moderator", "inactive_account", "opted_out"}
    never |= {"unenrolled", "absent_19_months", "never_logged_in_old", "other_course"}
    assert not {world.users[label].pk for label in never} & set(everyone)
    assert world.users["two_cohorts"].pk in everyone


def test_recipients_carry_email_and_full_name(world):
    rows = list(
        recipient_rows(course_id=world.course_id, sender_id=world.sender_id, target_keys=["myself"])
    )
    assert rows == [
        {"pk": world.sender_id, "email": "sender@example.com", "full_name": "sender Ünïcödé"}
    ]


def test_no_targets_reach_nobody(world):
    assert world.resolve() == []
    assert (
        count_recipients(course_id=world.course_id, sender_id=world.sender_id, target_keys=[]) == 0
    )


# ---------------------------------------------------------------------------------------------
# Eligibility: the last-login rule and where it applies


def test_without_the_last_login_rule_long_absent_learners_are_reached(world):
    no_rule = {**settings.BULK_EMAIL, "LAST_LOGIN_ELIGIBILITY_MONTHS": None}
    with override_settings(BULK_EMAIL=no_rule):
        learners = world.resolve("learners")
        blue = world.resolve("cohort:Blue")
    for label in ("absent_19_months", "never_logged_in_old"):
        assert world.users[label].pk in learners
    assert world.users["absent_19_months"].pk in blue
    assert set(world.expected("learners")) < set(learners)


def test_a_shorter_period_drops_learners_absent_longer(world):
    with override_settings(BULK_EMAIL={**settings.BULK_EMAIL, "LAST_LOGIN_ELIGIBILITY_MONTHS": 12}):
        learners = world.resolve("learners")
    assert world.users["absent_17_months"].pk not in learners
    assert world.users["never_logged_in_recent"].pk in learners


def test_the_rule_is_fixed_by_now_so_a_send_can_resolve_as_of_a_moment(world):
    # Two years from now, the recent never-logged-in learner has become an old one too.
    later = timezone.now() + datetime.timedelta(days=730)
    assert world.users["never_logged_in_recent"].pk not in world.resolve("learners", now=later)


def test_eligibility_cutoff_follows_the_setting():
    now = datetime.datetime(2026, 3, 31, 12, 0, tzinfo=datetime.UTC)
    assert eligibility_cutoff(now=now) == datetime.datetime(2024, 9, 30, 12, 0, tzinfo=datetime.UTC)
    with override_settings(
        BULK_EMAIL={**settings.BULK_EMAIL, "LAST_LOGIN_ELIGIBILITY_MONTHS": None}
    ):
        assert eligibility_cutoff(now=now) is None


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime.datetime(2026, 3, 31), 1, datetime.datetime(2026, 2, 28)),
        (datetime.datetime(2024, 3, 31), 1, datetime.datetime(2024, 2, 29)),
        (datetime.datetime(2026, 1, 15), 18, datetime.datetime(2024, 7, 15)),
        (datetime.datetime(2026, 12, 1), 12, datetime.datetime(2025, 12, 1)),
        (datetime.datetime(2026, 5, 5), 0, datetime.datetime(2026, 5, 5)),
    ],
)
def test_months_before_counts_calendar_months(moment, months, expected):
    assert months_before(moment, months) == expected


def test_myself_reaches_the_sender_even_when_opted_out(world):
    opt_out(world.users["sender"], world.course_id)
    assert world.resolve("myself") == [world.sender_id]
    assert world.resolve("myself", "staff") == world.expected("myself", "staff")
    assert world.sender_id not in world.resolve("staff")


def test_myself_reaches_nobody_when_the_sender_is_gone(world):
    rows = recipient_rows(course_id=world.course_id, sender_id=None, target_keys=["myself"])
    assert list(rows) == []


# ---------------------------------------------------------------------------------------------
# Keyset pages


def all_keys(world) -> list[str]:
    return [world.key(k) for k in SINGLE_GROUPS]


@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 100])
@pytest.mark.parametrize("groups", COMBINATIONS, ids="+".join)
def test_pages_concatenate_to_the_whole_set(world, groups, page_size):
    keys = [world.key(k) for k in groups]
    pages = list(
        recipient_pages(
            course_id=world.course_id,
            sender_id=world.sender_id,
            target_keys=keys,
            page_size=page_size,
        )
    )
    assert [r.user_id for page in pages for r in page] == world.expected(*groups)
    assert all(1 <= len(page) <= page_size for page in pages)
    assert all(len(page) == page_size for page in pages[:-1])


@pytest.mark.parametrize("first_page_size", [None, 1, 3])
@pytest.mark.parametrize("groups", COMBINATIONS, ids="+".join)
def test_id_pages_are_the_same_recipients_one_query_a_page(world, groups, first_page_size):
    keys = [world.key(k) for k in groups]
    pages = recipient_id_pages(
        course_id=world.course_id,
        sender_id=world.sender_id,
        target_keys=keys,
        page_size=4,
        first_page_size=first_page_size,
    )
    with CaptureQueriesContext(connection) as queries:
        pages = list(pages)
    assert [user_id for page in pages for user_id in page] == world.expected(*groups)
    sizes = [first_page_size or 4] + [4] * (len(pages) - 1)
    assert [len(page) for page in pages[:-1]] == sizes[: len(pages) - 1]
    assert len(queries) == len(pages) + 1  # one a page, and one that finds nothing left
    assert "JOIN" not in queries[0]["sql"].upper().split(" FROM ")[1].split(" WHERE ")[0]


def test_a_suppressed_sender_gets_no_test_copy_either(world):
    """An address that bounced for good cannot receive anything (docs/recipients.md)."""
    assert world.resolve("myself") == [world.sender_id]
    suppress(world.users["sender"].email)
    assert world.resolve("myself") == []
    others = [pk for pk in world.expected("staff") if pk != world.sender_id]
    assert world.resolve("myself", "staff") == others


def test_pages_hold_recipients(world):
    first = next(
        recipient_pages(
            course_id=world.course_id, sender_id=world.sender_id, target_keys=["myself"]
        )
    )
    assert first == [Recipient(world.sender_id, "sender@example.com", "sender Ünïcödé")]


def test_after_id_resumes_after_the_last_user_handled(world):
    expected = world.expected(*SINGLE_GROUPS)
    resume_after = expected[6]
    pages = recipient_pages(
        course_id=world.course_id,
        sender_id=world.sender_id,
        target_keys=all_keys(world),
        page_size=4,
        after_id=resume_after,
    )
    assert [r.user_id for page in pages for r in page] == expected[7:]


def test_page_size_defaults_to_emails_per_task(world):
    with override_settings(BULK_EMAIL={**settings.BULK_EMAIL, "EMAILS_PER_TASK": 3}):
        pages = list(
            recipient_pages(
                course_id=world.course_id, sender_id=world.sender_id, target_keys=all_keys(world)
            )
        )
    assert [len(page) for page in pages[:-1]] == [3] * (len(pages) - 1)


@pytest.mark.parametrize("page_size", [2, 4])
def test_each_page_is_one_query(world, page_size):
    expected = world.expected(*SINGLE_GROUPS)
    pages = recipient_pages(
        course_id=world.course_id,
        sender_id=world.sender_id,
        target_keys=all_keys(world),
        page_size=page_size,
    )
    queries_per_page = []
    while True:
        with CaptureQueriesContext(connection) as queries:
            page = next(pages, None)
        queries_per_page.append(len(queries))
        if page is None:
            break
    pages = -(-len(expected) // page_size)
    # One query per page, and one that finds nothing left.
    assert queries_per_page == [1] * pages + [1]


def test_the_page_query_uses_keyset_not_offset(world):
    pages = recipient_pages(
        course_id=world.course_id,
        sender_id=world.sender_id,
        target_keys=all_keys(world),
        page_size=3,
        after_id=world.expected("learners")[2],
    )
    with CaptureQueriesContext(connection) as queries:
        next(pages)
    sql = queries[0]["sql"].upper()
    assert "OFFSET" not in sql and "UNION" in sql and "LIMIT 3" in sql


# ---------------------------------------------------------------------------------------------
# A course whose people are the site's newest users (docs/recipients.md, "The first page")

EARLIER_LEARNERS = 2000


@pytest.fixture
def newest_world() -> World:
    """The world built after a course of 2,000 learners: its people have the highest ids."""
    seed_course(SeedPlan(course_id="course-v1:EarlierX+E1+2026", learners=EARLIER_LEARNERS))
    return build_world()


def test_a_course_of_the_newest_users_pages_as_its_table_says(newest_world):
    """Every group alone and the combinations: the first page (bounded by the course's own
    first enrollment) and the whole walk are what the table says."""
    world = newest_world
    assert min(user.pk for user in world.users.values()) > EARLIER_LEARNERS
    audience = {"course_id": world.course_id, "sender_id": world.sender_id}
    for groups in [(group,) for group in SINGLE_GROUPS] + COMBINATIONS:
        keys, expected = [world.key(k) for k in groups], world.expected(*groups)
        for page_size in (3, 100):
            pages = list(recipient_id_pages(**audience, target_keys=keys, page_size=page_size))
            assert pages[:1] == ([expected[:page_size]] if expected else []), groups
            assert [user_id for page in pages for user_id in page] == expected, groups


def test_a_first_page_of_every_group_together_reads_no_earlier_users():
    """The groups' union is cut to the page before it meets the user table. Uncut, PostgreSQL
    merged it with the table's primary key read from id 1, through every earlier user, even
    once each group started at the course's own first enrollment."""
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL plan: this runs in the PostgreSQL pass")
    seed_course(SeedPlan(course_id="course-v1:EarlierX+E1+2026", learners=EARLIER_LEARNERS))
    newest = "course-v1:NewestX+N1+2026"
    seed_course(SeedPlan(course_id=newest, learners=300, tracks=["audit", "verified"]))
    keys = [group.key for group in available_groups(course_id=newest)]
    with connection.cursor() as cursor:
        # At a few thousand users, reading the whole user table costs PostgreSQL less than a
        # page of index probes; without that choice the plan shows where its index scans
        # start (the test's transaction ends the setting).
        cursor.execute("SET LOCAL enable_seqscan = off")
    pages = recipient_id_pages(course_id=newest, sender_id=None, target_keys=keys, page_size=20)
    (page_query,) = statements_of(lambda: next(pages))
    read = rows_read(executed_plan(*page_query), "auth_user")
    # Each of the 7 groups' own range and a probe per id (about 500), not the 2,000 earlier
    # users (uncut: about 2,500; before the port's first-page bound: about 8,500).
    assert read < EARLIER_LEARNERS, read


# ---------------------------------------------------------------------------------------------
# Counts


def test_count_recipients_counts_each_person_once(world, django_assert_num_queries):
    keys = all_keys(world)
    with django_assert_num_queries(1):
        count = count_recipients(
            course_id=world.course_id, sender_id=world.sender_id, target_keys=keys
        )
    assert count == len(world.expected(*SINGLE_GROUPS))


def test_count_recipients_can_stop_early(world, django_assert_num_queries):
    keys, everyone = all_keys(world), len(world.expected(*SINGLE_GROUPS))
    with django_assert_num_queries(1):
        capped = count_recipients(
            course_id=world.course_id, sender_id=world.sender_id, target_keys=keys, at_most=2
        )
    uncapped = count_recipients(
        course_id=world.course_id, sender_id=world.sender_id, target_keys=keys, at_most=everyone + 5
    )
    assert (capped, uncapped) == (2, everyone)


def test_group_counts_give_each_offered_group_its_reach(world):
    counts = group_counts(course_id=world.course_id, sender_id=world.sender_id)
    assert counts == {world.key(k): len(world.expected(k)) for k in SINGLE_GROUPS}


# ---------------------------------------------------------------------------------------------
# The groups offered, and validation against them


def test_available_groups_of_a_course_with_tracks_and_cohorts(world, django_assert_num_queries):
    with django_assert_num_queries(2):
        groups = available_groups(course_id=world.course_id)
    ids = world.cohort_ids
    assert groups == [
        Group("myself", "Myself"),
        Group("staff", "Staff and Administrators"),
        Group("learners", "All Learners"),
        Group("track:audit", "Learners in the Audit Track"),
        Group("track:verified", "Learners in the Verified Certificate Track"),
        Group(f"cohort:{ids['Default Group']}", "Cohort: Default Group"),
        Group(f"cohort:{ids['Blue']}", "Cohort: Blue"),
        Group(f"cohort:{ids['Red']}", "Cohort: Red"),
    ]


def test_a_single_track_course_offers_no_track_group():
    course = make_course(tracks=("verified",))
    assert [g.key for g in available_groups(course_id=course.id)] == ["myself", "staff", "learners"]


def test_validate_target_keys_returns_them_once_in_display_order(world):
    blue = world.key("cohort:Blue")
    keys = validate_target_keys(
        course_id=world.course_id, keys=[blue, "learners", "myself", "learners"]
    )
    assert keys == ["myself", "learners", blue]


@pytest.mark.parametrize(
    "bad_key",
    [
        "everyone",
        "track",
        "track:",
        "track:masters",
        "cohort:abc",
        "cohort:",
        ":",
        "",
        "learners:x",
    ],
)
def test_validate_target_keys_refuses_unknown_and_malformed_keys(world, bad_key):
    with pytest.raises(InvalidEmailError) as error:
        validate_target_keys(course_id=world.course_id, keys=["learners", bad_key])
    assert error.value.field == "targets"


def test_validate_target_keys_refuses_another_courses_cohort(world):
    with pytest.raises(InvalidEmailError, match="Not a group of this course"):
        validate_target_keys(course_id=world.course_id, keys=[f"cohort:{world.other_cohort_id}"])


def test_validate_target_keys_refuses_the_track_of_a_single_track_course():
    course = make_course(tracks=("audit",))
    with pytest.raises(InvalidEmailError):
        validate_target_keys(course_id=course.id, keys=["track:audit"])


def test_validate_target_keys_refuses_an_empty_choice(world):
    with pytest.raises(InvalidEmailError, match="at least one") as error:
        validate_target_keys(course_id=world.course_id, keys=[])
    assert error.value.field == "targets" and isinstance(error.value, ValueError)


def test_resolution_refuses_malformed_keys_as_an_invalid_email(world):
    for key in ("everyone", "cohort:abc", "track"):
        with pytest.raises(InvalidEmailError):
            recipient_rows(course_id=world.course_id, sender_id=world.sender_id, target_keys=[key])


# ---------------------------------------------------------------------------------------------
# A saved email, and opt-outs that arrive after resolution


def test_a_saved_email_resolves_through_its_audience(world):
    email = make_email(
        world.course_id,
        sender=world.users["sender"],
        targets=["myself", "track:verified", world.key("cohort:Red")],
    )
    audience = email_audience(email=email)
    assert audience["course_id"] == world.course_id and audience["sender_id"] == world.sender_id
    pages = recipient_pages(**audience, page_size=2)
    assert [r.user_id for page in pages for r in page] == world.expected(
        "myself", "track:verified", "cohort:Red"
    )
    assert count_recipients(**audience) == len(
        world.expected("myself", "track:verified", "cohort:Red")
    )


def test_opted_out_ids_spares_the_sender_only_when_myself_is_a_target(world):
    learner, sender = world.users["audit"], world.users["sender"]
    opt_out(learner, world.course_id)
    opt_out(sender, world.course_id)
    user_ids = [learner.pk, sender.pk, world.users["verified"].pk]
    common = {"course_id": world.course_id, "sender_id": sender.pk, "user_ids": user_ids}
    assert opted_out_ids(**common, target_keys=["myself", "learners"]) == {learner.pk}
    assert opted_out_ids(**common, target_keys=["staff"]) == {learner.pk, sender.pk}


def test_a_batch_of_ids_is_one_sql_parameter(world):
    learner = world.users["audit"]
    opt_out(learner, world.course_id)
    user_ids = [learner.pk, *range(10**6, 10**6 + 499)]  # a batch's worth, most unknown
    common = {"course_id": world.course_id, "sender_id": None, "target_keys": ["learners"]}
    parameters = []

    def record(execute, sql, params, many, context):
        parameters.append(len(params or ()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert opted_out_ids(**common, user_ids=user_ids) == {learner.pk}
        assert display_names(user_ids=user_ids) == {learner.pk: learner.lms_profile.name}
    assert len(parameters) == 2 and max(parameters) < 10


def test_combinations_cover_every_pair_of_groups(world):
    # Exhaustive pairs are cheap on a world this size: one more guard against a bad union.
    for pair in itertools.combinations(SINGLE_GROUPS, 2):
        assert world.resolve(*pair) == world.expected(*pair), pair


def test_suppressed_ids_names_the_reason_in_one_query(world, django_assert_num_queries):
    from bulk_email.recipients import suppressed_ids

    user_ids = [user.pk for user in world.users.values()]
    with django_assert_num_queries(1):
        found = suppressed_ids(user_ids=user_ids)
    suppressed = {world.users["suppressed"].pk, world.users["staff_suppressed"].pk}
    assert found == dict.fromkeys(suppressed, "Hard bounce")
