"""Every group's reach and any union's, from one pass: the audience histogram.

The Email tab's counts and the confirm dialog's de-duplicated total (a worker counts it,
api/audience.py caches it). One row per combination of the offered groups a person is in,
with the number of such people; every count is a sum over it (docs/performance.md)."""

import datetime
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Lower, Trim
from django.utils import timezone

from . import groups
from .groups import split_key
from .lms import get_lms
from .models import Optout, Suppression
from .recipients import all_users, eligibility_cutoff, id_list, member_ids, no_jit, ordered_ids


@dataclass(frozen=True)
class AudienceHistogram:
    """How many people are in exactly each combination of the offered groups: ``combos`` maps
    a frozenset of group keys to a number of people. Any group's count and any union's
    de-duplicated total are sums over it, exact, without another query: "Cohort A or the
    verified track" is everyone whose combination meets {cohort:A, track:verified}.

    Counted without a sender (nobody is Myself); ``sender_histogram`` puts the sender back."""

    keys: tuple[str, ...]
    combos: dict[frozenset, int]

    def total(self, target_keys: Iterable[str]) -> int:
        """How many people the groups reach together, each once."""
        chosen = set(target_keys)
        return sum(n for combo, n in self.combos.items() if combo & chosen)

    def counts(self) -> dict[str, int]:
        """How many people each group reaches on its own, by key."""
        return {key: self.total([key]) for key in self.keys}

    def moved(self, *, counted_as: frozenset, own: frozenset) -> "AudienceHistogram":
        """The histogram with one person moved from the combination they were counted in
        (``counted_as``; empty: not counted) to their own (``own``; empty: none)."""
        combos = dict(self.combos)
        for combo, change in ((counted_as, -1), (own, +1)):
            if combo:
                combos[combo] = combos.get(combo, 0) + change
        return AudienceHistogram(keys=self.keys, combos={c: n for c, n in combos.items() if n})


def audience_histogram(
    *, course_id: str, now: datetime.datetime | None = None
) -> AudienceHistogram:
    """The histogram of the course's offered groups, all rules applied, without a sender.

    With the LMS's enrollment facts (``LMSBackend.enrollment_facts``), one pass: the course's
    enrollments grouped by what decides their groups (track, cohort, activation, last login,
    team, opt-out, suppression), a hundred rows for a million learners, each row's groups
    read from the kinds' ``reaches``. The few people the facts cannot place (the course
    team, whose group has no ``reaches``; anyone in several cohorts) are then taken out and
    put back in their exact combination, found from the groups' own queries. Without facts,
    or with many such people, one query over every group's member ids (``UNION ALL``),
    exact too but a pass per group (docs/performance.md)."""
    now = now or timezone.now()
    keys = tuple(group.key for group in groups.available_groups(course_id=course_id))
    facts = get_lms().enrollment_facts(course_id)
    by_facts = tuple(key for key in keys if groups.kind_of(key).reaches)
    if facts is None or not by_facts:
        return _histogram_by_members(course_id=course_id, keys=keys, now=now)
    audience = {"course_id": course_id, "keys": keys, "by_facts": by_facts, "now": now}
    with _beside(lambda: _people_apart(facts, **audience)) as people_apart:
        combos = _facts_combos(facts.people, course_id, by_facts, now)
    apart = people_apart()
    if apart is None:
        return _histogram_by_members(course_id=course_id, keys=keys, now=now)
    if apart:
        placed = _facts_combos(facts.people.filter(pk__in=id_list(apart)), course_id, by_facts, now)
        for combo, people in placed.items():
            combos[combo] -= people
        own = _groups_of_users(
            course_id=course_id, sender_id=None, keys=keys, user_ids=apart, now=now
        )
        for combo in own.values():
            combos[combo] = combos.get(combo, 0) + 1
    return AudienceHistogram(
        keys=keys, combos={combo: n for combo, n in combos.items() if n and combo}
    )


