import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from bulk_email.models import (
    BulkEmailFlag,
    CourseAuthorization,
    CourseEmail,
    CourseEmailTemplate,
    DisabledCourse,
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


# --- States: one table of transitions, one method that performs them ---------------------------

from itertools import product  # noqa: E402

from bulk_email.models import Batch  # noqa: E402

STATEFUL = [
    (EmailTask, [s for s, _ in EmailTask.STATE_CHOICES]),
    (Batch, [s for s, _ in Batch.STATE_CHOICES]),
]


def a_row(model, state):
    email = CourseEmail.objects.create(course_id=COURSE, subject="s", html_message="<p>x</p>")
    task = EmailTask.objects.create(email=email, state=state if model is EmailTask else "PROGRESS")
    if model is EmailTask:
        return task
    return Batch.objects.create(task=task, seq=0, user_ids=[1], state=state)


@pytest.mark.parametrize(
    ("model", "source", "target"),
    [(m, a, b) for m, states in STATEFUL for a, b in product(states, states)],
)
def test_every_transition_in_the_table_is_made_and_every_other_refused(model, source, target):
    row = a_row(model, source)
    rows = model.objects.filter(pk=row.pk)
    if target in model.TRANSITIONS[source]:
        assert rows.transition(from_=[source], to=target) == 1
        assert rows.get().state == target
    else:
        with pytest.raises(ValueError, match="is not a transition"):
            rows.transition(from_=[source], to=target)
        assert rows.get().state == source


def test_a_transition_is_conditional_and_counts_the_rows_it_changed():
    finished = a_row(EmailTask, EmailTask.SUCCESS)
    running = a_row(EmailTask, EmailTask.PROGRESS)
    both = EmailTask.objects.filter(pk__in=[finished.pk, running.pk])
    assert both.transition(to=EmailTask.REVOKED) == 1  # Success is final: left alone
    assert EmailTask.objects.get(pk=finished.pk).state == EmailTask.SUCCESS
    assert both.transition(to=EmailTask.REVOKED) == 0


def test_every_state_is_in_the_table_and_the_sets_agree_with_it():
    for model, states in STATEFUL:
        assert set(model.TRANSITIONS) == set(states)
    for state in EmailTask.FINAL_STATES:
        assert not EmailTask.TRANSITIONS[state]
    assert set(EmailTask.RUNNING_STATES) <= set(EmailTask.ACTIVE_STATES)
    assert set(EmailTask.STOPPED_STATES) <= set(EmailTask.FINAL_STATES)


def test_a_disabled_course_is_off_even_when_every_course_may_send():
    set_flag(enabled=True, require_auth=False)
    assert BulkEmailFlag.disabled_reason(COURSE) == ""
    DisabledCourse.objects.create(course_id=COURSE, reason="the course ended in May")
    assert not BulkEmailFlag.feature_enabled(COURSE)
    assert BulkEmailFlag.disabled_reason(COURSE) == (
        "Bulk email is turned off for this course: the course ended in May"
    )
    assert BulkEmailFlag.feature_enabled("course-v1:Other+X+1")


def test_a_disabled_course_wins_over_its_authorization():
    set_flag(enabled=True, require_auth=True)
    CourseAuthorization.objects.create(course_id=COURSE, email_enabled=True)
    DisabledCourse.objects.create(course_id=COURSE)
    assert BulkEmailFlag.disabled_reason(COURSE) == "Bulk email is turned off for this course."


@pytest.mark.parametrize(
    ("enabled", "require_auth", "says"),
    [(False, False, "turned off for this site"), (True, True, "not authorized")],
)
def test_each_reason_names_the_switch_to_turn(enabled, require_auth, says):
    set_flag(enabled=enabled, require_auth=require_auth)
    assert says in BulkEmailFlag.disabled_reason(COURSE)
