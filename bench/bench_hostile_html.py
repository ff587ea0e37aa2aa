"""The worst bodies under MAX_HTML_LENGTH through the preview service (a script, not a test).

    python bench/bench_hostile_html.py

Each body is just under the size limit and built to be costly: deep nesting (refused by the
depth scan before the sanitizer parses it), many attributes, many tiny tags, deep nesting
within the limit repeated. Goal: every one answers (a preview or a refusal) in < 1 s. Runs on
a throw-away SQLite database with the demo LMS.
"""

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
os.environ["DATABASE_URL"] = ""  # SQLite in memory

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from bulk_email import api, app_settings  # noqa: E402
from bulk_email.exceptions import InvalidEmailError  # noqa: E402
from lms_stub.models import CourseAccessRole  # noqa: E402
from tests.factories import give_role, make_sending_course, make_user, staff  # noqa: E402

GOAL_SECONDS = 1.0


def fill(unit: str, limit: int, *, head: str = "", tail: str = "") -> str:
    return head + unit * ((limit - len(head) - len(tail)) // len(unit)) + tail


def recreated_formatting(limit: int) -> str:
    """Implicitly closed formatting elements, each re-created, nested, before the next tag."""
    tags, size, number = [], 0, 0
    while size < limit - 40:
        tags.append(f"<div><b class=c{number}></div>")
        size, number = size + len(tags[-1]), number + 1
    return "".join(tags) + "x"


def hostile_bodies(limit: int, nesting: int, elements: int) -> dict[str, str]:
    within = "<div>" * nesting + "x" + "</div>" * nesting
    styled = '<p style="color: red; padding: 1px">' + "words " * ((limit // elements - 41) // 6)
    return {
        "nested 90,000 deep": "<div>" * 90_000 + "x" + "</div>" * 90_000,
        "unclosed, too deep": fill("<span>", limit),
        "one tag, many attributes": fill(' title="x"', limit, head="<p", tail=">x</p>"),
        "many tiny tags": fill("<b>x</b>", limit),
        "many unclosed list items": fill("<li>x", limit, head="<ul>", tail="</ul>"),
        f"nested {nesting} deep, repeated": fill(within, limit),
        f"{elements:,} tiny tags (the most allowed)": "<b>x</b>" * elements,
        f"{elements:,} styled paragraphs filling the size": (styled + "</p>") * elements,
        "text without tags": fill("Plenty of words. ", limit),
        "formatting re-created (<div><b class=N></div>)": recreated_formatting(limit),
    }


def measure(access, body: str) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        api.preview_email(access=access, subject="Bench", html=body)
        outcome = "previewed"
    except InvalidEmailError as error:
        outcome = f"refused: {error}"
    return time.perf_counter() - started, outcome


def main() -> int:
    setup_test_environment()
    connection.creation.create_test_db(verbosity=0)
    course = make_sending_course()
    user = make_user("bench-staff")
    give_role(user, course, CourseAccessRole.INSTRUCTOR)
    access = staff(course.id, user)
    limit, nesting = app_settings.get("MAX_HTML_LENGTH"), app_settings.get("MAX_HTML_NESTING")
    elements = app_settings.get("MAX_HTML_ELEMENTS")
    print(f"MAX_HTML_LENGTH {limit:,}, MAX_HTML_NESTING {nesting}, MAX_HTML_ELEMENTS {elements:,}")
    slowest = 0.0
    for name, body in hostile_bodies(limit, nesting, elements).items():
        seconds, outcome = measure(access, body)
        slowest = max(slowest, seconds)
        print(f"{name:<48} {len(body):>9,} chars {seconds:7.3f} s  {outcome[:60]}")
    verdict = "met" if slowest < GOAL_SECONDS else "MISSED"
    print(f"slowest {slowest:.3f} s; goal < {GOAL_SECONDS} s: {verdict}")
    return 0 if slowest < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
