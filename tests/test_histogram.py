"""``histogram.audience_histogram``: every group's count and any union's total from one
histogram, exactly what the groups' own queries reach, on the world of test_recipients.py
(every row and column of the recipient rules), with and without the LMS's enrollment facts."""

import itertools
import threading

import pytest
from django.db import connection

from bulk_email import histogram as histogram_module
from bulk_email.histogram import audience_histogram, sender_histogram
from bulk_email.recipients import count_recipients, group_counts
from lms_stub.bulk_email_backend import StubLMSBackend
from lms_stub.models import Course, CourseAccessRole
from tests.factories import give_role, make_user
from tests.test_recipients import SINGLE_GROUPS, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["facts", "members"])
def world(request, monkeypatch):
    """The world, counted from the LMS's enrollment facts or, as for an LMS that gives none,
    from every group's members."""
    if request.param == "members":
        monkeypatch.setattr(StubLMSBackend, "enrollment_facts", lambda self, course_id: None)
    return build_world()


def histogram_of(world):
    counted = audience_histogram(course_id=world.course_id)
    return sender_histogram(counted, course_id=world.course_id, sender_id=world.sender_id)


def test_each_group_count_is_what_its_query_reaches(world):
    expected = group_counts(course_id=world.course_id, sender_id=world.sender_id)
    assert histogram_of(world).counts() == expected
    assert expected[world.key("cohort:Blue")] == len(world.expected("cohort:Blue"))


@pytest.mark.parametrize("size", [2, 3, len(SINGLE_GROUPS)])
def test_every_union_counts_each_person_once(world, size):
    histogram = histogram_of(world)
    for chosen in itertools.combinations(SINGLE_GROUPS, size):
        keys = [world.key(k) for k in chosen]
        reached = count_recipients(
            course_id=world.course_id, sender_id=world.sender_id, target_keys=keys
        )
        assert histogram.total(keys) == reached == len(world.expected(*chosen)), chosen


def test_without_a_sender_nobody_is_myself(world):
    counted = audience_histogram(course_id=world.course_id)
    assert counted.total(["myself"]) == 0
    assert counted.total(["staff"]) == len(world.expected("staff"))


def test_a_large_course_team_is_counted_from_the_members_too(world, monkeypatch):
    """Past PEOPLE_APART_LIMIT people the facts cannot place, the members' query counts."""
    monkeypatch.setattr("bulk_email.histogram.PEOPLE_APART_LIMIT", 1)
    give_role(make_user(), Course.objects.get(pk=world.course_id), CourseAccessRole.STAFF)
    expected = group_counts(course_id=world.course_id, sender_id=world.sender_id)
    assert histogram_of(world).counts() == expected


def test_the_facts_query_is_one_pass(world, django_assert_max_num_queries):
    """Groups, cohorts, facts, the people apart and their groups: a handful of queries
    (and PostgreSQL's SET LOCALs and savepoints), whatever the number of groups or learners."""
    with django_assert_max_num_queries(20):
        audience_histogram(course_id=world.course_id)


# --- The people apart, found on a second connection beside the pass -------------------------


def record_threads(monkeypatch, *, error: Exception | None = None) -> list[int]:
    """The threads ``_people_apart`` runs on, as they call it (raising ``error`` if given)."""
    threads, people_apart = [], histogram_module._people_apart

    def recorded(*args, **kwargs):
        threads.append(threading.get_ident())
        if error is not None:
            raise error
        return people_apart(*args, **kwargs)

    monkeypatch.setattr(histogram_module, "_people_apart", recorded)
    return threads


@pytest.mark.django_db(transaction=True)
def test_the_people_apart_are_found_beside_the_pass_on_postgresql(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("a second connection beside the pass is PostgreSQL's: the PostgreSQL pass")
    world = build_world()
    threads = record_threads(monkeypatch)
    expected = group_counts(course_id=world.course_id, sender_id=world.sender_id)
    assert histogram_of(world).counts() == expected
    assert threads and threads[0] != threading.get_ident()


@pytest.mark.django_db(transaction=True)
def test_an_error_beside_the_pass_reaches_the_caller(monkeypatch):
    world = build_world()
    record_threads(monkeypatch, error=RuntimeError("the database went away"))
    with pytest.raises(RuntimeError, match="went away"):
        audience_histogram(course_id=world.course_id)


def test_inside_a_transaction_the_people_apart_are_found_on_its_connection(monkeypatch):
    """Another connection would not see what the transaction has not committed."""
    world = build_world()
    threads = record_threads(monkeypatch)
    assert histogram_of(world).counts() == group_counts(
        course_id=world.course_id, sender_id=world.sender_id
    )
    assert threads == [threading.get_ident()]
