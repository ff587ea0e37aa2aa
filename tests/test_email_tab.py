"""The Email tab's JSON endpoints and its place in the dashboard, through Django's test client:
who may call what, every refusal with its field, CSRF, the report's CSV."""

import csv
import datetime
import io
import json
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bulk_email import api
from bulk_email.models import (
    Batch,
    BulkEmailFlag,
    CourseAuthorization,
    DisabledCourse,
    EmailTask,
    RecipientOutcome,
)
from lms_stub.models import CourseAccessRole
from tests.factories import (
    enroll,
    give_role,
    make_course,
    make_user,
    opt_out,
    staff,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("counts_at_once")]
STATIC = Path(__file__).resolve().parent.parent / "bulk_email" / "static" / "bulk_email"


def api_url(course, rest=""):
    return f"/email/courses/{course.id}/api/{rest}"


def call(client, method, url, body=None, **extra):
    data = json.dumps(body) if body is not None else ""
    return client.generic(method, url, data, content_type="application/json", **extra)


def in_an_hour():
    return timezone.now() + datetime.timedelta(hours=1)


def schedule(course, sender, **overrides):
    fields = {
        "course_id": course.id,
        "sender": sender,
        "subject": "Quiz on Friday",
        "html": "<p>Hello %%USER_FULLNAME%%</p>",
        "targets": ["myself"],
        "send_at": in_an_hour(),
    }
    fields = {**fields, **overrides}
    access = staff(fields.pop("course_id"), fields.pop("sender"))
    return api.send_email(access=access, **fields)


def finished_with_failures(course, sender, *, sent=3, failed=1) -> EmailTask:
    """A send that ended: batch counts and failed outcomes as the pipeline leaves them."""
    learners = [make_user() for _ in range(sent + failed)]
    for learner in learners:
        enroll(learner, course)
    task = schedule(course, sender, targets=["learners"], send_at=None)
    started = timezone.now() - datetime.timedelta(seconds=75)
    EmailTask.objects.filter(pk=task.pk).update(
        state=EmailTask.SUCCESS,
        total=sent + failed,
        started_at=started,
        finished_at=started + datetime.timedelta(seconds=62),
    )
    batch = Batch.objects.create(
        task=task, seq=0, user_ids=[u.pk for u in learners], state=Batch.DONE, sent=sent,
        failed=failed, cursor=sent + failed,
    )  # fmt: skip
    for learner in learners[:failed]:
        RecipientOutcome.objects.create(
            task=task, batch=batch, user=learner, status="failed", code=550, detail="No such user"
        )
    return task


# --- Who may call what -----------------------------------------------------------------------


def endpoint_calls(course, task):
    """(method, url, body, status for course Staff/Admin) for every endpoint."""
    task_url = api_url(course, f"tasks/{task.pk}/")
    send = {"subject": "Hi", "message": "<p>Hi</p>", "targets": ["myself"]}
    edit = {**send, "send_at": in_an_hour().isoformat()}
    return [
        ("GET", api_url(course, "groups/"), None, 200),
        ("POST", api_url(course, "count/"), {"targets": ["myself", "learners"]}, 200),
        ("POST", api_url(course, "preview/"), {"subject": "Hi", "message": "<p>Hi</p>"}, 200),
        ("POST", api_url(course, "emails/"), send, 201),
        ("GET", api_url(course, "tasks/"), None, 200),
        ("GET", task_url, None, 200),
        ("GET", task_url + "email/", None, 200),
        ("PUT", task_url, edit, 200),
        ("POST", task_url + "resend/", None, 409),  # a scheduled send has no failures yet
        ("DELETE", task_url, None, 200),
        ("GET", api_url(course, "report.csv"), None, 200),
    ]


def person_with_role(course, who):
    if who == "anonymous":
        return None
    user = make_user(who)
    if who in ("instructor", "staff", "beta", "moderator"):
        role = {
            "instructor": CourseAccessRole.INSTRUCTOR,
            "staff": CourseAccessRole.STAFF,
            "beta": CourseAccessRole.BETA_TESTER,
            "moderator": CourseAccessRole.DISCUSSION_MODERATOR,
        }[who]
        give_role(user, course, role)
    if who == "learner":
        enroll(user, course)
    if who == "other_course_staff":
        give_role(user, make_course(), CourseAccessRole.STAFF)
    return user


