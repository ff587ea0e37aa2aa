"""Opt-outs during a send through real celery workers (Redis, PostgreSQL, the SMTP sink): the
batches not sent yet skip the learners who opted out in the meantime."""

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from bulk_email import api
from bulk_email.models import Batch, BulkEmailFlag, EmailTask, Optout, RecipientOutcome
from bulk_email.tokens import make_token
from lms_stub.models import CourseAccessRole
from lms_stub.smtp_sink import Fault
from tests.factories import enroll, give_role, make_course, make_user, staff

pytestmark = pytest.mark.integration


def course_of(learners: int):
    flag = BulkEmailFlag.current()
    flag.enabled, flag.require_course_email_auth = True, False
    flag.save()
    course = make_course(display_name="Physique générale — 物理")
    instructor = make_user("prof")
    give_role(instructor, course, CourseAccessRole.INSTRUCTOR)
    people = [make_user(email=f"live{i}@example.com") for i in range(learners)]
    for person in people:
        enroll(person, course)
    return course, instructor, people


def opt_out_three_ways(course, people) -> None:
    dashboard = Client()
    dashboard.force_login(people[0])
    url = reverse("bulk_email:email_settings", args=[course.id])
    dashboard.post(url, {"receive_email": False}, content_type="application/json")
    link = reverse("bulk_email:unsubscribe", args=[make_token(people[1].pk, course.id)])
    Client().post(link, {"action": "unsubscribe"})
    one_click = reverse("bulk_email:one_click", args=[make_token(people[2].pk, course.id)])
    Client().post(one_click, {"List-Unsubscribe": "One-Click"})


def test_learners_opting_out_mid_send_are_skipped_by_later_batches(live_pipeline, smtp_sink):
    course, instructor, people = course_of(30)
    smtp_sink.faults.append(Fault.slow(0.08))  # ~2.5 s for the send: time to opt out
    live_pipeline.start_worker(concurrency=1, BULK_EMAIL_EMAILS_PER_TASK="5")
    with transaction.atomic():
        task = api.send_email(
            access=staff(course.id, instructor), subject="Semaine 1", html="<p>Bonjour</p>",
            targets=["learners"],
        )  # fmt: skip
    smtp_sink.wait_for(1, timeout=60)
    late = people[-3:]  # in the last batch (recipients go in user-id order)
    last_batch = Batch.objects.get(task=task, seq=5)  # fan-out is done: they were put in it
    assert {p.pk for p in late} <= set(last_batch.user_ids)
    opt_out_three_ways(course, late)
    task = live_pipeline.wait_for_state(task, EmailTask.SUCCESS, timeout=120)

    received = {address for m in smtp_sink.messages for address in m.rcpt_tos}
    assert received == {p.email for p in people[:-3]}
    skipped = RecipientOutcome.objects.filter(task=task, status=RecipientOutcome.SKIPPED)
    assert set(skipped.values_list("user_id", flat=True)) == {p.pk for p in late}
    assert [Optout.objects.get(user=p).how for p in late] == [
        Optout.DASHBOARD,
        Optout.LINK,
        Optout.ONE_CLICK,
    ]
    status = api.task_status(task=task)
    assert (status.total, status.sent, status.skipped) == (30, 27, 3)
