"""Recipient resolution: an email's "Send to" groups -> one ordered, de-duplicated set of people.

Everything happens in the database, because a course may have a million learners: each group
is a user queryset from the LMS port with the rules applied (course team removed, opt-outs
removed, last-login eligibility), the groups are combined with a SQL ``UNION`` (one copy per
person), ordered by user id and read in keyset pages (``id > last_id ORDER BY id LIMIT n``),
one query per page, never OFFSET and never the whole set in memory.

The rules (docs/recipients.md tells why where the issue was silent):

- Myself: the sender only, always, even if the sender opted out (a test send must arrive).
- Staff and Administrators: the course's Staff and Admin roles; opt-outs are honoured.
- All Learners: active enrollments minus the course team minus opted-out.
- Track X: active enrollments in mode X minus the course team minus opted-out.
- Cohort Y: enrolled learners assigned to Y minus opted-out (team members in Y included).
- Every group: activated accounts only, suppressed addresses left out (Myself too: an address
  that bounced for good cannot receive anything). Every *learner* group: the last-login
  eligibility rule of ``eligibility_cutoff``.

The group kinds, the groups a course offers and each group's members are in ``groups.py``, one
registry which the Email tab shows, ``validate_target_keys`` checks against and resolution
reads, so the UI and the resolver cannot disagree.
"""

import calendar
import datetime
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, repeat
from typing import TypedDict

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower, Trim
from django.utils import timezone
from django.utils.translation import gettext, ngettext, ngettext_lazy

from . import app_settings, groups
from .groups import available_groups as available_groups
from .groups import split_key as split_key
from .groups import validate_target_keys as validate_target_keys
from .lms import Recipient, get_lms
from .models import CourseEmail, Optout, Suppression

# ---------------------------------------------------------------------------------------------
# Eligibility


def eligibility_cutoff(*, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """The moment before which a learner counts as gone; None when the rule is turned off.

    The rule (``LAST_LOGIN_ELIGIBILITY_MONTHS``, default 18): a learner is mailed when they
    logged in on or after the cutoff, or, never having logged in, enrolled on or after it.
    Someone who enrolled a week ago and has not visited yet still hears from the course;
    someone who left two years ago stops being mailed. It applies to learner groups only:
    the sender and the course team always get their mail."""
    months = app_settings.get("LAST_LOGIN_ELIGIBILITY_MONTHS")
    if months is None:
        return None
    return months_before(now or timezone.now(), months)


def months_before(moment: datetime.datetime, months: int) -> datetime.datetime:
    """The same day and time ``months`` calendar months earlier (31 March - 1 -> 28/29 Feb)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))


# ---------------------------------------------------------------------------------------------
# One group's members, all rules applied


def id_list(ids: Iterable[int]) -> RawSQL | list[int]:
    """``ids`` as the right side of an ``__in`` filter in one SQL parameter (an array on
    PostgreSQL, a JSON text on SQLite), not one parameter a value: bound one by one, a
    batch's 500 ids cost more client CPU than the query itself (psycopg parses anew every
    statement of over 50 parameters). Other databases get the plain list."""
    ids = [int(user_id) for user_id in ids]
    vendor = connection.vendor
    if vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (ids,))
    if vendor == "sqlite":
        return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(ids),))
    return ids


def _users() -> QuerySet:
    return get_user_model()._default_manager.all()


# ---------------------------------------------------------------------------------------------
# All groups together: one de-duplicated, ordered queryset


class Audience(TypedDict):
    """What resolution needs from an email: ``recipient_pages(**email_audience(email=e))``."""

    course_id: str
    sender_id: int | None
    target_keys: list[str]


def email_audience(*, email: CourseEmail) -> Audience:
    """The course, sender and target keys of a saved email (one query, for the targets)."""
    keys = sorted(target.key for target in email.targets.all())
    return Audience(course_id=email.course_id, sender_id=email.sender_id, target_keys=keys)


def _member_ids(
    *,
    course_id: str,
    sender_id: int | None,
    target_keys: Iterable[str],
    now: datetime.datetime | None,
    after_id: int = 0,
    limit: int | None = None,
    suppressed: bool = False,
) -> QuerySet | None:
    """One ``SELECT id`` per group, combined with UNION (which removes duplicates in SQL).

    With ``limit``, each group is cut to its first ``limit`` ids above ``after_id`` before the
    union: the first ``limit`` ids of the union are among them, and each group reads only a
    page's worth of its index instead of the whole course. That is what keeps a page deep
    into a million learners as cheap as the first one."""
    active_since = eligibility_cutoff(now=now)
    parts = []
    for key in dict.fromkeys(target_keys):
        members = groups.group_members(
            course_id=course_id,
            sender_id=sender_id,
            key=key,
            active_since=active_since,
            after_id=after_id,
            suppressed=suppressed,
        )
        ids = members.values("pk")
        if limit is not None:
            # Wrapped, because SQLite allows no LIMIT inside the parts of a compound SELECT.
            ids = _users().filter(pk__in=ids.order_by("pk")[:limit]).values("pk")
        parts.append(ids)
    if not parts:
        return None
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def _as_recipients(ids: QuerySet | None, *, after_id: int = 0) -> QuerySet:
    """The users with those ids, ordered, as the values a sender needs."""
    return (
        _users_among(ids, after_id=after_id)
        .annotate(full_name=get_lms().full_name_expression())
        .order_by("pk")
        .values("pk", "email", "full_name")
    )


def _ordered_ids(ids: QuerySet | None, *, after_id: int = 0) -> QuerySet:
    return _users_among(ids, after_id=after_id).order_by("pk").values_list("pk", flat=True)


def _users_among(ids: QuerySet | None, *, after_id: int) -> QuerySet:
    """``pk__gt`` repeats the groups' own bound so that PostgreSQL reads the user table from
    the page's start instead of merging with it from the first row."""
    return _users().none() if ids is None else _users().filter(pk__gt=after_id, pk__in=ids)