@pytest.mark.parametrize("who", ["instructor", "staff"])
def test_course_staff_and_admins_use_every_endpoint(client, course, instructor, who):
    user = person_with_role(course, who)
    client.force_login(user)
    task = schedule(course, user)
    for method, url, body, status in endpoint_calls(course, task):
        response = call(client, method, url, body)
        assert response.status_code == status, (method, url, response.content)


@pytest.mark.parametrize(
    "who,status",
    [
        ("anonymous", 401),
        ("learner", 403),
        ("beta", 403),
        ("moderator", 403),
        ("other_course_staff", 403),
    ],
)
def test_everyone_else_is_refused_on_every_endpoint(client, course, instructor, who, status):
    task = schedule(course, instructor)
    user = person_with_role(course, who)
    if user:
        client.force_login(user)
    for method, url, body, _ in endpoint_calls(course, task):
        response = call(client, method, url, body)
        assert response.status_code == status, (method, url)
        assert "message" in response.json()
    task.refresh_from_db()
    assert task.state == EmailTask.SCHEDULED and EmailTask.objects.count() == 1


@pytest.mark.parametrize(
    ("switch", "says"),
    [
        ("flag_off", "Bulk email is turned off for this site (the bulk email flag in the admin)."),
        ("course_not_authorized", "This course is not authorized to send bulk email"),
        ("course_disabled", "Bulk email is turned off for this course: moved to a new run"),
    ],
)
def test_with_the_feature_off_the_endpoints_answer_403(client, course, instructor, switch, says):
    task = schedule(course, instructor)
    if switch == "flag_off":
        BulkEmailFlag.objects.update(enabled=False)
    elif switch == "course_not_authorized":
        CourseAuthorization.objects.update(email_enabled=False)
    else:
        DisabledCourse.objects.create(course_id=course.id, reason="moved to a new run")
    client.force_login(instructor)
    for method, url, body, _ in endpoint_calls(course, task):
        response = call(client, method, url, body)
        assert response.status_code == 403, (method, url)
        assert response.json()["message"].startswith(says)


def test_an_unknown_course_and_another_courses_task_are_404(client, course, instructor):
    other = make_course()
    CourseAuthorization.objects.create(course_id=other.id, email_enabled=True)
    give_role(instructor, other, CourseAccessRole.INSTRUCTOR)
    foreign = schedule(other, instructor)
    client.force_login(instructor)
    assert client.get("/email/courses/course-v1:No+Such+Course/api/tasks/").status_code == 404
    response = client.get(api_url(course, f"tasks/{foreign.pk}/"))
    assert response.status_code == 404
    assert call(client, "DELETE", api_url(course, f"tasks/{foreign.pk}/")).status_code == 404
    foreign.refresh_from_db()
    assert foreign.state == EmailTask.SCHEDULED


def test_wrong_methods_are_405(client, course, instructor):
    client.force_login(instructor)
    response = client.get(api_url(course, "emails/"))
    assert response.status_code == 405 and response["Allow"] == "POST"


# --- The dashboard shows the tab only to those who may send ----------------------------------


def dashboard(client, course, tab="email"):
    return client.get(reverse("instructor_dashboard", args=[course.id]), {"tab": tab})


def test_the_tab_renders_the_composer_and_groups_with_counts(client, course, instructor):
    learners = [make_user() for _ in range(3)]
    for learner in learners:
        enroll(learner, course, mode="verified")
    client.force_login(instructor)
    page = dashboard(client, course).content.decode()
    assert 'href="?tab=email"' in page and 'id="bulk-email-tab"' in page
    assert 'data-type="ckeditortype"' in page and "ckeditor/ckeditor.js" in page
    assert "Learners in the Verified Certificate Track" in page and "(3 people)" in page
    assert 'sandbox=""' in page and "bulk_email/email_tab.js" in page