@contextmanager
def _beside(query: Callable[[], Any]) -> Iterator[Callable[[], Any]]:
    """Run ``query`` on a second database connection while the block runs its own; yields
    the function that returns its result (raising its error) once the block is done. (The
    block's work is wasted when the result says to count another way; that way takes a
    pass per group anyway.)

    The people apart (0.2 s on a million learners) are found while the histogram's pass
    (1.2 s) runs, rather than after it. On PostgreSQL outside a transaction only: another
    connection sees only what is committed, and SQLite serialises its connections anyway."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield query
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_on_own_connection, query)
        yield future.result


def _on_own_connection(query: Callable[[], Any]) -> Any:
    try:
        return query()
    finally:
        connections.close_all()  # this thread's connections, never the caller's


# People counted person by person (the course team, anyone in several cohorts): past this,
# the histogram is counted from every group's members instead.
PEOPLE_APART_LIMIT = 1000


def _people_apart(facts, *, course_id, keys, by_facts, now) -> list[int] | None:
    """The ids of the people the facts cannot place; None when there are too many."""
    others = set(keys) - set(by_facts)
    members = member_ids(course_id=course_id, sender_id=None, target_keys=others, now=now)
    found = set(facts.repeated.values_list("pk", flat=True)[: PEOPLE_APART_LIMIT + 1])
    if members is not None:
        found |= set(ordered_ids(members)[: PEOPLE_APART_LIMIT + 1])
    return None if len(found) > PEOPLE_APART_LIMIT else sorted(found)


def _facts_combos(facts: QuerySet, course_id: str, keys: tuple, now) -> dict[frozenset, int]:
    combos: dict[frozenset, int] = {}
    for *values, people in _fact_rows(facts, course_id=course_id, now=now):
        found = groups.Facts(*values[:2], *map(bool, values[2:]))
        combo = frozenset(
            key for key in keys if groups.kind_of(key).reaches(found, split_key(key)[1])
        )
        combos[combo] = combos.get(combo, 0) + people
    return combos


def _fact_rows(facts: QuerySet, *, course_id: str, now) -> list[tuple]:
    """The enrollment facts grouped by everything that decides a group (``groups.Facts``,
    in its order), with the count of people of each: one scan of the course's enrollments.

    The course team, opt-outs and suppressions are LEFT JOINs, not the ``EXISTS`` the
    member queries use: PostgreSQL evaluates an ``EXISTS`` of a select list above its
    parallel workers, so that a million rows came back to one process to be sorted (4.5 s);
    joined, each worker hashes its share and only the hundred groups come back (the plan in
    docs/performance.md)."""
    cutoff = eligibility_cutoff(now=now)
    eligible = (
        Q(last_login__gte=cutoff) | Q(last_login__isnull=True, enrolled__gte=cutoff)
        if cutoff is not None
        else Q(pk__isnull=False)
    )
    people = facts.values(
        "track", "cohort", "is_active", member=F("pk"),
        eligible=ExpressionWrapper(eligible, output_field=BooleanField()),
    )  # fmt: skip
    team = get_lms().course_staff(course_id).values(member=F("pk"))
    # The users whose address is suppressed, found from the suppressions (a few thousand)
    # rather than by normalising a million addresses to look each up (0.6 s of 2.9 s); with
    # an index on the user table's LOWER(TRIM(email)), a probe each (docs/performance.md).
    suppressed = all_users().filter(Exists(Suppression.objects.filter(
        address=Lower(Trim(OuterRef(get_user_model().get_email_field_name())))
    ))).values(member=F("pk"))  # fmt: skip
    people_sql, people_params = people.query.sql_with_params()
    team_sql, team_params = team.query.sql_with_params()
    suppressed_sql, suppressed_params = suppressed.query.sql_with_params()
    optouts = connection.ops.quote_name(Optout._meta.db_table)
    sql = (
        "SELECT people.track, people.cohort, people.is_active, people.eligible,"
        " team.member IS NOT NULL, optout.user_id IS NOT NULL, suppressed.member IS NOT NULL,"
        f" COUNT(*) FROM ({people_sql}) AS people"
        f" LEFT JOIN ({team_sql}) AS team ON team.member = people.member"
        f" LEFT JOIN {optouts} AS optout"
        " ON optout.user_id = people.member AND optout.course_id = %s"
        f" LEFT JOIN ({suppressed_sql}) AS suppressed ON suppressed.member = people.member"
        " GROUP BY 1, 2, 3, 4, 5, 6, 7"
    )
    # Each worker hashes its share of a million enrollments: 4 MB (the default) made it
    # spill to disk in 8 batches; 64 MB is the memory of this one query, per worker, briefly.
    with no_jit(work_mem="64MB"), connection.cursor() as cursor:
        cursor.execute(sql, (*people_params, *team_params, course_id, *suppressed_params))
        return cursor.fetchall()


def _histogram_by_members(*, course_id: str, keys: tuple, now) -> AudienceHistogram:
    """The histogram from every group's member ids (one query, a pass over each group)."""
    tagged = _tagged_member_ids(course_id=course_id, sender_id=None, keys=keys, now=now)
    if tagged is None:
        return AudienceHistogram(keys=keys, combos={})
    sql, params = tagged.query.sql_with_params()
    combos = {}
    with connection.cursor() as cursor:
        cursor.execute(_HISTOGRAM_SQL[connection.vendor == "postgresql"] % sql, params)
        for numbers, people in cursor.fetchall():
            # "0,3" and "3,0" are one combination: the aggregate keeps no order.
            combo = frozenset(keys[int(n)] for n in str(numbers).split(","))
            combos[combo] = combos.get(combo, 0) + people
    return AudienceHistogram(keys=keys, combos=combos)