def recipient_pages(
    *,
    course_id: str,
    sender_id: int | None,
    target_keys: Iterable[str],
    page_size: int | None = None,
    after_id: int = 0,
    now: datetime.datetime | None = None,
) -> Iterator[list[Recipient]]:
    """Lists of up to ``page_size`` (default ``EMAILS_PER_TASK``) recipients, by user id.

    One query per page (keyset: ids above the last one seen, never OFFSET), so memory stays a
    page whatever the course size; one more, empty, query says the walk is over. (Stopping at
    a short page would save it, but would trust every LMS backend never to return a
    duplicate, since a duplicate makes a page short before the end.)

    ``after_id`` resumes after the last user id already handled, as a re-run fan-out does.
    The eligibility cutoff is fixed once for the whole walk."""
    size = page_size or app_settings.get("EMAILS_PER_TASK")
    audience = {"course_id": course_id, "sender_id": sender_id, "target_keys": target_keys}
    yield from _keyset_walk(**audience, now=now, after_id=after_id, sizes=repeat(size),
                            read=_recipient_page, last_id=lambda r: r.user_id)  # fmt: skip


def _recipient_page(ids: QuerySet | None, after_id: int, limit: int) -> list[Recipient]:
    return [_recipient(row) for row in _as_recipients(ids, after_id=after_id)[:limit]]


def _id_page(ids: QuerySet | None, after_id: int, limit: int) -> list[int]:
    return list(_ordered_ids(ids, after_id=after_id)[:limit])


def recipient_id_pages(
    *,
    course_id: str,
    sender_id: int | None,
    target_keys: Iterable[str],
    page_size: int,
    first_page_size: int | None = None,
    after_id: int = 0,
    now: datetime.datetime | None = None,
) -> Iterator[list[int]]:
    """The user ids of ``recipient_pages``, alone: what fan-out writes into batches. Without
    the profile join, the addresses and a Python object per row, a page of 500 costs two
    thirds as much and a page of 5,000 a quarter as much per id, so fan-out takes pages of
    many batches (``first_page_size`` lets its first page be small: a first message at once)."""
    audience = {"course_id": course_id, "sender_id": sender_id, "target_keys": target_keys}
    sizes = chain([first_page_size or page_size], repeat(page_size))
    yield from _keyset_walk(**audience, now=now, after_id=after_id, sizes=sizes, read=_id_page,
                            last_id=lambda user_id: user_id)  # fmt: skip


def _keyset_walk(*, course_id, sender_id, target_keys, now, after_id, sizes, read, last_id):
    """The pages of a keyset walk: for each size, the groups' ids above ``after_id`` cut to
    it, read into a page by ``read``; ends at the first empty page. The eligibility cutoff
    is fixed once for the whole walk."""
    now, keys = now or timezone.now(), list(target_keys)
    for size in sizes:
        ids = _member_ids(course_id=course_id, sender_id=sender_id, target_keys=keys, now=now,
                          after_id=after_id, limit=size)  # fmt: skip
        page = read(ids, after_id, size)
        if not page:
            return
        yield page
        after_id = last_id(page[-1])


def _recipient(row: dict) -> Recipient:
    return Recipient(user_id=row["pk"], email=row["email"], full_name=row["full_name"] or "")


def person(*, user_id: int) -> Recipient:
    """One user as a recipient (address and LMS full name), whatever their groups: the
    sample recipient of a preview."""
    row = _as_recipients(_users().filter(pk=user_id).values("pk")).get()
    return _recipient(row)


