"""A person signs in and finds their dashboards, in a real browser."""

import pytest

from lms_stub.demo import DEMO_COURSE_ID, seed_demo
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_instructor_signs_in_and_opens_the_instructor_dashboard(live_server, page, screenshot):
    seed_demo()
    log_in(page, live_server, "instructor", "instructor")
    page.get_by_role("link", name="Instructor dashboard").click()
    page.get_by_role("heading", name="Physique générale — 物理").wait_for()
    assert DEMO_COURSE_ID in page.content()
    screenshot("instructor-dashboard")


def test_a_learner_sees_their_course_and_no_instructor_link(live_server, page):
    seed_demo()
    log_in(page, live_server, "learner", "learner")
    assert page.get_by_role("heading", name="Physique générale — 物理").is_visible()
    assert page.get_by_role("link", name="Instructor dashboard").count() == 0
