import re
import urllib.request

import pytest
from django.urls import reverse

from bulk_email.models import DisabledCourse
from lms_stub.models import CourseAccessRole
from tests.factories import (
    enroll,
    give_role,
    make_cohort,
    make_course,
    make_sending_course,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    return make_course(
        "course-v1:DemoX+V1+2026",
        display_name="Physique générale — 物理",
        tracks=("audit", "verified"),
    )


def dashboard_url(course):
    return reverse("instructor_dashboard", args=[course.id])


def test_login_page_and_sign_in_lead_to_the_dashboard(client):
    make_user("ada", password="secret-pass")
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "ada", "password": "secret-pass"})
    assert response.status_code == 302 and response.url == reverse("dashboard")


def test_anonymous_users_are_sent_to_login(client, course):
    for url in (reverse("dashboard"), dashboard_url(course)):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_learner_dashboard_lists_active_enrollments_only(client, course):
    learner = make_user()
    enroll(learner, course)
    dropped = make_course(display_name="Dropped course")
    enroll(learner, dropped, is_active=False)
    client.force_login(learner)
    page = client.get(reverse("dashboard")).content.decode()
    assert "Physique générale — 物理" in page and "Dropped course" not in page
    assert "Instructor dashboard" not in page


@pytest.mark.parametrize("role", [CourseAccessRole.INSTRUCTOR, CourseAccessRole.STAFF])
def test_course_team_opens_the_instructor_dashboard(client, course, role):
    member = make_user(name="Hélène")
    give_role(member, course, role)
    make_cohort(course, "Default Group", is_default=True)
    client.force_login(member)
    assert dashboard_url(course) in client.get(reverse("dashboard")).content.decode()
    page = client.get(dashboard_url(course))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Physique générale — 物理" in text and "Default Group" in text
    membership = client.get(dashboard_url(course), {"tab": "membership"}).content.decode()
    assert "Hélène" in membership


@pytest.mark.parametrize(
    "role", [CourseAccessRole.BETA_TESTER, CourseAccessRole.COMMUNITY_TA, None]
)
def test_others_get_403(client, course, role):
    user = make_user()
    enroll(user, course)
    if role:
        give_role(user, course, role)
    client.force_login(user)
    assert client.get(dashboard_url(course)).status_code == 403


def test_staff_of_another_course_gets_403(client, course):
    other = make_course()
    user = make_user()
    give_role(user, other, CourseAccessRole.STAFF)
    client.force_login(user)
    assert client.get(dashboard_url(course)).status_code == 403


def test_unknown_course_is_404(client):
    client.force_login(make_user(is_superuser=True))
    assert (
        client.get(reverse("instructor_dashboard", args=["course-v1:No+Such+1"])).status_code == 404
    )


def test_unknown_tab_falls_back_to_course_info(client, course):
    client.force_login(make_user(is_superuser=True))
    page = client.get(dashboard_url(course), {"tab": "<script>"})
    assert page.status_code == 200 and "Active enrollments" in page.content.decode()


def icon_link(page: str) -> str | None:
    found = re.search(r'<link rel="icon"[^>]* href="([^"]+)"', page)
    return found.group(1) if found else None


def fetch(url: str) -> tuple[int, str, bytes]:
    """What a browser gets, redirects followed."""
    with urllib.request.urlopen(url) as response:
        return response.status, response.headers["Content-Type"], response.read()


def test_every_page_has_a_favicon_and_favicon_ico_answers(live_server, admin_client):
    """Browsers ask for an icon on every page; a 404 in the log reads as trouble."""
    pages = [reverse("login"), reverse("dashboard"), reverse("admin:index")]
    links = {icon_link(admin_client.get(path).content.decode()) for path in pages}
    assert None not in links
    for path in (*links, "/favicon.ico"):
        status, content_type, body = fetch(live_server.url + path)
        assert status == 200 and content_type.startswith("image/") and b"<svg" in body


def test_course_info_says_why_all_learners_differs_from_the_active_enrollments(client, course):
    staff = make_user()
    give_role(staff, course, CourseAccessRole.STAFF)
    enroll(staff, course)
    for _ in range(3):
        enroll(make_user(), course)
    enroll(make_user(is_active=False), course)
    client.force_login(staff)
    page = client.get(dashboard_url(course), {"tab": "course_info"}).content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "Active enrollments 5 (of 5)" in text
    assert "How many receive the Email tab's All Learners, and why not 5?" in text
    assert "will receive it" not in text  # counted only when asked
    page = client.get(dashboard_url(course), {"tab": "course_info", "explain": "learners"})
    text = " ".join(re.sub(r"<[^>]+>", " ", page.content.decode()).split())
    assert (
        "Email: All Learners 3 — 1 of the active enrollments is the course team, who have their"
        " own group (Staff and Administrators). 3 will receive it: 1 left out — 1 has not"
        " activated their account."
    ) in text


def test_a_course_turned_off_tells_its_team_why_the_email_tab_is_absent(client):
    course = make_sending_course()
    member = make_user()
    give_role(member, course, CourseAccessRole.INSTRUCTOR)
    client.force_login(member)
    assert "?tab=email" in client.get(dashboard_url(course)).content.decode()
    DisabledCourse.objects.create(course_id=course.id, reason="<b>archived</b>")
    page = client.get(dashboard_url(course)).content.decode()
    assert "?tab=email" not in page
    assert "No Email tab: Bulk email is turned off for this course: &lt;b&gt;archived" in page


def test_learners_see_no_email_settings_for_a_course_that_sends_none(client):
    course = make_sending_course()
    learner = make_user()
    enroll(learner, course)
    client.force_login(learner)
    assert "Email Settings" in client.get(reverse("dashboard")).content.decode()
    DisabledCourse.objects.create(course_id=course.id)
    page = client.get(reverse("dashboard")).content.decode()
    assert course.display_name in page and "Email Settings" not in page
