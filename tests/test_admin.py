import csv
import io

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.urls import reverse

from bulk_email.api import suppressions
from bulk_email.models import BulkEmailFlag, CourseEmail, FeedbackEvent, Optout, Suppression
from tests.factories import make_user, suppress

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    "model",
    [
        "bulkemailflag",
        "courseauthorization",
        "courseemailtemplate",
        "courseemail",
        "emailtask",
        "batch",
        "recipientoutcome",
        "optout",
        "suppression",
        "feedbackevent",
    ],
)
def test_every_model_has_an_admin_list(admin_client, model):
    response = admin_client.get(reverse(f"admin:bulk_email_{model}_changelist"))
    assert response.status_code == 200


def test_the_flag_is_edited_in_the_admin(admin_client):
    response = admin_client.post(
        reverse("admin:bulk_email_bulkemailflag_add"),
        {"enabled": "on", "require_course_email_auth": ""},
    )
    assert response.status_code == 302
    flag = BulkEmailFlag.current()
    assert flag.enabled and not flag.require_course_email_auth
    # With the one row present, the admin offers no second one and no delete.
    page = admin_client.get(reverse("admin:bulk_email_bulkemailflag_changelist"))
    assert reverse("admin:bulk_email_bulkemailflag_add") not in page.content.decode()
    assert admin_client.get(reverse("admin:bulk_email_bulkemailflag_add")).status_code == 403


def test_optouts_are_searchable_by_email_and_course(admin_client):
    learner = make_user("findme", email="find.me@example.org")
    Optout.objects.create(user=learner, course_id="course-v1:A+B+C")
    Optout.objects.create(user=make_user(), course_id="course-v1:X+Y+Z")
    url = reverse("admin:bulk_email_optout_changelist")
    assert "1 result" in admin_client.get(url, {"q": "find.me@example.org"}).content.decode()
    assert "1 result" in admin_client.get(url, {"q": "course-v1:X+Y+Z"}).content.decode()


def test_an_email_with_unicode_subject_shows_in_the_admin(admin_client):
    email = CourseEmail.objects.create(
        course_id="course-v1:A+B+C", subject="Bienvenue — 欢迎", html_message="<p>x</p>"
    )
    page = admin_client.get(reverse("admin:bulk_email_courseemail_change", args=[email.pk]))
    assert "Bienvenue — 欢迎" in page.content.decode()


# --- Suppressions and feedback -------------------------------------------------------------------

SUPPRESSIONS = reverse("admin:bulk_email_suppression_changelist")


def run_action(client, action: str, rows, **extra):
    data = {"action": action, "_selected_action": [row.pk for row in rows], **extra}
    return client.post(SUPPRESSIONS, data)


def test_suppressions_are_searched_by_address_and_filtered_by_reason_and_source(admin_client):
    suppress("bounced@example.org")
    suppress("angry@example.org", reason=Suppression.COMPLAINT)
    Suppression.objects.filter(address="angry@example.org").update(source="ses")
    page = lambda **q: admin_client.get(SUPPRESSIONS, q).content.decode()  # noqa: E731
    assert "1 result" in page(q="BOUNCED@example.org")
    by_reason = page(reason__exact=Suppression.COMPLAINT)
    assert "angry@example.org" in by_reason and "bounced@example.org" not in by_reason
    by_source = page(source__exact="dsn")
    assert "bounced@example.org" in by_source and "angry@example.org" not in by_source


def test_removing_asks_a_reason_and_keeps_it_in_the_admin_log(admin_client):
    rows = [suppress("a@example.org"), suppress("b@example.org")]
    question = run_action(admin_client, "remove_with_reason", rows)
    assert question.status_code == 200
    assert "a@example.org" in question.content.decode() and Suppression.objects.count() == 2
    done = run_action(admin_client, "remove_with_reason", rows, apply="Remove",
                      reason="The learner fixed  her mailbox\n(ticket 42)")  # fmt: skip
    assert done.status_code == 302 and not Suppression.objects.exists()
    entries = LogEntry.objects.filter(action_flag=DELETION).order_by("object_repr")
    assert [e.object_repr for e in entries] == ["a@example.org (Hard bounce)",
                                                "b@example.org (Hard bounce)"]  # fmt: skip
    assert {e.user.username for e in entries} == {"root"}
    message = "Removed from the suppression list: The learner fixed her mailbox (ticket 42)"
    assert {e.change_message for e in entries} == {message}
    assert suppressions.removal_log(address="A@example.org") == [message]