def test_the_page_hands_the_script_the_state_sets(client, course, instructor):
    client.force_login(instructor)
    page = dashboard(client, course).content.decode()
    config = re.search(r'<script id="bulk-email-config"[^>]*>(.*?)</script>', page).group(1)
    states = json.loads(config)["states"]
    assert states["running"] == ["STARTED", "PROGRESS"]
    assert states["active"] == ["QUEUING", "PENDING", "STARTED", "PROGRESS"]
    assert states["stopped"] == ["REVOKED", "FAILURE"]
    assert states["final"] == ["SUCCESS", "FAILURE", "REVOKED"]
    assert states["names"] == {state: state for state, _label in EmailTask.STATE_CHOICES}


def test_the_script_spells_no_state_name():
    """The script reads every state from the page's config (states.names.SCHEDULED), so the
    sets stay defined once, on the server."""
    names = "|".join(state for state, _label in EmailTask.STATE_CHOICES)
    spelled = re.compile(rf"[\"'`]({names})[\"'`]")
    scripts = sorted(STATIC.glob("email_tab*.js")) + sorted(STATIC.glob("email_tab/*.js"))
    assert len(scripts) > 1
    for script in scripts:
        assert not spelled.search(script.read_text(encoding="utf-8")), script.name


@pytest.mark.parametrize("switch", ["flag_off", "course_not_authorized", "superuser_no_role"])
def test_the_tab_is_absent_when_bulk_email_says_no(client, course, instructor, switch):
    user = instructor
    if switch == "flag_off":
        BulkEmailFlag.objects.update(enabled=False)
    elif switch == "course_not_authorized":
        CourseAuthorization.objects.all().delete()
    else:
        user = make_user(is_superuser=True)
    client.force_login(user)
    response = dashboard(client, course)
    page = response.content.decode()
    assert response.status_code == 200 and 'href="?tab=email"' not in page
    assert "bulk-email-tab" not in page and "Course Info" in page


@pytest.mark.parametrize("who", ["learner", "beta"])
def test_learners_and_beta_testers_get_403_on_the_tab(client, course, who):
    client.force_login(person_with_role(course, who))
    assert dashboard(client, course).status_code == 403


def test_anonymous_page_loads_go_to_login(client, course):
    response = dashboard(client, course)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


# --- Refusals come back with their field ---------------------------------------------------------


def test_every_wrong_field_is_reported_at_once(client, course, instructor):
    client.force_login(instructor)
    body = {"subject": "", "message": "<p> </p>", "targets": [], "send_at": "2001-01-01T10:00Z"}
    response = call(client, "POST", api_url(course, "emails/"), body)
    assert response.status_code == 400
    data = response.json()
    assert data["field"] == "subject" and data["message"] == "Enter a subject."
    assert data["errors"] == {
        "subject": "Enter a subject.",
        "message": "Write a message: it is empty.",
        "targets": "Choose at least one group to send to.",
        "send_at": "The scheduled time has passed; pick a later one.",
    }
    assert EmailTask.objects.count() == 0


@pytest.mark.parametrize(
    "change,field,message",
    [
        (
            {"subject": "x" * 129},
            "subject",
            "The subject is 129 characters long; the limit is 128.",
        ),
        ({"subject": "Hi\r\nBcc: all@example.com"}, "subject", "single line"),
        ({"message": "<script>alert(1)</script>"}, "message", "Write a message: it is empty."),
        ({"targets": ["cohort:999999"]}, "targets", "Not a group of this course: cohort:999999."),
        ({"targets": "learners"}, "targets", "targets must be a list of group keys."),
        ({"subject": 12}, "subject", "subject must be a string."),
        ({"send_at": "next friday"}, "send_at", "Give a date and time"),
        ({"send_at": "2031-05-01T10:00"}, "send_at", "Give the time with its time zone."),
    ],
)
def test_each_refusal_names_its_field(client, course, instructor, change, field, message):
    client.force_login(instructor)
    body = {"subject": "Hello", "message": "<p>Hello</p>", "targets": ["myself"], **change}
    response = call(client, "POST", api_url(course, "emails/"), body)
    assert response.status_code == 400
    data = response.json()
    assert data["field"] == field and message in data["errors"][field]


def test_a_body_that_is_not_json_is_400(client, course, instructor):
    client.force_login(instructor)
    response = client.post(api_url(course, "emails/"), "subject=x", content_type="text/plain")
    assert response.status_code == 400 and "JSON" in response.json()["message"]


