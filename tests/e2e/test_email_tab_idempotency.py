"""A send is made once however the browser repeats it, in real Chromium: a double click on
Send and on the confirm button, and the same request sent twice (a retry after a lost
answer) carry the compose's one idempotency key, and the server makes one task."""

import json

import pytest
from playwright.sync_api import expect

from bulk_email.models import CourseEmail, EmailTask
from lms_stub.demo import seed_demo
from tests.e2e.test_email_tab import API, open_tab
from tests.e2e.test_email_tab_first_hour import compose

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_double_click_on_send_sends_once(live_server, page):
    seed_demo()
    open_tab(page, live_server)
    compose(page, "Clicked twice", "Only one of me.")
    page.get_by_role("button", name="Send email").dblclick()
    page.locator("#bulk-email-confirm-ok").dblclick()
    expect(page.get_by_role("status")).to_contain_text("was queued for sending")
    page.wait_for_timeout(500)  # time for any second request to land
    assert EmailTask.objects.filter(email__subject="Clicked twice").count() == 1


def test_the_same_send_request_twice_makes_one_send(live_server, page):
    """The network repeats the POST (the first answer was lost): the server sees the same
    body and key twice, answers 201 then 200 with the same task, and sends once."""
    seed_demo()
    open_tab(page, live_server)
    answers = []

    def post_twice(route):
        first = route.fetch()
        again = route.fetch()
        answers.extend([(first.status, first.json()), (again.status, again.json())])
        route.fulfill(response=again)

    page.route(f"**{API}emails/", post_twice)
    compose(page, "Sent over a bad line", "Once is enough.")
    page.get_by_role("button", name="Send email").click()
    page.locator("#bulk-email-confirm-ok").click()
    expect(page.get_by_role("status")).to_contain_text("was queued for sending")
    assert [status for status, _ in answers] == [201, 200]
    assert answers[0][1]["task_id"] == answers[1][1]["task_id"]
    email = CourseEmail.objects.get(subject="Sent over a bad line")
    assert email.tasks.count() == 1
    assert len(email.idempotency_key) == 36, json.dumps(answers)  # a UUID from the browser


def test_the_next_email_gets_a_new_key(live_server, page):
    """After a send the form is empty and a new compose is a new send, not an echo."""
    seed_demo()
    open_tab(page, live_server)
    for subject in ("First of two", "Second of two"):
        compose(page, subject, "Hello.")
        page.get_by_role("button", name="Send email").click()
        page.locator("#bulk-email-confirm-ok").click()
        expect(page.get_by_role("status")).to_contain_text(subject)
        page.get_by_label("Myself").uncheck()
    keys = set(CourseEmail.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == 2 and None not in keys
