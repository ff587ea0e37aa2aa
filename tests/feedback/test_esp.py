"""feedback.esp: what each anymail tracking event means, and whose it is (unit tests on
anymail's own event class; tests/test_webhooks.py posts the ESPs' payloads end to end)."""

import pytest
from anymail.signals import AnymailTrackingEvent

from bulk_email.feedback import esp
from bulk_email.feedback.record import COMPLAINT, HARD_BOUNCE, IGNORED, SOFT_BOUNCE, UNSUBSCRIBE
from bulk_email.tokens import make_message_id
from tests.factories import make_course, make_task, make_user


def event(event_type="bounced", recipient="ann@example.com", **fields) -> AnymailTrackingEvent:
    return AnymailTrackingEvent(event_type=event_type, recipient=recipient, **fields)


@pytest.mark.parametrize(
    ("tracking", "expected"),
    [
        (event("bounced"), HARD_BOUNCE),
        (event("deferred"), SOFT_BOUNCE),
        (event("complained"), COMPLAINT),
        (event("unsubscribed"), UNSUBSCRIBE),
        (event("rejected", reject_reason="bounced"), HARD_BOUNCE),
        (event("rejected", reject_reason="invalid"), HARD_BOUNCE),
        (event("rejected", reject_reason="spam"), COMPLAINT),
        (event("rejected", reject_reason="unsubscribed"), UNSUBSCRIBE),
        (event("rejected", reject_reason="blocked"), None),
        (event("rejected", reject_reason="timed_out"), None),
        (event("rejected", reject_reason=None), None),
        (event("delivered"), None),
        (event("opened"), None),
        (event("queued"), None),
        (event("unknown"), None),
    ],
)
def test_what_each_event_type_means(tracking, expected):
    assert esp.event_kind(tracking) == expected


@pytest.mark.parametrize(
    ("raw", "mta_response", "soft"),
    [
        ({"bounce": {"bounceType": "Permanent"}}, None, False),
        ({"bounce": {"bounceType": "Transient"}}, None, True),
        ({"bounce": {"bounceType": "Undetermined"}}, None, True),
        ({"RecordType": "Bounce", "Type": "HardBounce"}, None, False),
        ({"RecordType": "Bounce", "Type": "SoftBounce"}, "smtp;550 5.1.1 x", True),
        ({"RecordType": "Bounce", "Type": "DnsError"}, None, True),
        ({}, "450 4.2.0 Greylisted", True),
        ({}, "550 5.1.1 No such user", False),
        ({}, None, False),
        ("not a mapping", "452 4.2.2 Mailbox full", True),
    ],
)
def test_a_bounce_the_esp_calls_temporary_is_soft(raw, mta_response, soft):
    tracking = event("bounced", esp_event=raw, mta_response=mta_response)
    assert esp.event_kind(tracking) == (SOFT_BOUNCE if soft else HARD_BOUNCE)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"event": "bounce", "type": "blocked", "status": "5.7.1"}, IGNORED),
        ({"event": "bounce", "type": "bounce", "status": "5.1.1"}, HARD_BOUNCE),
        ({"event-data": {"reason": "espblock", "severity": "permanent"}}, IGNORED),
        ({"event-data": {"reason": "suppress-complaint"}}, COMPLAINT),
        ({"event-data": {"reason": "suppress-unsubscribe"}}, UNSUBSCRIBE),
        ({"event-data": {"reason": "suppress-bounce"}}, HARD_BOUNCE),
        ({"event-data": "not a mapping"}, HARD_BOUNCE),
        ({"bounce": {"bounceType": "Transient", "bounceSubType": "ContentRejected"}}, IGNORED),
        ({"bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull"}}, SOFT_BOUNCE),
        ({"RecordType": "Bounce", "Type": "VirusNotification"}, IGNORED),
    ],
)
def test_a_bounce_about_the_message_or_an_earlier_state_is_that(raw, expected):
    assert esp.event_kind(event("bounced", esp_event=raw)) == expected


def test_sendgrids_drop_of_a_spam_reporter_is_a_complaint():
    dropped = {"event": "dropped", "reason": "Spam Reporting Address"}
    assert esp.event_kind(event("rejected", esp_event=dropped, reject_reason="other")) == COMPLAINT
    other = {"event": "dropped", "reason": "Bounced Address"}
    assert esp.event_kind(event("rejected", esp_event=other, reject_reason="bounced")) == (
        HARD_BOUNCE
    )


def test_postmarks_spam_notification_is_a_filters_verdict_not_a_complaint():
    notification = {"RecordType": "Bounce", "Type": "SpamNotification"}
    assert esp.event_kind(event("complained", esp_event=notification)) == IGNORED
    complaint = {"RecordType": "SpamComplaint", "Type": "SpamComplaint"}
    assert esp.event_kind(event("complained", esp_event=complaint)) == COMPLAINT


def test_the_status_code_comes_from_the_esps_field_before_the_reply():
    bounced = [{"emailAddress": "ann@example.com", "status": "5.2.2"}]
    ses = {"bounce": {"bouncedRecipients": bounced}}
    assert esp.status_code(event(esp_event=ses, mta_response="550 5.1.1 x")) == "5.2.2"
    assert esp.status_code(event(esp_event={"status": "5.0.0"})) == "5.0.0"
    assert esp.status_code(event(mta_response="smtp; 550 5.7.1 <a@b> refused")) == "5.7.1"
    assert esp.status_code(event(mta_response="550 no enhanced code")) == ""