def test_preview_reports_subject_and_message_errors(client, course, instructor):
    client.force_login(instructor)
    response = call(client, "POST", api_url(course, "preview/"), {"subject": "", "message": ""})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"subject", "message"}


def test_editing_a_send_that_has_started_is_a_409_on_state(client, course, instructor):
    client.force_login(instructor)
    task = schedule(course, instructor)
    EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.STARTED)
    body = {"subject": "Hi", "message": "<p>Hi</p>", "targets": ["myself"]}
    response = call(client, "PUT", api_url(course, f"tasks/{task.pk}/"), {**body, "send_at": ""})
    assert response.status_code == 400 and response.json()["field"] == "send_at"
    body["send_at"] = in_an_hour().isoformat()
    response = call(client, "PUT", api_url(course, f"tasks/{task.pk}/"), body)
    assert response.status_code == 409
    assert response.json()["field"] == "state"
    assert response.json()["message"] == "This email can no longer be edited: it is Started."


# --- What the endpoints return ----------------------------------------------------------------


def test_send_now_answers_201_with_the_queued_task(client, course, instructor):
    client.force_login(instructor)
    body = {"subject": "Bonjour", "message": "<p>Hi</p>", "targets": ["learners", "myself"]}
    response = call(client, "POST", api_url(course, "emails/"), body)
    assert response.status_code == 201
    data = response.json()
    assert data["state"] == "QUEUING" and data["state_label"] == "Queuing"
    assert data["groups"] == ["Myself", "All Learners"] and data["author"] == "Prof. Hélène Durand"
    assert EmailTask.objects.get(pk=data["task_id"]).email.subject == "Bonjour"


def test_schedule_takes_the_local_time_with_its_offset_and_stores_utc(client, course, instructor):
    client.force_login(instructor)
    local = (timezone.now() + datetime.timedelta(days=2)).replace(microsecond=0, second=0)
    paris = local.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    body = {"subject": "Later", "message": "<p>x</p>", "targets": ["myself"]}
    response = call(
        client, "POST", api_url(course, "emails/"), {**body, "send_at": paris.isoformat()}
    )
    assert response.status_code == 201 and response.json()["state"] == "SCHEDULED"
    task = EmailTask.objects.get()
    assert task.send_at == local and task.send_at.utcoffset() == datetime.timedelta(0)
    assert response.json()["send_at"] == local.isoformat().replace("+00:00", "Z")


def test_count_is_each_person_once(client, course, instructor):
    learner = make_user()
    enroll(learner, course, mode="verified")
    client.force_login(instructor)
    body = {"targets": ["learners", "track:verified", "myself"]}
    response = call(client, "POST", api_url(course, "count/"), body)
    assert response.json() == {
        "total": 2, "targets": ["myself", "learners", "track:verified"], "pending": False
    }  # fmt: skip


def test_groups_lists_each_group_with_its_count(client, course, instructor):
    enroll(make_user(), course, mode="audit")
    client.force_login(instructor)
    response = client.get(api_url(course, "groups/"))
    assert response.status_code == 200 and response.json()["pending"] is False
    groups = {g["key"]: g for g in response.json()["groups"]}
    assert groups["myself"] == {"key": "myself", "label": "Myself", "count": 1}
    nobody = {"not_logged_in": 0, "opted_out": 0, "not_activated": 0, "suppressed": 0}
    [myself] = client.get(api_url(course, "groups/"), {"key": "myself"}).json()["groups"]
    assert myself == {
        "key": "myself",
        "label": "Myself",
        "count": 1,
        "left_out": nobody,
        "why": "1 will receive it; nobody is left out.",
    }
    assert groups["learners"]["count"] == 1 and groups["track:verified"]["count"] == 0
    assert groups["staff"]["label"] == "Staff and Administrators"


