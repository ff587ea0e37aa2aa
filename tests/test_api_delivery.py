"""api/delivery.py: a send's per-recipient report, from outcome rows and feedback events,
paged by keyset, filtered by kind; and the rates api/selectors.py puts on a send's summary."""

import pytest

from bulk_email import api
from bulk_email.exceptions import BadRequestError, UnknownTaskError
from bulk_email.models import FeedbackEvent, RecipientOutcome
from lms_stub.models import CourseAccessRole
from tests.factories import (
    finished_task,
    give_role,
    make_sending_course,
    make_user,
    record_feedback,
    record_outcome,
    staff,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def access(course, instructor):
    return staff(course.id, instructor)


def a_send_with_every_kind(course, instructor):
    """A send of 100: one failed, one skipped, two bounced, one complained, one soft bounce."""
    task = finished_task(course, instructor, sent=98)
    people = [make_user(f"p{i}", name=f"Person {i}") for i in range(6)]
    record_outcome(task, people[0], code=550, detail="550 5.1.1 No such user")
    opted_out = "Opted out of this course's email."
    record_outcome(task, people[1], status=RecipientOutcome.SKIPPED, detail=opted_out)
    record_feedback(task, people[2])
    record_feedback(task, people[3], status_code="5.2.1", diagnostic="mailbox disabled")
    complaint = {"kind": FeedbackEvent.COMPLAINT, "status_code": "", "diagnostic": ""}
    record_feedback(task, people[4], **complaint, source="arf")
    record_feedback(task, people[5], kind=FeedbackEvent.SOFT_BOUNCE, status_code="4.2.2")
    return task, people


def test_every_kind_is_listed_with_who_and_why(course, instructor, access):
    task, _ = a_send_with_every_kind(course, instructor)
    page = api.delivery_page(access=access, task=task)
    assert [(r.kind, r.name, r.email) for r in page.rows] == [
        ("failed", "Person 0", "p0@example.com"),
        ("skipped", "Person 1", "p1@example.com"),
        ("bounced", "Person 2", "p2@example.com"),
        ("bounced", "Person 3", "p3@example.com"),
        ("complained", "Person 4", "p4@example.com"),
    ]  # the soft bounce is still being retried: not in the report
    failed, skipped, bounced, _, complained = page.rows
    assert (failed.code, failed.why, failed.source) == ("550", "550 5.1.1 No such user", "smtp")
    assert skipped.why == "Opted out of this course's email."
    assert (bounced.code, bounced.why) == ("5.1.1", "Bounced. 550 5.1.1 unknown user")
    assert (complained.why, complained.source) == ("Marked as spam.", "arf")
    assert page.counts == {"failed": 1, "skipped": 1, "bounced": 2, "complained": 1}
    assert page.next is None


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("failed", ["p0"]), ("skipped", ["p1"]), ("bounced", ["p2", "p3"]), ("complained", ["p4"])],
)
def test_filter_by_kind(course, instructor, access, kind, expected):
    task, _ = a_send_with_every_kind(course, instructor)
    rows = api.delivery_page(access=access, task=task, kind=kind).rows
    assert [r.email.split("@")[0] for r in rows] == expected


def test_pages_follow_each_other_without_gaps_or_repeats(course, instructor, access):
    task, _ = a_send_with_every_kind(course, instructor)
    seen, after = [], ""
    for _ in range(10):
        page = api.delivery_page(access=access, task=task, after=after, limit=2)
        seen += [r.email for r in page.rows]
        if page.next is None:
            break
        after = page.next
    assert seen == [f"p{i}@example.com" for i in range(5)]
    everything = list(api.delivery_rows(access=access, task=task, chunk=2))
    assert [r.email for r in everything] == seen


def test_limit_zero_gives_the_counts_alone(course, instructor, access):
    task, _ = a_send_with_every_kind(course, instructor)
    page = api.delivery_page(access=access, task=task, limit=0)
    assert page.rows == [] and page.counts["bounced"] == 2


def test_a_page_costs_a_fixed_number_of_queries(
    course, instructor, access, django_assert_max_num_queries
):
    task = finished_task(course, instructor, sent=10)
    for i in range(30):
        user = make_user(f"q{i}")
        record_outcome(task, user, detail="x")
        record_feedback(task, user)
    with django_assert_max_num_queries(6):
        page = api.delivery_page(access=access, task=task, limit=50)
    assert len(page.rows) == 50


@pytest.mark.parametrize(
    "after", ["x1", "o", "o-1", "f1.5", "o" + "9" * 19, "'; DROP TABLE", "o\uff11"]
)
def test_a_cursor_it_did_not_give_is_refused(course, instructor, access, after):
    task, _ = a_send_with_every_kind(course, instructor)
    with pytest.raises(BadRequestError) as refused:
        api.delivery_page(access=access, task=task, after=after)
    assert refused.value.field == "after"


def test_an_unknown_kind_is_refused(course, instructor, access):
    task, _ = a_send_with_every_kind(course, instructor)
    with pytest.raises(BadRequestError):
        api.delivery_page(access=access, task=task, kind="<script>")


def test_another_courses_send_is_not_reported(course, instructor):
    other = make_sending_course()
    task, _ = a_send_with_every_kind(course, instructor)
    stranger = make_user()
    give_role(stranger, other, CourseAccessRole.INSTRUCTOR)
    with pytest.raises(UnknownTaskError):
        api.delivery_page(access=staff(other.id, stranger), task=task)


# --- Rates on the summary ------------------------------------------------------------------------


def test_the_summary_has_bounced_complained_and_their_rates(course, instructor, access):
    task, _ = a_send_with_every_kind(course, instructor)
    summary = api.task_summary(access=access, task=task)
    assert (summary.sent, summary.bounced, summary.complained) == (98, 2, 1)
    assert summary.bounce_rate == pytest.approx(2 / 98)
    assert summary.complaint_rate == pytest.approx(1 / 98)
    assert not summary.bounce_warning  # 2.0 % < 5 %
    assert summary.complaint_warning  # 1.0 % > 0.1 %


def test_no_rate_before_anything_was_sent(course, instructor, access):
    summary = api.task_summary(access=access, task=finished_task(course, instructor, sent=0))
    assert summary.bounce_rate is None and not summary.bounce_warning


def test_the_thresholds_are_settings(course, instructor, access, settings):
    task, _ = a_send_with_every_kind(course, instructor)
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "BOUNCE_RATE_WARNING": 0.01}
    assert api.task_summary(access=access, task=task).bounce_warning  # 2.0 % > 1 %


def test_the_report_rows_have_the_feedback_columns(course, instructor, access):
    a_send_with_every_kind(course, instructor)
    (row,) = api.task_report_rows(access=access)
    by_column = dict(zip(api.REPORT_COLUMNS, row, strict=True))
    assert by_column["bounced"] == 2 and by_column["complained"] == 1
    assert by_column["bounce rate (%)"] == 2.04 and by_column["complaint rate (%)"] == 1.02
