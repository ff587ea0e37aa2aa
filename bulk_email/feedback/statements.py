"""The three statements each piece of feedback runs, written once in SQL that PostgreSQL and
SQLite (3.24+) both take: ``INSERT ... ON CONFLICT``.

Why not the ORM here: a flood of 10,000 bounces runs them 10,000 times, and building each
query through the ORM cost more CPU than parsing the message. Why ON CONFLICT: it settles
two processes recording the same event, or suppressing the same address, inside the
database, with no savepoint and no retry: the second waits for the first, then does nothing
(the event) or bumps the count (the suppression).
"""

from datetime import datetime
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection

from ..models import CourseEmail, EmailTask, FeedbackEvent, Suppression

EVENT_COLUMNS = ("kind", "dedupe_key", "address", "user_id", "task_id", "course_id", "source",
                 "status_code", "diagnostic", "received")  # fmt: skip
SUPPRESSION_COLUMNS = ("address", "user_id", "reason", "source", "first_event", "last_event",
                       "count", "status_code", "diagnostic")  # fmt: skip


def insert_event(values: dict) -> bool:
    """Insert one FeedbackEvent; False when its dedupe_key was there already."""
    with connection.cursor() as cursor:
        cursor.execute(_insert_event_sql(), [_adapted(values[name]) for name in EVENT_COLUMNS])
        return cursor.rowcount == 1


def upsert_suppression(values: dict, *, reason_rank: dict[str, int]) -> bool:
    """Create the address's Suppression, or bump it: one more event, the latest status and
    diagnostic, and the new reason only when it is stronger (``reason_rank``). Whether it
    was created (its count is 1 only then)."""
    rank = " ".join(f"WHEN %s THEN {int(number)}" for number in reason_rank.values())
    parameters = [_adapted(values[name]) for name in SUPPRESSION_COLUMNS]
    parameters += [*reason_rank, reason_rank.get(values["reason"], 0)]
    with connection.cursor() as cursor:
        cursor.execute(_upsert_suppression_sql().replace("{rank}", rank), parameters)
        return cursor.fetchone()[0] == 1


def user_email_and_task_course(user_id: int, task_id: int | None) -> tuple | None:
    """(the user's email, the task's course or None); None when the user does not exist."""
    with connection.cursor() as cursor:
        cursor.execute(_user_and_course_sql(), [task_id, user_id])
        return cursor.fetchone()


def increment_task(task_id: int, counter: str) -> None:
    """One more bounce or complaint on the send: ``counter`` is "bounced" or "complained"."""
    with connection.cursor() as cursor:
        cursor.execute(_increment_task_sql(counter), [task_id])


def recent_soft_bounces(address: str, since: datetime) -> int:
    """The address's soft-bounce events received since then (the one just written too)."""
    with connection.cursor() as cursor:
        cursor.execute(_recent_soft_bounces_sql(), [address, _adapted(since)])
        return cursor.fetchone()[0]


@cache
def _increment_task_sql(counter: str) -> str:
    if counter not in ("bounced", "complained"):
        raise ValueError(f"Not a feedback counter: {counter!r}")
    column = _column(EmailTask, counter)
    return f"UPDATE {_table(EmailTask)} SET {column} = {column} + 1 WHERE {_pk(EmailTask)} = %s"


@cache
def _recent_soft_bounces_sql() -> str:
    column = {name: _column(FeedbackEvent, name) for name in ("address", "kind", "received")}
    return (
        f"SELECT COUNT(*) FROM {_table(FeedbackEvent)} WHERE {column['address']} = %s "
        f"AND {column['kind']} = '{FeedbackEvent.SOFT_BOUNCE}' AND {column['received']} >= %s"
    )


def _adapted(value):
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


@cache
def _insert_event_sql() -> str:
    table = _table(FeedbackEvent)
    columns = ", ".join(_column(FeedbackEvent, name) for name in EVENT_COLUMNS)
    placeholders = ", ".join(["%s"] * len(EVENT_COLUMNS))
    dedupe_key = _column(FeedbackEvent, "dedupe_key")
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT ({dedupe_key}) DO NOTHING"
    )


@cache
def _upsert_suppression_sql() -> str:
    table = _table(Suppression)
    column = {name: _column(Suppression, name) for name in SUPPRESSION_COLUMNS}
    existing = {name: f"{table}.{quoted}" for name, quoted in column.items()}
    latest = ", ".join(
        f"{column[name]} = excluded.{column[name]}"
        for name in ("last_event", "status_code", "diagnostic")
    )
    placeholders = ", ".join(["%s"] * len(SUPPRESSION_COLUMNS))
    return (
        f"INSERT INTO {table} ({', '.join(column.values())}) VALUES ({placeholders}) "
        f"ON CONFLICT ({column['address']}) DO UPDATE SET "
        f"{column['count']} = {existing['count']} + 1, {latest}, "
        f"{column['reason']} = CASE WHEN (CASE {existing['reason']} {{rank}} ELSE 0 END) < %s "
        f"THEN excluded.{column['reason']} ELSE {existing['reason']} END "
        f"RETURNING {column['count']}"
    )


@cache
def _user_and_course_sql() -> str:
    user_model = get_user_model()
    users, tasks, emails = _table(user_model), _table(EmailTask), _table(CourseEmail)
    email = _column(user_model, user_model.get_email_field_name())
    course_id, task_email = _column(CourseEmail, "course_id"), _column(EmailTask, "email")
    return (
        f"SELECT {users}.{email}, (SELECT {emails}.{course_id} FROM {tasks} "
        f"INNER JOIN {emails} ON {emails}.{_pk(CourseEmail)} = {tasks}.{task_email} "
        f"WHERE {tasks}.{_pk(EmailTask)} = %s) "
        f"FROM {users} WHERE {users}.{_pk(user_model)} = %s"
    )


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model, name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


def _pk(model) -> str:
    return connection.ops.quote_name(model._meta.pk.column)
