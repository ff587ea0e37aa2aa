import pytest
from django.urls import reverse

from bulk_email.models import BulkEmailFlag, CourseEmail, Optout
from tests.factories import make_user

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