def display_names(*, user_ids: Iterable[int]) -> dict[int, str]:
    """Each user's LMS full name, or username when they have none (one query)."""
    users = (
        _users()
        .filter(pk__in=id_list(user_ids))
        .annotate(full_name=get_lms().full_name_expression())
        .values_list("pk", "full_name", get_user_model().USERNAME_FIELD)
    )
    return {pk: full_name or username for pk, full_name, username in users}


def count_recipients(
    *,
    course_id: str,
    sender_id: int | None,
    target_keys: Iterable[str],
    now: datetime.datetime | None = None,
    at_most: int | None = None,
) -> int:
    """How many people the groups reach together, each once (one query): the confirmation's
    "This will send to 12,345 people". With ``at_most``, counting stops there: a cheap answer
    to "is this a large send?" on a course of a million."""
    ids = _member_ids(course_id=course_id, sender_id=sender_id, target_keys=target_keys, now=now)
    if ids is None:
        return 0
    return ids[:at_most].count() if at_most is not None else ids.count()


def count_suppressed(
    *,
    course_id: str,
    sender_id: int | None,
    target_keys: Iterable[str],
    now: datetime.datetime | None = None,
) -> int:
    """How many people the groups would reach but for their suppressed address, each once
    (one query): a send's "skipped: suppressed"."""
    ids = _member_ids(
        course_id=course_id, sender_id=sender_id, target_keys=target_keys, now=now, suppressed=True
    )
    return 0 if ids is None else ids.count()


def group_counts(
    *, course_id: str, sender_id: int | None, now: datetime.datetime | None = None
) -> dict[str, int]:
    """How many people each offered group reaches on its own, by group key (one count each)."""
    active_since = eligibility_cutoff(now=now)
    return {
        group.key: groups.group_members(
            course_id=course_id, sender_id=sender_id, key=group.key, active_since=active_since
        ).count()
        for group in groups.available_groups(course_id=course_id)
    }


# ---------------------------------------------------------------------------------------------
# Every group's reach and any union's, from one scan: the audience histogram


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
    apart = _people_apart(facts, course_id=course_id, keys=keys, by_facts=by_facts, now=now)
    if apart is None:
        return _histogram_by_members(course_id=course_id, keys=keys, now=now)
    combos = _facts_combos(facts.people, course_id, by_facts, now)
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


# People counted person by person (the course team, anyone in several cohorts): past this,
# the histogram is counted from every group's members instead.
PEOPLE_APART_LIMIT = 1000


