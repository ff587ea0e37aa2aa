"""Who each group leaves out, and why: ``breakdown.group_breakdown`` on a course built with
factories, checked against the group counts the Email tab shows, in one query a group."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.translation import override

from bulk_email.breakdown import Breakdown, group_breakdown, group_breakdowns
from bulk_email.recipients import group_counts
from lms_stub.models import CourseAccessRole
from tests.factories import (
    enroll,
    give_role,
    make_cohort,
    make_course,
    make_user,
    opt_out,
    suppress,
)

pytestmark = pytest.mark.django_db


def ago(days: int) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)


@pytest.fixture
def course():
    """Two tracks; 5 learners who receive, and one of each way to be left out, in audit;
    a cohort "Blue" with one receiving learner and the one who opted out."""
    course = make_course(tracks=("audit", "verified"))
    sender = make_user("prof")
    give_role(sender, course, CourseAccessRole.INSTRUCTOR)
    receiving = [make_user() for _ in range(4)]
    for learner in receiving:
        enroll(learner, course)
    verified = make_user()
    enroll(verified, course, mode="verified")
    gone = [make_user(last_login=ago(600)) for _ in range(2)]
    never_old = make_user(last_login=None)
    for learner in gone:
        enroll(learner, course)
    enroll(never_old, course, created=ago(700))
    quitter = make_user()
    enroll(quitter, course)
    opt_out(quitter, course.id)
    not_activated = make_user(is_active=False)
    enroll(not_activated, course)
    bounced = make_user(email="Bounced@Example.com")
    enroll(bounced, course)
    suppress("bounced@example.com")
    unenrolled = make_user()
    enroll(unenrolled, course, is_active=False)
    blue = make_cohort(course, "Blue", members=[receiving[0], quitter, unenrolled])
    return course, sender, blue


def breakdown(course, sender, key) -> Breakdown:
    return group_breakdown(course_id=course.id, sender_id=sender.pk, key=key)


def test_all_learners_are_counted_once_each_under_the_first_rule_that_leaves_them_out(course):
    course, sender, _ = course
    assert breakdown(course, sender, "learners") == Breakdown(
        receive=5, not_logged_in=3, opted_out=1, not_activated=1, suppressed=1
    )


def test_tracks_cohorts_staff_and_myself_have_their_own_breakdowns(course):
    course, sender, blue = course
    assert breakdown(course, sender, "track:verified") == Breakdown(1, 0, 0, 0, 0)
    assert breakdown(course, sender, "track:audit") == Breakdown(
        receive=4, not_logged_in=3, opted_out=1, not_activated=1, suppressed=1
    )
    # The unenrolled member of Blue is not in the group at all: not "left out".
    assert breakdown(course, sender, f"cohort:{blue.pk}") == Breakdown(1, 0, 0, 1, 0)
    assert breakdown(course, sender, "staff") == Breakdown(1, 0, 0, 0, 0)
    assert breakdown(course, sender, "myself") == Breakdown(1, 0, 0, 0, 0)


def test_myself_counts_the_sender_who_opted_out_and_leaves_out_a_suppressed_one(course):
    course, sender, _ = course
    opt_out(sender, course.id)
    assert breakdown(course, sender, "myself") == Breakdown(1, 0, 0, 0, 0)
    assert breakdown(course, sender, "staff") == Breakdown(0, 0, 0, 1, 0)
    suppress(sender.email)
    assert breakdown(course, sender, "myself") == Breakdown(0, 0, 0, 0, 1)


def test_staff_who_have_not_activated_are_left_out_for_it(course):
    course, sender, _ = course
    give_role(make_user(is_active=False), course, CourseAccessRole.STAFF)
    assert breakdown(course, sender, "staff") == Breakdown(
        receive=1, not_activated=1, not_logged_in=0, opted_out=0, suppressed=0
    )


def test_what_each_group_receives_is_its_count_on_the_email_tab(course):
    course, sender, _ = course
    counts = group_counts(course_id=course.id, sender_id=sender.pk)
    breakdowns = group_breakdowns(course_id=course.id, sender_id=sender.pk)
    assert {key: b.receive for key, b in breakdowns.items()} == counts


def test_one_query_a_group(course):
    course, sender, _ = course
    with CaptureQueriesContext(connection) as queries:
        breakdown(course, sender, "learners")
    # On PostgreSQL, also a SAVEPOINT and "SET LOCAL jit = off" around it (see recipients.no_jit).
    selects = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    assert len(selects) == 1 and "CASE WHEN" in selects[0]


def test_the_rule_turned_off_leaves_nobody_out_for_not_logging_in(course, settings):
    course, sender, _ = course
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "LAST_LOGIN_ELIGIBILITY_MONTHS": None}
    assert breakdown(course, sender, "learners") == Breakdown(
        receive=8, not_logged_in=0, opted_out=1, not_activated=1, suppressed=1
    )


def test_the_summary_is_worded_for_a_person():
    with override("en"):
        assert Breakdown(42, 1, 0, 2, 0).summary() == (
            "42 will receive it: 3 left out — 2 opted out, 1 has not activated their account."
        )
        assert Breakdown(1_234, 0, 2_000, 0, 3).summary() == (
            "1,234 will receive it: 2,003 left out — 2,000 have not logged in for 18 months,"
            " 3 have addresses that bounced or complained."
        )
        assert Breakdown(1, 0, 0, 0, 0).summary() == "1 will receive it; nobody is left out."
