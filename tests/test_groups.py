"""The group-kind registry: keys, kinds, and a kind added by a test alone."""

import pytest

from bulk_email.groups import split_key
from bulk_email.models import CourseEmail, Target

pytestmark = pytest.mark.django_db

COURSE = "course-v1:Registry+G1+2026"


def test_target_keys_round_trip():
    email = CourseEmail.objects.create(course_id=COURSE, subject="Hi", html_message="<p>x</p>")
    track = Target.objects.create(email=email, target_type="track", target_value="verified")
    learners = Target.objects.create(email=email, target_type="learners")
    assert (track.key, learners.key) == ("track:verified", "learners")
    assert split_key("cohort:12") == ("cohort", "12")


@pytest.mark.parametrize("key", ["everyone", "track", "cohort:", "myself:me", ""])
def test_malformed_target_keys_are_refused(key):
    with pytest.raises(ValueError):
        split_key(key)


# --- Bounded answers: a script's list of thousands of keys -------------------------------------


def test_unknown_keys_are_listed_up_to_ten_and_the_rest_counted():
    from bulk_email.exceptions import InvalidEmailError
    from bulk_email.groups import validate_target_keys
    from tests.factories import make_course

    course = make_course()
    unknown = [f"cohort:{number}" for number in range(1_000_000, 1_000_500)]
    with pytest.raises(InvalidEmailError) as refused:
        validate_target_keys(course_id=course.id, keys=["learners", *unknown])
    shown = ", ".join(unknown[:10])
    assert str(refused.value) == f"Not a group of this course: {shown} and 490 more."
    assert refused.value.field == "targets"


def test_a_long_unknown_key_is_shown_shortened():
    from bulk_email.exceptions import InvalidEmailError
    from bulk_email.groups import validate_target_keys
    from tests.factories import make_course

    with pytest.raises(InvalidEmailError) as refused:
        validate_target_keys(course_id=make_course().id, keys=["x" * 100_000])
    assert len(str(refused.value)) < 200 and "xxx…" in str(refused.value)


def test_more_targets_than_the_cap_are_refused_before_any_lookup(django_assert_num_queries):
    from bulk_email.exceptions import InvalidEmailError
    from bulk_email.groups import MAX_TARGETS, validate_target_keys

    with django_assert_num_queries(0), pytest.raises(InvalidEmailError) as refused:
        validate_target_keys(course_id=COURSE, keys=["learners"] * (MAX_TARGETS + 1))
    assert (
        str(refused.value) == f"Choose at most {MAX_TARGETS} groups (this has {MAX_TARGETS + 1:,})."
    )
    assert refused.value.field == "targets"


# --- A kind added by a test alone: the registry, the LMS port and this file -------------------

from django.contrib.auth import get_user_model  # noqa: E402

from bulk_email import api, groups, pipeline  # noqa: E402
from lms_stub.bulk_email_backend import StubLMSBackend  # noqa: E402
from lms_stub.models import CourseAccessRole  # noqa: E402
from tests.factories import enroll, give_role, make_sending_course, make_user, staff  # noqa: E402


class BetaTesterLMS(StubLMSBackend):
    """The LMS port grown by one method: the course's beta testers."""

    def beta_testers(self, course_id: str):
        roles = CourseAccessRole.objects.filter(
            course_id=course_id, role=CourseAccessRole.BETA_TESTER
        )
        return get_user_model().objects.filter(pk__in=roles.values("user_id"), is_active=True)


BETA = groups.Group(key="beta", label="Beta testers")


@pytest.fixture
def beta_kind(settings):
    path = f"{__name__}.BetaTesterLMS"
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "LMS_BACKEND": path}
    groups.register_group_kind(
        groups.GroupKind(
            name="beta",
            has_value=False,
            offered=lambda course_id: [BETA],
            members=lambda q: groups.get_lms().beta_testers(q.course_id),
        )
    )
    yield
    groups.unregister_group_kind("beta")


def test_a_new_group_kind_is_offered_validated_stored_resolved_and_sent(
    beta_kind, smtp_settings, smtp_sink
):
    course = make_sending_course()
    instructor, testers, learner = make_user("prof"), [make_user(), make_user()], make_user()
    give_role(instructor, course, CourseAccessRole.INSTRUCTOR)
    for person in [*testers, learner]:
        enroll(person, course)
    for tester in testers:
        give_role(tester, course, CourseAccessRole.BETA_TESTER)
    api.opt_out(user_id=testers[1].pk, course_id=course.id, how="admin")

    assert BETA in groups.available_groups(course_id=course.id)
    task = api.send_email(
        access=staff(course.id, instructor), subject="Beta", html="<p>x</p>", targets=["beta"]
    )
    assert [t.key for t in task.email.targets.all()] == ["beta"]
    # What the enqueue after the commit does (a test's transaction never commits).
    task.__class__.objects.filter(pk=task.pk).transition(to=task.PENDING)
    for job in pipeline.fan_out(task_id=task.pk):
        pipeline.send_batch(batch_id=job.id)
    received = sorted(address for m in smtp_sink.messages for address in m.rcpt_tos)
    assert received == [testers[0].email]  # the opted-out tester and the learner get nothing
    task.refresh_from_db()
    assert task.state == task.SUCCESS


def test_an_unregistered_kind_is_refused(beta_kind):
    groups.unregister_group_kind("beta")
    with pytest.raises(ValueError):
        split_key("beta")