def test_groups_say_who_each_leaves_out_and_why(client, course, instructor):
    quitter, sleeper = (
        make_user(),
        make_user(last_login=timezone.now() - datetime.timedelta(days=900)),
    )
    enroll(make_user(), course)
    enroll(quitter, course)
    enroll(sleeper, course, created=timezone.now() - datetime.timedelta(days=900))
    opt_out(quitter, course.id)
    client.force_login(instructor)
    groups = {g["key"]: g for g in client.get(api_url(course, "groups/")).json()["groups"]}
    assert groups["learners"]["count"] == 1
    answer = client.get(api_url(course, "groups/"), {"key": ["learners", "staff"]}).json()
    groups = {g["key"]: g for g in answer["groups"]}
    assert groups["learners"]["left_out"] == {
        "not_logged_in": 1, "opted_out": 1, "not_activated": 0, "suppressed": 0
    }  # fmt: skip
    why = "1 will receive it: 2 left out — 1 has not logged in for 18 months, 1 opted out."
    assert groups["learners"]["why"] == why
    # What the tab asks for when a group's "why?" is opened: that group alone.
    one = client.get(api_url(course, "groups/"), {"key": "learners"}).json()["groups"]
    assert [(g["key"], g["why"]) for g in one] == [("learners", why)]
    page = dashboard(client, course).content.decode()
    assert page.count('class="bulk-email-why"') == len(api.offered_groups(course_id=course.id))
    assert 'data-key="learners"' in page
    assert '<span class="bulk-email-sr-only"> of All Learners</span>, and why?' in page


@pytest.mark.parametrize(
    "key", ["cohort:999999", "nope", "<script>", "track:" + "x" * 5000, "learners\r\nX: y"]
)
def test_a_breakdown_of_a_group_the_course_does_not_offer_is_refused(
    client, course, instructor, key
):
    client.force_login(instructor)
    response = client.get(api_url(course, "groups/"), {"key": key})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "targets" and body["message"].startswith("Not a group of this course")
    assert len(response.content) < 1000


def test_preview_is_the_rendered_message_for_the_viewer_and_saves_nothing(
    client, course, instructor
):
    client.force_login(instructor)
    body = {"subject": "Hi %%USER_FULLNAME%%", "message": '<p onclick="x()">Dear %%USER_FULLNAME%%'}
    data = call(client, "POST", api_url(course, "preview/"), body).json()
    assert data["subject"] == "Hi Prof. Hélène Durand"
    assert "Dear Prof. Hélène Durand" in data["html"] and "onclick" not in data["html"]
    assert "Physique générale — 物理" in data["html"]  # the footer
    assert EmailTask.objects.count() == 0


def test_task_email_gives_the_stored_email_and_its_rendering(client, course, instructor):
    client.force_login(instructor)
    task = schedule(course, instructor, targets=["myself", "staff"])
    data = client.get(api_url(course, f"tasks/{task.pk}/email/")).json()
    assert data["subject"] == "Quiz on Friday" and data["targets"] == ["myself", "staff"]
    assert data["message"] == "<p>Hello %%USER_FULLNAME%%</p>"
    assert "Hello Prof. Hélène Durand" in data["preview"]["html"]


def test_the_task_list_and_status_carry_counts(client, course, instructor):
    client.force_login(instructor)
    task = finished_with_failures(course, instructor, sent=3, failed=1)
    listed = client.get(api_url(course, "tasks/")).json()["tasks"]
    assert [t["task_id"] for t in listed] == [task.pk]
    status = client.get(api_url(course, f"tasks/{task.pk}/")).json()
    for data in (listed[0], status):
        assert (data["total"], data["sent"], data["failed"], data["skipped"]) == (4, 3, 1, 0)
        assert data["state"] == "SUCCESS" and data["duration_seconds"] == 62


def test_resend_to_failed_makes_a_new_task(client, course, instructor):
    client.force_login(instructor)
    task = finished_with_failures(course, instructor)
    response = call(client, "POST", api_url(course, f"tasks/{task.pk}/resend/"))
    assert response.status_code == 201
    assert response.json()["resend_of"] == task.pk and response.json()["state"] == "QUEUING"


def test_delete_revokes_a_scheduled_send(client, course, instructor):
    client.force_login(instructor)
    task = schedule(course, instructor)
    response = call(client, "DELETE", api_url(course, f"tasks/{task.pk}/"))
    assert response.status_code == 200 and response.json()["state"] == "REVOKED"
    again = call(client, "DELETE", api_url(course, f"tasks/{task.pk}/"))
    assert again.status_code == 409 and again.json()["field"] == "state"


