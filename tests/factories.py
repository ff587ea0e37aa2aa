"""Small factory functions for tests: each makes one real row with sensible defaults."""

import datetime
import itertools

from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone

from bulk_email import api, pipeline, recipients
from bulk_email.groups import split_key
from bulk_email.models import (
    Batch,
    BulkEmailFlag,
    CourseAuthorization,
    CourseEmail,
    EmailTask,
    FeedbackEvent,
    Optout,
    RecipientOutcome,
    Suppression,
    Target,
)
from lms_stub.models import (
    Cohort,
    CohortMembership,
    Course,
    CourseAccessRole,
    CourseEnrollment,
    CourseMode,
    UserProfile,
)
from lms_stub.seeding import TRACK_NAMES

_numbers = itertools.count(1)


def make_user(username: str | None = None, *, name: str = "", **fields):
    number = next(_numbers)
    username = username or f"user{number}"
    fields.setdefault("email", f"{username}@example.com")
    fields.setdefault("last_login", timezone.now() - datetime.timedelta(days=1))
    password = fields.pop("password", None)
    user = get_user_model().objects.create(username=username, **fields)
    if password:
        user.set_password(password)
        user.save(update_fields=["password"])
    UserProfile.objects.create(user=user, name=name or f"Learner {number}")
    return user


def make_course(course_id: str | None = None, *, tracks=("audit",), **fields) -> Course:
    number = next(_numbers)
    course_id = course_id or f"course-v1:TestX+T{number}+2026"
    fields.setdefault("display_name", f"Test course {number}")
    # New-style "course-v1:Org+Course+Run" or Open edX's old-style "Org/Course/Run".
    fields.setdefault("org", course_id.split(":", 1)[-1].replace("/", "+").split("+")[0])
    fields.setdefault("postal_address", "1 Test Street, Testville")
    course = Course.objects.create(id=course_id, **fields)
    for slug in tracks:
        display_name = TRACK_NAMES.get(slug, slug.title())
        CourseMode.objects.create(course=course, mode_slug=slug, mode_display_name=display_name)
    return course


def enroll(user, course: Course, *, mode: str = "audit", is_active: bool = True, created=None):
    return CourseEnrollment.objects.create(
        user=user, course=course, mode=mode, is_active=is_active, created=created or timezone.now()
    )


def give_role(user, course: Course, role: str) -> CourseAccessRole:
    return CourseAccessRole.objects.create(user=user, course=course, role=role)


def make_cohort(course: Course, name: str, *, members=(), is_default: bool = False) -> Cohort:
    cohort = Cohort.objects.create(course=course, name=name, is_default=is_default)
    CohortMembership.objects.bulk_create(CohortMembership(cohort=cohort, user=u) for u in members)
    return cohort


def opt_out(user, course_id: str, *, how: str = Optout.DASHBOARD) -> Optout:
    return Optout.objects.create(user=user, course_id=course_id, how=how)


def suppress(address: str, *, reason: str = Suppression.HARD_BOUNCE) -> Suppression:
    """A suppressed address, stored as feedback stores it (``Suppression.normalize``)."""
    now = timezone.now()
    return Suppression.objects.create(
        address=Suppression.normalize(address),
        reason=reason,
        source="dsn",
        first_event=now,
        last_event=now,
    )


def make_email(course_id: str, *, sender=None, targets=(), **fields) -> CourseEmail:
    """A saved email with its Target rows, from keys such as "learners" or "cohort:12"."""
    fields.setdefault("subject", "Hello")
    fields.setdefault("html_message", "<p>Hello</p>")
    email = CourseEmail.objects.create(course_id=course_id, sender=sender, **fields)
    for key in targets:
        target_type, target_value = split_key(key)
        Target.objects.create(email=email, target_type=target_type, target_value=target_value)
    return email