def _people_apart(facts, *, course_id, keys, by_facts, now) -> list[int] | None:
    """The ids of the people the facts cannot place; None when there are too many."""
    others = set(keys) - set(by_facts)
    members = _member_ids(course_id=course_id, sender_id=None, target_keys=others, now=now)
    found = set(facts.repeated.values_list("pk", flat=True)[: PEOPLE_APART_LIMIT + 1])
    if members is not None:
        found |= set(_ordered_ids(members)[: PEOPLE_APART_LIMIT + 1])
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
    suppressed = _users().filter(Exists(Suppression.objects.filter(
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
    with _no_jit(work_mem="64MB"), connection.cursor() as cursor:
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


# ---------------------------------------------------------------------------------------------
# Who a group leaves out, and why


@dataclass(frozen=True)
class Breakdown:
    """A group's people: how many receive the email and how many each rule leaves out. Each
    person is counted once, under the first rule that leaves them out, in this order."""

    receive: int
    not_activated: int
    not_logged_in: int
    opted_out: int
    suppressed: int

    @property
    def left_out(self) -> int:
        return self.not_activated + self.not_logged_in + self.opted_out + self.suppressed

    def reasons(self) -> list[str]:
        """The rules that left someone out, worded for a person: ["2 opted out", ...]."""
        months = app_settings.get("LAST_LOGIN_ELIGIBILITY_MONTHS")
        return [
            words % {"n": number, "count": f"{number:,}", "months": months}
            for number, words in zip(self._left_out_by_rule(), LEFT_OUT_WORDS, strict=True)
            if number
        ]

    def _left_out_by_rule(self) -> list[int]:
        return [self.not_logged_in, self.opted_out, self.not_activated, self.suppressed]

    def summary(self) -> str:
        """A sentence for staff: "42 will receive it: 3 left out — 2 opted out, …"."""
        receive = ngettext("%(n)s will receive it", "%(n)s will receive it", self.receive) % {
            "n": f"{self.receive:,}"
        }
        if not self.left_out:
            return gettext("%(receive)s; nobody is left out.") % {"receive": receive}
        return ngettext(
            "%(receive)s: %(left_out)s left out — %(reasons)s.",
            "%(receive)s: %(left_out)s left out — %(reasons)s.",
            self.left_out,
        ) % {
            "receive": receive,
            "left_out": f"{self.left_out:,}",
            "reasons": ", ".join(self.reasons()),
        }


# In the order of ``Breakdown._left_out_by_rule``; "n" picks the plural form.
LEFT_OUT_WORDS = [
    ngettext_lazy(
        "%(count)s has not logged in for %(months)s months",
        "%(count)s have not logged in for %(months)s months",
        "n",
    ),
    ngettext_lazy("%(count)s opted out", "%(count)s opted out", "n"),
    ngettext_lazy(
        "%(count)s has not activated their account",
        "%(count)s have not activated their accounts",
        "n",
    ),
    ngettext_lazy(
        "%(count)s has an address that bounced or complained",
        "%(count)s have addresses that bounced or complained",
        "n",
    ),
]


def group_breakdown(
    *, course_id: str, sender_id: int | None, key: str, now: datetime.datetime | None = None
) -> Breakdown:
    """Who one group reaches and who it leaves out, by rule: one query, conditional counts
    over everyone the group is about (``GroupKind.everyone``). ``receive`` is the group's
    count on the Email tab (``group_counts``): the same rules, counted the other way."""
    everyone, members, opt_out_applies = groups.breakdown_parts(
        course_id=course_id, sender_id=sender_id, key=key, active_since=eligibility_cutoff(now=now)
    )
    opted_out = Q(groups.opted_out(course_id)) if opt_out_applies else Q(pk__in=[])
    # Each person's first reason, in one CASE: each test runs once a row, and only on the
    # rows the tests before it kept (the opt-out and suppression probes on members only).
    reason = Case(
        When(is_active=False, then=Value("not_activated")),
        # A correlated EXISTS, not ``pk IN (members)``: past work_mem (a million members),
        # PostgreSQL cannot hash the IN list and rescans it for every row (14 minutes at 1M
        # learners); the EXISTS is one index probe a row whatever the size.
        When(~Exists(members.filter(pk=OuterRef("pk"))), then=Value("not_logged_in")),
        When(opted_out, then=Value("opted_out")),
        When(Q(groups.suppressed()), then=Value("suppressed")),
        default=Value("receive"),
    )
    rows = everyone.annotate(reason=reason).values("reason").annotate(n=Count("pk")).order_by()
    counts = dict.fromkeys(Breakdown.__dataclass_fields__, 0)
    with _no_jit():
        counts.update({row["reason"]: row["n"] for row in rows})
    return Breakdown(**counts)


@contextmanager
def _no_jit(*, work_mem: str | None = None):
    """PostgreSQL's JIT off for this one query (``SET LOCAL``, inside its own transaction),
    and its ``work_mem`` when given.

    Measured on 100,000 learners: the breakdown's plan costs above ``jit_above_cost``, and
    compiling its CASE and subplans took 0.8 s of a 1.2 s query (docs/recipients.md)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        if work_mem:
            cursor.execute("SET LOCAL work_mem = %s", [work_mem])
        yield


def group_breakdowns(
    *, course_id: str, sender_id: int | None, now: datetime.datetime | None = None
) -> dict[str, Breakdown]:
    """``group_breakdown`` of each offered group, by key (one query each)."""
    now = now or timezone.now()
    return {
        group.key: group_breakdown(course_id=course_id, sender_id=sender_id, key=group.key, now=now)
        for group in groups.available_groups(course_id=course_id)
    }


def opted_out_ids(
    *, course_id: str, sender_id: int | None, target_keys: Iterable[str], user_ids: Iterable[int]
) -> set[int]:
    """Which of ``user_ids`` opted out of the course by now (one query), so a batch resolved
    earlier can drop them before sending. Members of a group whose kind ignores opt-outs
    (Myself: the sender) are spared, as in resolution (one more query, only then)."""
    user_ids = list(user_ids)
    opted_out = set(
        Optout.objects.filter(course_id=course_id, user_id__in=id_list(user_ids)).values_list(
            "user_id", flat=True
        )
    )
    exempt = [key for key in target_keys if not groups.kind_of(key).opt_out_applies]
    if opted_out and exempt:
        audience = {"course_id": course_id, "sender_id": sender_id, "target_keys": exempt}
        spared = _member_ids(**audience, now=None)
        opted_out -= set(_users().filter(pk__in=spared).filter(pk__in=id_list(opted_out))
                         .values_list("pk", flat=True))  # fmt: skip
    return opted_out


def suppressed_ids(*, user_ids: Iterable[int]) -> dict[int, str]:
    """Which of ``user_ids`` have an address suppressed by now, with the reason's label (one
    query), so a batch resolved earlier can drop them before sending. Their addresses as
    they are now: a learner who changed a bounced address is mailed again."""
    labels = dict(Suppression.REASON_CHOICES)
    users = groups.with_suppression_reason(_users().filter(pk__in=id_list(user_ids)))
    rows = users.filter(suppression__isnull=False).values_list("pk", "suppression")
    return {pk: labels.get(reason, reason) for pk, reason in rows}