def test_the_report_csv(client, course, instructor):
    client.force_login(instructor)
    done = finished_with_failures(course, instructor, sent=3, failed=1)
    scheduled = schedule(course, instructor)
    response = client.get(api_url(course, "report.csv"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="email-tasks-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "task id", "requester", "created", "state", "duration (s)", "total", "sent", "failed",
        "skipped", "skipped: suppressed", "bounced", "complained", "bounce rate (%)",
        "complaint rate (%)", "last edited by", "last edited", "revoked by", "revoked",
    ]  # fmt: skip
    assert rows[1][0] == str(scheduled.pk)
    assert rows[1][3:] == [
        "Scheduled", "", "0", "0", "0", "0", "0", "0", "0", "", "", "", "", "", "",
    ]  # fmt: skip
    assert rows[2][0] == str(done.pk) and rows[2][1] == "Prof. Hélène Durand"
    assert rows[2][3:] == [
        "Success", "62", "4", "3", "1", "0", "0", "0", "0", "0.0", "0.0", "", "", "", "",
    ]  # fmt: skip
    assert datetime.datetime.fromisoformat(rows[2][2]).utcoffset() == datetime.timedelta(0)


# --- CSRF --------------------------------------------------------------------------------------


def test_changes_need_the_csrf_token(course, instructor):
    client = Client(enforce_csrf_checks=True)
    client.force_login(instructor)
    task = schedule(course, instructor)
    body = {"subject": "Hi", "message": "<p>Hi</p>", "targets": ["myself"]}
    for method, url in [
        ("POST", api_url(course, "emails/")),
        ("POST", api_url(course, "preview/")),
        ("POST", api_url(course, "count/")),
        ("PUT", api_url(course, f"tasks/{task.pk}/")),
        ("DELETE", api_url(course, f"tasks/{task.pk}/")),
        ("POST", api_url(course, f"tasks/{task.pk}/resend/")),
    ]:
        assert call(client, method, url, body).status_code == 403, (method, url)
    task.refresh_from_db()
    assert task.state == EmailTask.SCHEDULED and EmailTask.objects.count() == 1

    client.get(reverse("instructor_dashboard", args=[course.id]), {"tab": "email"})
    token = client.cookies["csrftoken"].value
    response = call(client, "POST", api_url(course, "emails/"), body, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert call(client, "GET", api_url(course, "tasks/")).status_code == 200  # reads need none


# --- Authorized once; one error shape; configuration errors are the operator's -----------------


def test_each_endpoint_checks_the_users_role_once(client, course, instructor, monkeypatch):
    from lms_stub.bulk_email_backend import StubLMSBackend

    calls = []
    original = StubLMSBackend.is_course_staff

    def counted(self, user, course_id):
        calls.append(course_id)
        return original(self, user, course_id)

    monkeypatch.setattr(StubLMSBackend, "is_course_staff", counted)
    client.force_login(instructor)
    task = schedule(course, instructor)
    for method, url, body, status in endpoint_calls(course, task):
        calls.clear()
        response = call(client, method, url, body)
        assert response.status_code == status, (method, url, response.content)
        assert calls == [course.id], (method, url)


def test_every_refusal_has_the_one_error_shape(client, course, instructor):
    client.force_login(instructor)
    refusals = [
        call(client, "POST", api_url(course, "emails/"), {"subject": ""}),  # 400
        call(client, "GET", api_url(course, "tasks/999999/")),  # 404
        call(client, "PATCH", api_url(course, "tasks/")),  # 405
    ]
    client.logout()
    refusals.append(call(client, "GET", api_url(course, "tasks/")))  # 401
    for response in refusals:
        assert set(response.json()) == {"message", "field", "errors", "code"}, response.json()
    assert [r.json()["code"] for r in refusals] == [
        "invalid",
        "unknown_task",
        "method_not_allowed",
        "not_signed_in",
    ]


def test_a_configuration_error_is_a_logged_500_not_bad_input(
    client, course, instructor, settings, caplog
):
    client.force_login(instructor)
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "LMS_BACKEND": "no.such.Backend"}
    response = call(client, "GET", api_url(course, "tasks/"))
    assert response.status_code == 500 and response.json()["code"] == "configuration"
    assert "no.such.Backend" not in response.json()["message"]  # the operator's, in the log
    assert "no.such.Backend" in caplog.text
