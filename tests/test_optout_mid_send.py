"""Opt-outs made while a send is running take effect for the batches not sent yet: the
pipeline's services run in this process against the SMTP sink, and the learners opt out
through the real pages (dashboard endpoint, footer link, one-click from a received message)."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from bulk_email import pipeline
from bulk_email.models import EmailTask, Optout, RecipientOutcome, TaskCounts
from bulk_email.tokens import make_token
from tests.factories import (
    course_with_learners,
    make_email,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def batches_of_two(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "EMAILS_PER_TASK": 2, "BATCH_LEASE_SECONDS": 60}


@pytest.fixture
def course_and_learners():
    return course_with_learners(6, display_name="Physique générale — 物理")


def start_send(course, instructor) -> tuple[EmailTask, list[int]]:
    email = make_email(course.id, sender=instructor, targets=("learners",), subject="Semaine 1")
    task = EmailTask.objects.create(email=email, requester=instructor, state=EmailTask.PENDING)
    return task, [job.id for job in pipeline.fan_out(task_id=task.pk)]


def received_by(sink) -> list[str]:
    return [address for message in sink.messages for address in message.rcpt_tos]


def opt_out_on_the_dashboard(learner, course) -> None:
    client = Client()
    client.force_login(learner)
    url = reverse("bulk_email:email_settings", args=[course.id])
    response = client.post(url, {"receive_email": False}, content_type="application/json")
    assert response.status_code == 200


def opt_out_by_the_footer_link(learner, course) -> None:
    url = reverse("bulk_email:unsubscribe", args=[make_token(learner.pk, course.id)])
    assert Client().post(url, {"action": "unsubscribe"}).status_code == 200


def one_click_from(message) -> None:
    """What a mail provider does with the List-Unsubscribe header of a received message."""
    header = str(message.parsed()["List-Unsubscribe"])
    path = "/" + re.search(r"<https?://[^/>]+/([^>]+)>", header).group(1)
    assert Client().post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200


def test_learners_who_opt_out_mid_send_are_skipped_by_the_remaining_batches(
    batches_of_two, smtp_settings, smtp_sink, course_and_learners
):
    course, instructor, learners = course_and_learners
    task, batch_ids = start_send(course, instructor)
    assert len(batch_ids) == 3
    pipeline.send_batch(batch_id=batch_ids[0])  # learners 0 and 1 reached
    opt_out_on_the_dashboard(learners[2], course)
    opt_out_by_the_footer_link(learners[5], course)
    for batch_id in batch_ids[1:]:
        pipeline.send_batch(batch_id=batch_id)

    assert received_by(smtp_sink) == [learners[i].email for i in (0, 1, 3, 4)]
    skipped = RecipientOutcome.objects.filter(task=task, status=RecipientOutcome.SKIPPED)
    assert sorted(skipped.values_list("user_id", flat=True)) == [learners[2].pk, learners[5].pk]
    assert {o.user_id: o.how for o in Optout.objects.all()} == {
        learners[2].pk: Optout.DASHBOARD,
        learners[5].pk: Optout.LINK,
    }
    task.refresh_from_db()
    assert task.state == EmailTask.SUCCESS
    assert task.counts() == TaskCounts(total=6, sent=4, failed=0, skipped=2)


def test_one_click_from_a_received_message_stops_the_next_send(
    batches_of_two, smtp_settings, smtp_sink, course_and_learners
):
    course, instructor, learners = course_and_learners
    _, batch_ids = start_send(course, instructor)
    pipeline.send_batch(batch_id=batch_ids[0])
    first = next(m for m in smtp_sink.messages if m.rcpt_tos == [learners[0].email])
    one_click_from(first)
    assert Optout.objects.get(user=learners[0]).how == Optout.ONE_CLICK

    smtp_sink.messages.clear()
    _, later_batch_ids = start_send(course, instructor)
    for batch_id in later_batch_ids:
        pipeline.send_batch(batch_id=batch_id)
    assert learners[0].email not in received_by(smtp_sink)
    assert len(received_by(smtp_sink)) == 5
