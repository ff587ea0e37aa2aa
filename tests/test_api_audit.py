"""The audit trail of a send (models.SendAuditEntry, written by api.services): who created,
scheduled, edited, revoked or resent it, when, and what changed, in the same transaction
as the change; shown in the task list, the task's email endpoint, the CSV and the admin."""

import csv
import datetime
import hashlib
import io
import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bulk_email import api
from bulk_email.exceptions import InvalidEmailError
from bulk_email.models import Batch, EmailTask, RecipientOutcome, SendAuditEntry
from lms_stub.models import CourseAccessRole
from tests.factories import give_role, make_sending_course, make_user, staff

pytestmark = pytest.mark.django_db
HOSTILE = '=HYPERLINK("http://evil")'  # staff B's name: hostile, for the CSV


@pytest.fixture
def course():
    return make_sending_course()


@pytest.fixture
def author(course):
    user = make_user("ada", name="Ada Author")
    give_role(user, course, CourseAccessRole.INSTRUCTOR)
    return user


@pytest.fixture
def colleague(course):
    user = make_user("bob", name=HOSTILE)
    give_role(user, course, CourseAccessRole.STAFF)
    return user


def later(hours=1):
    return timezone.now() + datetime.timedelta(hours=hours)


def schedule(course, user, **overrides):
    fields = {
        "subject": "Quiz on Friday",
        "html": "<p>Hello</p>",
        "targets": ["myself"],
        "send_at": later(),
    }
    return api.send_email(access=staff(course.id, user), **{**fields, **overrides})


def sha256(html: str) -> str:
    return hashlib.sha256(html.encode()).hexdigest()


def test_scheduling_records_who_and_what(course, author):
    task = schedule(course, author)
    entry = task.audit_entries.get()
    assert (entry.action, entry.actor) == (SendAuditEntry.SCHEDULED, author)
    assert entry.changes == {
        "subject": "Quiz on Friday",
        "targets": ["myself"],
        "send_at": task.send_at.isoformat(timespec="milliseconds"),
        "body_sha256": sha256(task.email.html_message),
    }


def test_sending_now_records_created(course, author):
    task = schedule(course, author, send_at=None)
    assert task.audit_entries.get().action == SendAuditEntry.CREATED


def test_staff_b_editing_as_scheduled_email_is_recorded_with_what_changed(
    course, author, colleague
):
    task = schedule(course, author)
    before_at = task.send_at
    new_at = later(hours=5)
    api.edit_scheduled(
        access=staff(course.id, colleague),
        task=task,
        subject="Quiz moved to Monday",
        html="<p>Hello</p>",
        targets=["myself", "staff"],
        send_at=new_at,
    )
    edit = task.audit_entries.get(action=SendAuditEntry.EDITED)
    assert edit.actor == colleague
    assert edit.changes == {
        "subject": ["Quiz on Friday", "Quiz moved to Monday"],
        "targets": [["myself"], ["myself", "staff"]],
        "send_at": [
            before_at.isoformat(timespec="milliseconds"),
            new_at.isoformat(timespec="milliseconds"),
        ],
    }  # the body did not change: no body_sha256 in the diff
    summary = api.task_summary(access=staff(course.id, author), task=task)
    assert summary.author == "Ada Author"
    assert summary.edited_by == HOSTILE
    assert summary.edited_at == edit.at


def test_an_edit_of_the_body_records_both_hashes(course, author, colleague):
    task = schedule(course, author)
    old_html = task.email.html_message
    api.edit_scheduled(
        access=staff(course.id, colleague),
        task=task,
        subject="Quiz on Friday",
        html="<p>Bring a pen</p>",
        targets=["myself"],
        send_at=task.send_at,
    )
    task.email.refresh_from_db()
    changes = task.audit_entries.get(action=SendAuditEntry.EDITED).changes
    assert changes == {"body_sha256": [sha256(old_html), sha256(task.email.html_message)]}