def make_sending_course(**fields) -> Course:
    """A two-track course whose staff may send: the flag on, the course authorized."""
    fields.setdefault("display_name", "Physique générale — 物理")
    course = make_course(tracks=("audit", "verified"), **fields)
    flag = BulkEmailFlag.current()
    flag.enabled = True
    flag.save()
    CourseAuthorization.objects.create(course_id=course.id, email_enabled=True)
    return course


# --- Sends for the pipeline tests ------------------------------------------------------------


def course_with_learners(count: int, **course_fields):
    """A course, its instructor and ``count`` enrolled learners learner0@example.com ..."""
    from lms_stub.models import CourseAccessRole

    course = make_course(**course_fields)
    instructor = make_user("prof")
    give_role(instructor, course, CourseAccessRole.INSTRUCTOR)
    learners = [make_user(f"learner{i}", email=f"learner{i}@example.com") for i in range(count)]
    for learner in learners:
        enroll(learner, course)
    return course, instructor, learners


def make_task(course, sender, *, targets=("learners",), state=EmailTask.PENDING) -> EmailTask:
    email = make_email(course.id, sender=sender, targets=targets, subject="Hi %%USER_FULLNAME%%")
    return EmailTask.objects.create(email=email, requester=sender, state=state)


def run_fan_out(task) -> list[int]:
    return [job.id for job in pipeline.fan_out(task_id=task.pk)]


def staff(course_id: str, user) -> "api.CourseAccess":
    """The checked access a view hands the services; raises as the view would refuse."""
    return api.staff_access(user=user, course_id=course_id)


def recipient_rows(**audience) -> list[dict]:
    """Every recipient once, in user-id order, as rows: what the keyset pages add up to."""
    pages = recipients.recipient_pages(**audience)
    return [{"pk": r.user_id, "email": r.email, "full_name": r.full_name} for p in pages for r in p]


# --- What a send's recipients did: outcomes while sending, feedback after -----------------------


def finished_task(
    course, sender, *, sent: int = 0, state=EmailTask.SUCCESS, subject: str = ""
) -> EmailTask:
    """A send that ended, with one batch that counts ``sent`` messages."""
    task = make_task(course, sender, state=state)
    if subject:
        CourseEmail.objects.filter(pk=task.email_id).update(subject=subject)
    now = timezone.now()
    EmailTask.objects.filter(pk=task.pk).update(started_at=now, finished_at=now, total=sent)
    Batch.objects.create(task=task, seq=0, user_ids=[], state=Batch.DONE, sent=sent)
    task.refresh_from_db()
    return task


def record_outcome(
    task, user, *, status=RecipientOutcome.FAILED, code=None, detail=""
) -> RecipientOutcome:
    """A failed or skipped recipient, counted on the task's first batch as the pipeline does."""
    batch = task.batches.order_by("seq").first()
    Batch.objects.filter(pk=batch.pk).update(**{status: F(status) + 1})
    return RecipientOutcome.objects.create(
        task=task, batch=batch, user=user, status=status, code=code, detail=detail
    )


def record_feedback(
    task,
    user,
    *,
    kind=FeedbackEvent.HARD_BOUNCE,
    status_code="5.1.1",
    diagnostic="550 5.1.1 unknown user",
    source="dsn",
) -> FeedbackEvent:
    """Something that came back for a send, counted on the task as the feedback service does."""
    event = FeedbackEvent.objects.create(
        kind=kind, dedupe_key=f"test-{next(_numbers)}", address=user.email, user=user, task=task,
        course_id=task.email.course_id, source=source, status_code=status_code,
        diagnostic=diagnostic,
    )  # fmt: skip
    # As feedback counts them: a soft bounce is not (yet) a bounce of the send.
    counter = {FeedbackEvent.HARD_BOUNCE: "bounced", FeedbackEvent.COMPLAINT: "complained"}.get(
        kind
    )
    if counter:
        EmailTask.objects.filter(pk=task.pk).update(**{counter: F(counter) + 1})
    return event
