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
from itertools import chain, repeat
from typing import TypedDict

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    QuerySet,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

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


def all_users() -> QuerySet:
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


def member_ids(
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
            ids = all_users().filter(pk__in=ids.order_by("pk")[:limit]).values("pk")
        parts.append(ids)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    union = parts[0].union(*parts[1:])
    # Cut to the page before it meets the user table: the page query then looks up at most
    # ``limit`` users by id. Uncut, PostgreSQL merged the union with the user table's
    # primary key read from ``after_id``, through every other course's users first.
    return union if limit is None else union.order_by("pk")[:limit]


def _as_recipients(ids: QuerySet | None, *, after_id: int = 0) -> QuerySet:
    """The users with those ids, ordered, as the values a sender needs."""
    return (
        _users_among(ids, after_id=after_id)
        .annotate(full_name=get_lms().full_name_expression())
        .order_by("pk")
        .values("pk", "email", "full_name")
    )


def ordered_ids(ids: QuerySet | None, *, after_id: int = 0) -> QuerySet:
    return _users_among(ids, after_id=after_id).order_by("pk").values_list("pk", flat=True)


def _users_among(ids: QuerySet | None, *, after_id: int) -> QuerySet:
    """``pk__gt`` repeats the groups' own bound so that PostgreSQL reads the user table from
    the page's start instead of merging with it from the first row."""
    return all_users().none() if ids is None else all_users().filter(pk__gt=after_id, pk__in=ids)


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
    return list(ordered_ids(ids, after_id=after_id)[:limit])


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
        ids = member_ids(course_id=course_id, sender_id=sender_id, target_keys=keys, now=now,
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
    row = _as_recipients(all_users().filter(pk=user_id).values("pk")).get()
    return _recipient(row)


def display_names(*, user_ids: Iterable[int]) -> dict[int, str]:
    """Each user's LMS full name, or username when they have none (one query)."""
    users = (
        all_users()
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
    ids = member_ids(course_id=course_id, sender_id=sender_id, target_keys=target_keys, now=now)
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
    ids = member_ids(
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
# The counting queries' settings (histogram.py, breakdown.py)


@contextmanager
def no_jit(*, work_mem: str | None = None):
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


# ---------------------------------------------------------------------------------------------
# A batch resolved earlier, checked again before it sends


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
        spared = member_ids(**audience, now=None)
        opted_out -= set(all_users().filter(pk__in=spared).filter(pk__in=id_list(opted_out))
                         .values_list("pk", flat=True))  # fmt: skip
    return opted_out


def suppressed_ids(*, user_ids: Iterable[int]) -> dict[int, str]:
    """Which of ``user_ids`` have an address suppressed by now, with the reason's label (one
    query), so a batch resolved earlier can drop them before sending. Their addresses as
    they are now: a learner who changed a bounced address is mailed again."""
    labels = dict(Suppression.REASON_CHOICES)
    users = groups.with_suppression_reason(all_users().filter(pk__in=id_list(user_ids)))
    rows = users.filter(suppression__isnull=False).values_list("pk", "suppression")
    return {pk: labels.get(reason, reason) for pk, reason in rows}