@pytest.mark.parametrize("reason", ["", "   \n ", "x" * 501])
def test_no_reason_or_an_overlong_one_removes_nothing(admin_client, reason):
    row = suppress("kept@example.org")
    response = run_action(admin_client, "remove_with_reason", [row], apply="Remove", reason=reason)
    assert response.status_code == 400
    assert "errornote" in response.content.decode()
    assert Suppression.objects.filter(pk=row.pk).exists() and not LogEntry.objects.exists()


def test_a_hostile_reason_is_shown_as_text(admin_client):
    row = suppress("kept@example.org")
    hostile = "<script>alert(1)</script>" + "y" * 500
    page = run_action(admin_client, "remove_with_reason", [row], apply="Remove", reason=hostile)
    assert "<script>alert(1)" not in page.content.decode()
    assert "&lt;script&gt;" in page.content.decode()


def test_no_bare_delete_of_a_suppression(admin_client):
    row = suppress("kept@example.org")
    delete = reverse("admin:bulk_email_suppression_delete", args=[row.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert 'value="delete_selected"' not in admin_client.get(SUPPRESSIONS).content.decode()
    run_action(admin_client, "delete_selected", [row], post="yes")
    assert Suppression.objects.filter(pk=row.pk).exists()


def test_staff_without_the_delete_permission_is_not_offered_removal(client):
    from django.contrib.auth.models import Permission

    clerk = make_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_suppression"))
    client.force_login(clerk)
    row = suppress("kept@example.org")
    assert "remove_with_reason" not in client.get(SUPPRESSIONS).content.decode()
    run_action(client, "remove_with_reason", [row], apply="Remove", reason="because")
    assert Suppression.objects.filter(pk=row.pk).exists()


HOSTILE_DIAGNOSTICS = ['=HYPERLINK("http://evil.example/","x")', "+1", "-1+2", "@SUM(A1)"]


def test_the_csv_export_escapes_formulas(admin_client):
    rows = [suppress(f"user{i}@example.org") for i in range(len(HOSTILE_DIAGNOSTICS))]
    for row, diagnostic in zip(rows, HOSTILE_DIAGNOSTICS, strict=True):
        Suppression.objects.filter(pk=row.pk).update(diagnostic=diagnostic, status_code="5.1.1")
    response = run_action(admin_client, "export_csv", rows)
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0][0] == "address" and len(table) == 1 + len(rows)
    assert sorted(line[7] for line in table[1:]) == sorted("'" + d for d in HOSTILE_DIAGNOSTICS)
    assert {line[6] for line in table[1:]} == {"5.1.1"}


def test_an_address_added_by_hand_is_normalized_and_marked_as_the_admins(admin_client):
    response = admin_client.post(
        reverse("admin:bulk_email_suppression_add"),
        {"address": "  Typo@Example.ORG ", "reason": Suppression.MANUAL, "diagnostic": ""},
    )
    assert response.status_code == 302
    row = Suppression.objects.get()
    assert (row.address, row.source, row.reason) == ("typo@example.org", "admin", "manual")


def test_feedback_events_are_read_only(admin_client):
    event = FeedbackEvent.objects.create(
        kind=FeedbackEvent.HARD_BOUNCE, dedupe_key="k1", address="x@example.org", source="dsn"
    )
    listing = admin_client.get(reverse("admin:bulk_email_feedbackevent_changelist"))
    assert "x@example.org" in listing.content.decode()
    assert admin_client.get(reverse("admin:bulk_email_feedbackevent_add")).status_code == 403
    change = reverse("admin:bulk_email_feedbackevent_change", args=[event.pk])
    admin_client.post(change, {"kind": "complaint", "dedupe_key": "k1", "source": "dsn"})
    event.refresh_from_db()
    assert event.kind == FeedbackEvent.HARD_BOUNCE
    delete = reverse("admin:bulk_email_feedbackevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