def test_a_refused_edit_records_nothing(course, author, colleague):
    task = schedule(course, author)
    with pytest.raises(InvalidEmailError):
        api.edit_scheduled(
            access=staff(course.id, colleague),
            task=task,
            subject="",
            html="<p>x</p>",
            targets=["myself"],
            send_at=later(),
        )
    assert list(task.audit_entries.values_list("action", flat=True)) == ["scheduled"]


def test_a_revocation_records_who_and_the_state_it_stopped(course, author, colleague):
    task = schedule(course, author)
    api.revoke(access=staff(course.id, colleague), task=task)
    entry = task.audit_entries.get(action=SendAuditEntry.REVOKED)
    assert entry.actor == colleague
    assert entry.changes == {"state": ["SCHEDULED", "REVOKED"]}
    summary = api.task_summary(access=staff(course.id, author), task=task)
    assert summary.revoked_by == HOSTILE


def test_a_refused_revocation_records_nothing(course, author, colleague):
    task = schedule(course, author)
    api.revoke(access=staff(course.id, author), task=task)
    with pytest.raises(InvalidEmailError):
        api.revoke(access=staff(course.id, colleague), task=task)
    assert task.audit_entries.filter(action=SendAuditEntry.REVOKED).count() == 1


def test_a_resend_records_who_and_of_which_send(course, author, colleague):
    task = schedule(course, author, send_at=None)
    EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.SUCCESS)
    batch = Batch.objects.create(task=task, seq=0, user_ids=[author.pk], state=Batch.DONE)
    RecipientOutcome.objects.create(task=task, batch=batch, user=author, status="failed")
    resend = api.resend_to_failed(access=staff(course.id, colleague), task=task)
    entry = resend.audit_entries.get()
    assert (entry.action, entry.actor) == (SendAuditEntry.RESENT, colleague)
    assert entry.changes == {"resend_of": task.pk}


def test_the_task_email_endpoint_lists_the_trail(course, author, colleague):
    task = schedule(course, author)
    api.revoke(access=staff(course.id, colleague), task=task)
    client = Client()
    client.force_login(author)
    response = client.get(f"/email/courses/{course.id}/api/tasks/{task.pk}/email/")
    trail = response.json()["audit"]
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("scheduled", "Ada Author"),
        ("revoked", HOSTILE),
    ]


def test_the_csv_shows_who_edited_and_revoked_escaped(course, author, colleague):
    task = schedule(course, author)
    api.edit_scheduled(
        access=staff(course.id, colleague),
        task=task,
        subject="Edited",
        html="<p>Hello</p>",
        targets=["myself"],
        send_at=task.send_at,
    )
    api.revoke(access=staff(course.id, colleague), task=task)
    client = Client()
    client.force_login(author)
    response = client.get(f"/email/courses/{course.id}/api/report.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    row = rows[0]
    assert row["last edited by"] == "'" + HOSTILE  # OWASP's quote: shown, never run
    assert row["revoked by"] == "'" + HOSTILE
    assert datetime.datetime.fromisoformat(row["revoked"]).utcoffset() == datetime.timedelta(0)
    assert row["requester"] == "Ada Author"


def test_the_list_reads_the_trail_in_a_fixed_number_of_queries(course, author, colleague):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_to_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            found = api.list_tasks(access=staff(course.id, author))
        assert {summary.revoked_by for summary in found} == {HOSTILE}
        return len(captured)

    api.revoke(access=staff(course.id, colleague), task=schedule(course, author))
    one = queries_to_list()
    for _ in range(5):
        api.revoke(access=staff(course.id, colleague), task=schedule(course, author))
    assert queries_to_list() == one


def test_the_admin_shows_the_trail_read_only(course, author):
    task = schedule(course, author)
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    listing = client.get(reverse("admin:bulk_email_sendauditentry_changelist"))
    assert listing.status_code == 200 and "Quiz on Friday" in listing.content.decode()
    entry = task.audit_entries.get()
    change = reverse("admin:bulk_email_sendauditentry_change", args=[entry.pk])
    assert client.post(change, {"action": "revoked"}).status_code == 403
    add = reverse("admin:bulk_email_sendauditentry_add")
    assert client.get(add).status_code == 403
    assert json.loads(json.dumps(entry.changes))["subject"] == "Quiz on Friday"
