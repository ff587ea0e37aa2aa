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
