"""What a query's PostgreSQL plan read, for tests that guard a plan's shape: the statements a
call sends, their plan as executed (EXPLAIN ANALYZE) and the rows its scans of a table read."""

import json
from collections.abc import Callable

from django.db import connection


def statements_of(call: Callable[[], object]) -> list[tuple[str, tuple]]:
    """The SQL and parameters of every statement ``call`` sends, in order."""
    sent = []

    def record(execute, sql, params, many, context):
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        call()
    return sent


def executed_plan(sql: str, params) -> dict:
    """The plan's root node, run for real: its nodes carry actual rows and loops."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        (document,) = cursor.fetchone()
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


def rows_read(plan: dict, table: str) -> int:
    """Rows the plan's scans of ``table`` read: those they returned and those their filters
    removed, over all their loops (EXPLAIN gives both per loop)."""
    read = 0
    if plan.get("Relation Name") == table:
        per_loop = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
        read = round(per_loop * plan.get("Actual Loops", 1))
    return read + sum(rows_read(child, table) for child in plan.get("Plans", []))
