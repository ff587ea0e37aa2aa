"""Real-world bounces (flufl.bounce's samples, tests/feedback/samples/) through
process_message: each reaches bulk_email at the VERP address of the learner it names.
Permanent failures suppress that address. Temporary failures are counted."""

from pathlib import Path

import pytest

from bulk_email.feedback import process_message
from bulk_email.models import FeedbackEvent, Suppression
from bulk_email.tokens import BOUNCE, feedback_address
from tests.factories import make_course, make_task, make_user
from tests.feedback.mail import FEEDBACK_DOMAIN

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).parent / "samples"

PERMANENT = {
    "aol_01.txt": "screenname@aol.com",
    "dsn_01.txt": "userx@example.com",
    "dsn_02.txt": "zzzzz@example.uk",
    "dsn_03.txt": "userx@example.be",
    "dsn_04.txt": "userx@example.ch",
    "dsn_09.txt": "userx@example.com",
    "dsn_13.txt": "userx@example.com",
    "exim_01.txt": "userx@its.example.nl",
    "groupwise_01.txt": "userx@example.EDU",
    "llnl_01.txt": "user1@example.gov",
    "microsoft_01.txt": "userx@example.COM",
    "postfix_01.txt": "xxxxx@local.ie",
    "postfix_04.txt": "userx@mail1.example.com",
    "qmail_01.txt": "userx@example.de",
    "qmail_03.txt": "userx@example.jp",
    "simple_01.txt": "bbbsss@example.com",
    "simple_02.txt": "userx@example.net",
    "smtp32_01.txt": "userx@example.ph",
    "yahoo_01.txt": "userx@example.com",
    "yahoo_11.txt": "bad_user@aol.com",
}
TEMPORARY = {
    "dsn_05.txt": "userx@example.cz",
    "dsn_06.txt": "userx@example.com",
    "dsn_07.txt": "userx@example.nz",
    "dsn_17.txt": "userx@example.fi",
    "simple_03.txt": "userx@example.za",
    "simple_21.txt": "userx@example.com",
}


@pytest.fixture(autouse=True)
def feedback_domain(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": FEEDBACK_DOMAIN}


def deliver(sample: str, address: str):
    """The sample as it reaches bulk_email: at the VERP address of a learner with
    ``address``, who got a message of a send."""
    learner = make_user(email=address)
    task = make_task(make_course(), make_user())
    verp = feedback_address(BOUNCE, learner.pk, task.pk, FEEDBACK_DOMAIN)
    raw = f"Delivered-To: {verp}\n".encode() + (SAMPLES / sample).read_bytes()
    return process_message(raw, source="dsn"), learner, task


def test_every_sample_is_listed():
    listed = {*PERMANENT, *TEMPORARY, "dumbass_01.txt"}
    assert {path.name for path in SAMPLES.glob("*.txt")} == listed


@pytest.mark.parametrize(("sample", "address"), sorted(PERMANENT.items()))
def test_a_permanent_failure_suppresses_the_address_it_names(sample, address):
    result, _, task = deliver(sample, address)
    assert (result.kind, result.outcome) == ("hard_bounce", "suppressed"), result
    assert result.address.lower() == address.lower()  # what flufl.bounce read in it
    assert list(Suppression.objects.values_list("address", "reason")) == [
        (address.lower(), "hard_bounce")
    ]
    task.refresh_from_db()
    assert task.bounced == 1


@pytest.mark.parametrize(("sample", "address"), sorted(TEMPORARY.items()))
def test_a_temporary_failure_is_counted(sample, address):
    result, _, _ = deliver(sample, address)
    assert (result.kind, result.outcome) == ("soft_bounce", "counted"), result
    assert result.address.lower() == address.lower()
    assert not Suppression.objects.exists()
    assert FeedbackEvent.objects.get().kind == "soft_bounce"


def test_a_message_no_detector_recognises_is_ignored():
    result, _, _ = deliver("dumbass_01.txt", "someone@example.com")
    assert result.outcome == "ignored"
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("sample", sorted(PERMANENT))
def test_without_a_token_a_sample_changes_nothing(sample):
    """The samples quote no Message-ID of this site: whose they are is unknown."""
    make_user(email=PERMANENT[sample])
    result = process_message((SAMPLES / sample).read_bytes(), source="dsn")
    assert result.outcome == "ignored"
    assert not Suppression.objects.exists()
