"""process_message on whatever bytes arrive: it never raises, and however a genuine bounce
is damaged, it acts on nobody but the learner its signature names."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_email.feedback import process_message
from bulk_email.feedback.record import DUPLICATE, OPTED_OUT, OUTCOME_IGNORED, SUPPRESSED
from bulk_email.models import Optout, Suppression
from bulk_email.tokens import BOUNCE, feedback_address
from tests.factories import make_course, make_task, make_user
from tests.feedback.mail import FEEDBACK_DOMAIN, dsn

pytestmark = pytest.mark.django_db
OUTCOMES = {SUPPRESSED, "counted", OPTED_OUT, OUTCOME_IGNORED, DUPLICATE}
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@pytest.fixture
def bounce(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": FEEDBACK_DOMAIN}
    ann = make_user("ann", email="ann@example.com")
    make_user("bob", email="bob@example.com")
    task = make_task(make_course(), make_user("prof"))
    verp = feedback_address(BOUNCE, ann.pk, task.pk, FEEDBACK_DOMAIN)
    return dsn(to=verp, recipient="bob@example.com")  # a bounce that names bob, signed for ann


@FUZZ
@given(raw=st.binary(max_size=4000))
def test_any_bytes_end_as_an_outcome(bounce, raw):
    assert process_message(raw, source="fuzz").outcome in OUTCOMES
    assert not Suppression.objects.exists() and not Optout.objects.exists()


@FUZZ
@given(data=st.data())
def test_a_damaged_bounce_acts_on_its_signed_learner_or_nobody(bounce, data):
    raw = bytearray(bounce)
    for _ in range(data.draw(st.integers(1, 20))):
        position = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            raw[position] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[position : position + data.draw(st.integers(1, 200))]
        else:
            raw[position:position] = data.draw(st.sampled_from([b"\n", b"\x00", b"--B1\n", b";"]))
        if not raw:
            break
    result = process_message(bytes(raw), source="fuzz")
    assert result.outcome in OUTCOMES
    assert set(Suppression.objects.values_list("address", flat=True)) <= {"ann@example.com"}
    assert not Optout.objects.exists()