def test_the_diagnostic_is_one_bounded_line():
    tracking = event(mta_response="550 5.1.1\r\nBcc: x@example.com\n" + "y" * 2000)
    text = esp.diagnostic(tracking)
    assert "\n" not in text and "\r" not in text
    assert len(text) == esp.MAX_DIAGNOSTIC
    assert esp.diagnostic(event(description="Permanent: General")) == "Permanent: General"


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("ann@example.com", "ann@example.com"),
        ("  <Ann@Example.com> ", "Ann@Example.com"),
        ("ann@example.com\r\nBcc: b@example.com", ""),
        ("<script>@example.com", ""),
        ("ann@example.com, bob@example.com", ""),
        ("no-at-sign", ""),
        ("x" * 300 + "@example.com", ""),
        (None, ""),
        (42, ""),
    ],
)
def test_only_a_plausible_address_is_taken(recipient, expected):
    assert esp.recipient_address(event(recipient=recipient)) == expected


@pytest.mark.django_db
class TestWhoseItIs:
    @pytest.fixture
    def ann(self):
        return make_user("ann", email="ann@example.com")

    @pytest.fixture
    def task(self, ann):
        return make_task(make_course(), make_user("prof"))

    def ours(self, task, user) -> str:
        return make_message_id(task.email_id, user.pk, "lms.example.com")

    def test_our_message_id_names_the_email_and_learner(self, ann, task):
        assert esp.signed_message_ref(event(message_id=self.ours(task, ann))) == (
            task.email_id,
            ann.pk,
        )

    def test_mailguns_message_id_without_angle_brackets_is_ours_too(self, ann, task):
        bare = self.ours(task, ann).strip("<>")
        assert esp.signed_message_ref(event(message_id=bare)) == (task.email_id, ann.pk)

    def test_metadata_and_the_raw_payload_are_read_when_the_message_id_is_the_esps(self, ann, task):
        ours = self.ours(task, ann)
        by_metadata = event(message_id="esp-123", metadata={esp.METADATA_KEY: ours})
        by_smtp_id = event(message_id="esp-123", esp_event={"smtp-id": ours})
        ses = {"mail": {"headers": [{"name": "message-id", "value": ours}]}}
        for tracking in (by_metadata, by_smtp_id, event(esp_event=ses)):
            assert esp.signed_message_ref(tracking) == (task.email_id, ann.pk)

    @pytest.mark.parametrize(
        "candidate",
        [
            "<0000000000000000.1.1@lms.example.com>",
            "<custom-message-ID>",
            "",
            None,
            12345,
            ["<a@b>"],
            "<" + "9" * 2000 + "@x>",
        ],
    )
    def test_anything_not_signed_by_us_names_nobody(self, candidate):
        tracking = event(message_id=candidate, metadata={esp.METADATA_KEY: candidate})
        assert esp.signed_message_ref(tracking) is None

    def test_an_item_carries_the_learner_and_the_send(self, ann, task):
        item = esp.feedback_item(
            event(message_id=self.ours(task, ann), mta_response="550 5.1.1 gone"), "Amazon SES"
        )
        assert (item.kind, item.user_id, item.task_id, item.source) == (
            HARD_BOUNCE,
            ann.pk,
            task.pk,
            "amazon_ses",
        )
        assert (item.address, item.status_code) == ("ann@example.com", "5.1.1")

    def test_an_item_without_our_message_id_is_the_address_alone(self):
        item = esp.feedback_item(event("complained", message_id="esp-1"), "Postmark")
        assert (item.kind, item.user_id, item.task_id) == (COMPLAINT, None, None)

    def test_no_item_for_events_that_are_no_feedback_or_name_nobody(self):
        assert esp.feedback_item(event("delivered"), "Mailgun") is None
        assert esp.feedback_item(event("bounced", recipient="garbage"), "Mailgun") is None


def test_the_dedupe_key_is_per_message_recipient_and_kind():
    def key(tracking, kind=HARD_BOUNCE, address="ann@example.com", source="ses"):
        return esp.dedupe_key(tracking, source, kind, address)

    first = key(event(message_id="m1", event_id="e1"))
    assert first == key(event(message_id="m1", event_id="e2"))  # a second post of it
    assert first == key(event(message_id="m1"), address="ANN@example.com")
    assert first != key(event(message_id="m1"), address="bob@example.com")
    assert first != key(event(message_id="m1"), kind=COMPLAINT)
    assert first != key(event(message_id="m2"))
    assert first != key(event(message_id="m1"), source="postmark")
    assert len(first) == 64


def test_without_ids_the_dedupe_key_is_the_payloads_digest():
    def key(raw):
        return esp.dedupe_key(event(esp_event=raw), "esp", HARD_BOUNCE, "a@b.c")

    assert key({"a": 1, "b": 2}) == key({"b": 2, "a": 1})
    assert key({"a": 1}) != key({"a": 2})


@pytest.mark.parametrize(
    ("name", "source"),
    [("Amazon SES", "amazon_ses"), ("SendGrid", "sendgrid"), ("", "esp"), ("x" * 50, "x" * 32)],
)
def test_the_source_names_the_esp(name, source):
    assert esp.esp_source(name) == source
