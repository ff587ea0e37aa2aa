import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from bulk_email.models import (
    BulkEmailFlag,
    CourseAuthorization,
    CourseEmail,
    CourseEmailTemplate,
    EmailTask,
    Optout,
)
from tests.factories import make_user

COURSE = "course-v1:TestX+M1+2026"
pytestmark = pytest.mark.django_db


def set_flag(*, enabled: bool, require_auth: bool) -> None:
    flag = BulkEmailFlag.current()
    flag.enabled, flag.require_course_email_auth = enabled, require_auth
    flag.save()


def test_the_flag_is_one_row_and_off_on_a_new_install():
    assert not BulkEmailFlag.feature_enabled(COURSE)
    BulkEmailFlag(enabled=True).save()
    BulkEmailFlag(enabled=True, require_course_email_auth=False).save()
    assert BulkEmailFlag.objects.count() == 1


@pytest.mark.parametrize(
    ("enabled", "require_auth", "authorized", "expected"),
    [
        (False, False, True, False),
        (True, False, False, True),
        (True, True, False, False),
        (True, True, True, True),
    ],
)
def test_feature_enabled_follows_flag_and_course_authorization(
    enabled, require_auth, authorized, expected
):
    set_flag(enabled=enabled, require_auth=require_auth)
    CourseAuthorization.objects.create(course_id=COURSE, email_enabled=authorized)
    assert BulkEmailFlag.feature_enabled(COURSE) is expected
    assert not BulkEmailFlag.feature_enabled("course-v1:Other+X+1") or not require_auth


def test_a_template_needs_exactly_one_body_slot():
    template = CourseEmailTemplate(name="t", html_template="<p>no slot</p>", plain_template="x")
    with pytest.raises(ValidationError):
        template.full_clean()
    template.html_template = template.plain_template = "{{message_body}}"
    template.full_clean()


def test_one_optout_per_user_and_course():
    user = make_user()
    Optout.objects.create(user=user, course_id=COURSE, how=Optout.DASHBOARD)
    Optout.objects.create(user=user, course_id="course-v1:Other+X+1")
    with pytest.raises(IntegrityError):
        Optout.objects.create(user=user, course_id=COURSE)


def test_a_new_task_is_queuing_with_zero_counts():
    email = CourseEmail.objects.create(course_id=COURSE, subject="Hi", html_message="<p>x</p>")
    task = EmailTask.objects.create(email=email)
    assert (task.state, task.total, task.retries) == (EmailTask.QUEUING, 0, 0)