# Per person, the list of their groups' numbers as text ("0,3,7"): a set of any size (a
# course may offer more cohorts than a 64-bit mask has bits), and few distinct values.
_HISTOGRAM_SQL = {
    True: "SELECT groups, COUNT(*) FROM (SELECT string_agg(number::text, ',') AS groups"
    " FROM (%s) AS tagged GROUP BY member) AS people GROUP BY groups",
    False: "SELECT groups, COUNT(*) FROM (SELECT group_concat(number, ',') AS groups FROM"
    " (%s) AS tagged GROUP BY member) GROUP BY groups",
}


def _tagged_member_ids(*, course_id, sender_id, keys, now, user_ids=None) -> QuerySet | None:
    """(member, number) rows: each group's member ids, tagged with the group's position in
    ``keys``, all groups together (``UNION ALL``; a person in three groups is three rows)."""
    active_since = eligibility_cutoff(now=now)
    parts = []
    for number, key in enumerate(keys):
        members = groups.group_members(
            course_id=course_id, sender_id=sender_id, key=key, active_since=active_since
        )
        if user_ids is not None:
            members = members.filter(pk__in=id_list(user_ids))
        parts.append(
            members.annotate(member=F("pk"), number=Value(number)).values("member", "number")
        )
    if not parts:
        return None
    return parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]


def _groups_of_users(*, course_id, sender_id, keys, user_ids, now) -> dict[int, frozenset]:
    tagged = _tagged_member_ids(
        course_id=course_id, sender_id=sender_id, keys=keys, now=now, user_ids=user_ids
    )
    found: dict[int, set] = {}
    for row in tagged if tagged is not None else []:
        found.setdefault(row["member"], set()).add(keys[row["number"]])
    return {user_id: frozenset(keys) for user_id, keys in found.items()}


def sender_place(
    *, course_id: str, sender_id: int, keys: Iterable[str], now: datetime.datetime | None = None
) -> tuple[frozenset, frozenset]:
    """Where the sender was counted in a histogram without a sender, and where they belong
    (Myself included): what ``AudienceHistogram.moved`` takes. Two queries of index probes."""
    keys = tuple(keys)
    audience = {"course_id": course_id, "keys": keys, "user_ids": [sender_id], "now": now}
    counted = _groups_of_users(sender_id=None, **audience).get(sender_id, frozenset())
    own = _groups_of_users(sender_id=sender_id, **audience).get(sender_id, frozenset())
    return counted, own


def sender_histogram(
    histogram: AudienceHistogram, *, course_id: str, sender_id: int | None, now=None
) -> AudienceHistogram:
    """``histogram`` (counted without a sender) with the sender in their own combination."""
    if sender_id is None:
        return histogram
    counted, own = sender_place(
        course_id=course_id, sender_id=sender_id, keys=histogram.keys, now=now
    )
    return histogram.moved(counted_as=counted, own=own)
