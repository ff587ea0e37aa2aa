"""The worker's own messages through a real Postfix: a recipient that does not exist comes
back as Postfix's DSN to the envelope sender bulk_email chose, whose signed token names the
learner and the send (the VERP half of "hear what comes back")."""

import pytest

from bulk_email import sending
from bulk_email.pipeline.steps import BatchSender
from bulk_email.rendering import Recipient
from bulk_email.sending import OutcomeKind
from bulk_email.tokens import BOUNCE, AddressToken, feedback_address, read_feedback_address
from tests.messages import prepare
from tests.postfix import FEEDBACK_DOMAIN, LOCAL_DOMAIN

TASK_ID = 9021


@pytest.fixture
def through_postfix(settings, postfix):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": FEEDBACK_DOMAIN}
    settings.EMAIL_BACKEND = sending.DJANGO_SMTP_BACKEND
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", postfix.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = False, 10
    yield postfix
    sending.close_session()


def test_a_bounce_comes_back_to_the_verp_address_of_its_learner_and_send(through_postfix):
    learner = Recipient(4242, f"nobody@{LOCAL_DOMAIN}", "Nobody")
    [outcome] = BatchSender(prepare(), task_id=TASK_ID).send([learner])
    assert outcome.status is OutcomeKind.SENT  # accepted now, bounced later, as behind a relay

    verp = feedback_address(BOUNCE, learner.user_id, TASK_ID, FEEDBACK_DOMAIN)
    [dsn] = through_postfix.wait_for_messages(verp, timeout=15)
    assert dsn["X-Original-To"] == verp
    assert read_feedback_address(dsn["Delivered-To"]) == AddressToken(BOUNCE, 4242, TASK_ID)
    assert f"rfc822; {learner.email}" in dsn.as_string()  # the DSN's Final-Recipient
