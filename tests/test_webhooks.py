"""ESP webhooks end to end: each ESP's documented payloads (the examples of Amazon SES,
SendGrid, Mailgun and Postmark, as django-anymail's own tests carry them) posted to the
site's real anymail endpoints with basic auth, down to the rows written."""

import base64
import hashlib
import hmac
import json
import sys
from email.utils import parseaddr

import pytest
from django.test import Client

from bulk_email.models import EmailTask, FeedbackEvent, Optout, Suppression
from bulk_email.tokens import UNSUBSCRIBE, feedback_address, make_message_id
from tests.factories import make_course, make_task, make_user
from tests.feedback.mail import FEEDBACK_DOMAIN, mail_to

pytestmark = [
    pytest.mark.django_db,
    # anymail 15 keeps SendGrid's webhooks but no longer supports them officially (its #432).
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

WEBHOOK_SECRET = "esp-user:0Bv9-long-random-password"
MAILGUN_SIGNING_KEY = "key-mailgun-webhook-signing-0123456789"
URL = "/webhooks/anymail/{esp}/{kind}/"


@pytest.fixture(autouse=True)
def webhooks_on(settings):
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL,
        "ESP_WEBHOOKS": True,
        "FEEDBACK_DOMAIN": FEEDBACK_DOMAIN,
    }
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
        # Confirming a subscription calls Amazon SNS; the tests never leave the machine.
        "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": False,
    }


@pytest.fixture
def ann():
    return make_user("ann", email="ann@example.com")


@pytest.fixture
def task(ann):
    return make_task(make_course(), make_user("prof"))


def our_message_id(task, user) -> str:
    return make_message_id(task.email_id, user.pk, "lms.example.com")


def basic_auth(secret: str = WEBHOOK_SECRET) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def counts(task) -> tuple[int, int]:
    task = EmailTask.objects.get(pk=task.pk)
    return task.bounced, task.complained


def nothing_written():
    assert not FeedbackEvent.objects.exists()
    assert not Suppression.objects.exists()
    assert not Optout.objects.exists()
    assert set(EmailTask.objects.values_list("bounced", "complained")) <= {(0, 0)}


# --- Amazon SES (SNS notifications) ----------------------------------------------------


def post_sns(ses_event: dict | None, *, kind="tracking", sns_id="19ba9823-d7f2-53c1-860e",
             sns_type="Notification", auth=None, **extra):  # fmt: skip
    """A post as Amazon SNS makes it: JSON as text/plain, its type and id also in headers."""
    message = {
        "Type": sns_type,
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:us-east-1:1234567890:SES_Events",
        "Timestamp": "2018-03-26T17:58:59.675Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE-SIGNATURE==",
        **extra,
    }
    if ses_event is not None:
        message["Message"] = json.dumps(ses_event) + "\n"
    return Client().post(
        URL.format(esp="amazon_ses", kind=kind),
        data=json.dumps(message),
        content_type="text/plain; charset=UTF-8",
        HTTP_X_AMZ_SNS_MESSAGE_ID=sns_id,
        HTTP_X_AMZ_SNS_MESSAGE_TYPE=sns_type,
        **(basic_auth() if auth is None else auth),
    )


def ses_mail(message_id: str | None, recipients: list[str]) -> dict:
    """SES's "mail" object, with the original headers (the identity's "Include original
    headers" setting) when ``message_id`` is given."""
    mail = {
        "timestamp": "2016-01-27T14:59:38.237Z",
        "source": "bounces@lms.example.com",
        "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        "destination": recipients,
    }
    if message_id is not None:
        mail["headersTruncated"] = False
        mail["headers"] = [
            {"name": "From", "value": "Course Staff <courses@lms.example.com>"},
            {"name": "Message-ID", "value": message_id},
            {"name": "Subject", "value": "Week 1"},
        ]
        mail["commonHeaders"] = {"messageId": message_id, "subject": "Week 1"}
    return mail


def ses_bounce(address: str, message_id: str | None, *, bounce_type="Permanent") -> dict:
    """Amazon SES's documented bounce notification (notification-examples.html)."""
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "reportingMTA": "dns; email.example.com",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "status": "5.1.1" if bounce_type == "Permanent" else "4.4.7",
                    "action": "failed",
                    "diagnosticCode": f"smtp; 550 5.1.1 <{address}>... User unknown",
                }
            ],
            "timestamp": "2016-01-27T14:59:44.101Z",
            "feedbackId": "00000138111222aa-44455566-cccc-cccc-cccc-ddddaaaa068a-000000",
        },
        "mail": ses_mail(message_id, [address, "mary@example.com"]),
    }


def ses_complaint(address: str, message_id: str | None) -> dict:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": address}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2016-01-27T14:59:44.101Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
        },
        "mail": ses_mail(message_id, [address]),
    }


def test_an_ses_permanent_bounce_suppresses_and_counts_on_its_send(ann, task):
    response = post_sns(ses_bounce(ann.email, our_message_id(task, ann)))
    assert response.status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.source) == (
        "ann@example.com",
        "hard_bounce",
        "amazon_ses",
    )
    assert suppression.status_code == "5.1.1"
    assert "User unknown" in suppression.diagnostic
    event = FeedbackEvent.objects.get()
    assert (event.kind, event.user_id, event.task_id) == ("hard_bounce", ann.pk, task.pk)
    assert counts(task) == (1, 0)


def test_an_ses_complaint_opts_out_of_the_course_and_suppresses(ann, task):
    assert post_sns(ses_complaint(ann.email, our_message_id(task, ann))).status_code == 200
    assert list(Optout.objects.values_list("user_id", "course_id", "how")) == [
        (ann.pk, task.email.course_id, "complaint")
    ]
    assert Suppression.objects.get().reason == "complaint"
    assert counts(task) == (0, 1)


def test_an_ses_transient_bounce_counts_as_soft(ann, task):
    post_sns(ses_bounce(ann.email, our_message_id(task, ann), bounce_type="Transient"))
    assert list(FeedbackEvent.objects.values_list("kind", "status_code")) == [
        ("soft_bounce", "4.4.7")
    ]
    assert not Suppression.objects.exists()
    assert counts(task) == (0, 0)


def test_the_same_notification_twice_is_recorded_once(ann, task):
    notification = ses_bounce(ann.email, our_message_id(task, ann))
    assert post_sns(notification).status_code == 200
    assert post_sns(notification).status_code == 200  # SNS retries until it hears 200
    assert FeedbackEvent.objects.count() == 1
    assert Suppression.objects.get().count == 1
    assert counts(task) == (1, 0)


def test_without_original_headers_an_ses_bounce_is_attributed_by_address_only(ann, task):
    post_sns(ses_bounce(ann.email, None))
    assert Suppression.objects.get().address == "ann@example.com"
    event = FeedbackEvent.objects.get()
    assert (event.kind, event.user_id, event.task_id) == ("hard_bounce", None, None)
    assert counts(task) == (0, 0)


def test_a_forged_message_id_is_never_attributed_to_a_send(ann, task):
    """Our Message-ID's shape with a made-up signature: the address is suppressed (the ESP,
    authenticated, says it bounced), but no send is counted and nobody is opted out."""
    forged = f"<{'0' * 16}.{task.email_id}.{ann.pk}@lms.example.com>"
    post_sns(ses_complaint(ann.email, forged))
    event = FeedbackEvent.objects.get()
    assert (event.kind, event.user_id, event.task_id) == ("complaint", None, None)
    assert Suppression.objects.get().address == "ann@example.com"
    assert not Optout.objects.exists()
    assert counts(task) == (0, 0)


def test_the_message_id_of_another_learner_attributes_to_that_learner_only(ann, task):
    bob = make_user("bob", email="bob@example.com")
    post_sns(ses_bounce(bob.email, our_message_id(task, bob)))
    event = FeedbackEvent.objects.get()
    assert (event.address, event.user_id) == ("bob@example.com", bob.pk)
    assert not Suppression.objects.filter(address="ann@example.com").exists()


@pytest.mark.bad_input
def test_a_post_without_credentials_is_asked_for_them_and_changes_nothing(ann, task):
    """SNS sends basic auth only after a 401 with WWW-Authenticate (anymail answers so)."""
    response = post_sns(ses_bounce(ann.email, our_message_id(task, ann)), auth={})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="Anymail WEBHOOK_SECRET"'
    nothing_written()


@pytest.mark.bad_input
@pytest.mark.parametrize("secret", ["esp-user:wrong", "esp-user", "", "a:b:c"])
def test_wrong_credentials_are_refused_and_change_nothing(ann, task, secret):
    response = post_sns(ses_bounce(ann.email, our_message_id(task, ann)), auth=basic_auth(secret))
    assert response.status_code == 400  # anymail: SuspiciousOperation
    nothing_written()


@pytest.mark.bad_input
def test_an_sns_post_whose_headers_disagree_with_its_body_changes_nothing(ann, task):
    message = {"Type": "Notification", "MessageId": "a", "Message": "{}"}
    response = Client().post(
        URL.format(esp="amazon_ses", kind="tracking"),
        data=json.dumps(message),
        content_type="text/plain",
        HTTP_X_AMZ_SNS_MESSAGE_ID="b",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
        **basic_auth(),
    )
    assert response.status_code == 400
    nothing_written()


def test_an_sns_subscription_confirmation_writes_nothing(ann, task):
    """With auto-confirm off the operator confirms in the SNS console (docs/feedback.md)."""
    response = post_sns(
        None,
        sns_type="SubscriptionConfirmation",
        Token="2336412f37",
        SubscribeURL="https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        Message="You have chosen to subscribe to the topic ...",
    )
    assert response.status_code == 200
    nothing_written()


def test_events_are_not_heard_while_esp_webhooks_is_off(ann, task, settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "ESP_WEBHOOKS": False}
    assert post_sns(ses_bounce(ann.email, our_message_id(task, ann))).status_code == 200
    nothing_written()


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "recipient",
    [
        "<script>alert(1)</script>",
        "ann@example.com\r\nBcc: all@example.com",
        "not an address",
        "x" * 300 + "@example.com",
        "",
    ],
)
def test_a_hostile_recipient_is_not_suppressed(ann, task, recipient):
    post_sns(ses_bounce(recipient, None))
    assert not Suppression.objects.exists()
    assert not FeedbackEvent.objects.exists()


def test_a_delivery_notification_is_no_feedback(ann, task):
    delivery = {
        "notificationType": "Delivery",
        "mail": ses_mail(our_message_id(task, ann), [ann.email]),
        "delivery": {"recipients": [ann.email], "smtpResponse": "250 ok"},
    }
    assert post_sns(delivery).status_code == 200
    nothing_written()


def test_an_ses_inbound_mail_to_the_mailto_opts_out_of_that_course(ann, task):
    """SES receiving for FEEDBACK_DOMAIN, an SNS action with the message in base64."""
    address = feedback_address(UNSUBSCRIBE, ann.pk, task.pk, FEEDBACK_DOMAIN)
    received = {
        "notificationType": "Received",
        "mail": {
            "source": "ann@example.com",
            "timestamp": "2018-03-30T17:21:51.636Z",
            "messageId": "jili9m351il3gkburn7o2f0u6788stij94c8ld01",
            "destination": [address],
        },
        "receipt": {
            "recipients": [address],
            "action": {"type": "SNS", "topicArn": "arn:aws:sns:x", "encoding": "BASE64"},
            "spamVerdict": {"status": "PASS"},
        },
        "content": base64.b64encode(mail_to(address)).decode("ascii"),
    }
    assert post_sns(received, kind="inbound").status_code == 200
    assert list(Optout.objects.values_list("user_id", "course_id", "how")) == [
        (ann.pk, task.email.course_id, "mailto")
    ]
    assert FeedbackEvent.objects.get().source == "amazon_ses_inbound"


# --- SendGrid ---------------------------------------------------------------------------


def post_sendgrid(events: list[dict], auth=None):
    return Client().post(
        URL.format(esp="sendgrid", kind="tracking"),
        data=json.dumps(events),
        content_type="application/json",
        **(basic_auth() if auth is None else auth),
    )


def sendgrid_event(event: str, address: str, smtp_id: str, sg_event_id: str, **fields) -> dict:
    """SendGrid's documented event shape (Event Webhook reference); ``smtp-id`` is the
    Message-ID of the message it relayed (ours, sent over its SMTP relay)."""
    return {
        "email": address,
        "timestamp": 1513299569,
        "smtp-id": smtp_id,
        "event": event,
        "category": "cat facts",
        "sg_event_id": sg_event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **fields,
    }


def test_a_sendgrid_bounce_suppresses_and_counts_on_its_send(ann, task):
    bounce = sendgrid_event(
        "bounce",
        ann.email,
        our_message_id(task, ann),
        "lC0Rc-FuQmKbnxCWxX1jRQ",
        status="5.1.1",
        reason="550 5.1.1 The email account that you tried to reach does not exist.",
        type="bounce",
    )
    assert post_sendgrid([bounce]).status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.reason, suppression.source, suppression.status_code) == (
        "hard_bounce",
        "sendgrid",
        "5.1.1",
    )
    assert counts(task) == (1, 0)


def test_a_sendgrid_spam_report_opts_out_and_suppresses(ann, task):
    report = sendgrid_event("spamreport", ann.email, our_message_id(task, ann), "sg-spam-1")
    post_sendgrid([report])
    assert Optout.objects.get().how == "complaint"
    assert Suppression.objects.get().reason == "complaint"
    assert counts(task) == (0, 1)


def test_sendgrid_deferrals_of_one_message_count_once(ann, task):
    deferred = [
        sendgrid_event(
            "deferred",
            ann.email,
            our_message_id(task, ann),
            f"b_syL5UiTvWC_Ky5L6Bs5Q-{attempt}",
            attempt=str(attempt),
            response="Email was deferred due to the following reason(s): [IPs were throttled]",
        )
        for attempt in (1, 2, 3, 4)
    ]
    post_sendgrid(deferred)
    assert list(FeedbackEvent.objects.values_list("kind", flat=True)) == ["soft_bounce"]
    assert not Suppression.objects.exists()


def test_a_sendgrid_drop_of_a_bounced_address_suppresses_it(ann, task):
    dropped = sendgrid_event(
        "dropped",
        ann.email,
        our_message_id(task, ann),
        "zmzJhfJgAfUSOW80yEbPyw==",
        reason="Bounced Address",
        status="5.0.0",
    )
    post_sendgrid([dropped])
    assert Suppression.objects.get().reason == "hard_bounce"


def test_a_sendgrid_block_is_about_the_message_and_suppresses_nobody(ann, task):
    """SendGrid's Blocks are "an issue with the message itself rather than an issue with
    the recipient's address": recorded as ignored, the address kept."""
    blocked = sendgrid_event(
        "bounce",
        ann.email,
        our_message_id(task, ann),
        "blk-1",
        status="5.7.1",
        reason="550 5.7.1 Message rejected due to local policy",
        type="blocked",
    )
    post_sendgrid([blocked])
    assert list(FeedbackEvent.objects.values_list("kind", flat=True)) == ["ignored"]
    assert not Suppression.objects.exists()
    assert counts(task) == (0, 0)


def test_one_sendgrid_post_of_several_events(ann, task):
    bob = make_user("bob", email="bob@example.com")
    events = [
        sendgrid_event("delivered", ann.email, our_message_id(task, ann), "d1", response="250"),
        sendgrid_event("bounce", bob.email, our_message_id(task, bob), "b1", status="5.1.1"),
        sendgrid_event("open", ann.email, our_message_id(task, ann), "o1"),
    ]
    post_sendgrid(events)
    assert list(Suppression.objects.values_list("address", flat=True)) == ["bob@example.com"]
    assert FeedbackEvent.objects.count() == 1


@pytest.mark.bad_input
def test_a_sendgrid_post_with_a_wrong_secret_changes_nothing(ann, task):
    bounce = sendgrid_event("bounce", ann.email, our_message_id(task, ann), "x", status="5.1.1")
    response = post_sendgrid([bounce], auth=basic_auth("esp-user:guess"))
    assert response.status_code == 400
    assert post_sendgrid([bounce], auth={}).status_code == 400
    nothing_written()


# --- Mailgun ----------------------------------------------------------------------------


def mailgun_signed(event_data: dict, *, key=MAILGUN_SIGNING_KEY, token=None) -> dict:
    """Mailgun's webhook body: event-data and a signature block, HMAC-SHA256 of timestamp +
    token with the webhook signing key (Mailgun's "Securing webhooks")."""
    token = token or hashlib.sha256(json.dumps(event_data).encode()).hexdigest()[:50]
    timestamp = str(int(event_data["timestamp"]))
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()},
        "event-data": event_data,
    }


def mailgun_failed(address: str, message_id: str, *, severity="permanent") -> dict:
    """Mailgun's documented "failed" event; its message-id header without angle brackets."""
    return {
        "event": "failed",
        "severity": severity,
        "reason": "bounce" if severity == "permanent" else "generic",
        "recipient": address,
        "timestamp": 1534110422.389832,
        "log-level": "error",
        "message": {"headers": {"to": address, "message-id": message_id.strip("<>")}},
        "delivery-status": {
            "code": 550 if severity == "permanent" else 450,
            "message": "5.1.1 The email account that you tried to reach does not exist."
            if severity == "permanent"
            else "4.2.0 Recipient address rejected: Greylisted",
        },
    }


def post_mailgun(body: dict, auth=None):
    return Client().post(
        URL.format(esp="mailgun", kind="tracking"),
        data=json.dumps(body),
        content_type="application/json",
        **(basic_auth() if auth is None else auth),
    )


def test_a_mailgun_permanent_failure_suppresses_and_counts_on_its_send(ann, task):
    body = mailgun_signed(mailgun_failed(ann.email, our_message_id(task, ann)))
    assert post_mailgun(body).status_code == 200
    event = FeedbackEvent.objects.get()
    assert (event.kind, event.task_id, event.source, event.status_code) == (
        "hard_bounce",
        task.pk,
        "mailgun",
        "5.1.1",
    )
    assert counts(task) == (1, 0)


def test_a_mailgun_temporary_failure_is_a_soft_bounce(ann, task):
    failed = mailgun_failed(ann.email, our_message_id(task, ann), severity="temporary")
    post_mailgun(mailgun_signed(failed))
    assert FeedbackEvent.objects.get().kind == "soft_bounce"
    assert not Suppression.objects.exists()


def test_a_mailgun_complaint_opts_out(ann, task):
    complained = {
        "event": "complained",
        "id": "ncV2XwymRUKbPek_MIM-Gw",
        "timestamp": 1377214260.049634,
        "recipient": ann.email,
        "message": {"headers": {"message-id": our_message_id(task, ann).strip("<>")}},
    }
    post_mailgun(mailgun_signed(complained))
    assert Optout.objects.get().course_id == task.email.course_id
    assert counts(task) == (0, 1)


@pytest.mark.bad_input
@pytest.mark.parametrize("key", ["key-of-someone-else", ""])
def test_a_mailgun_post_with_a_bad_signature_changes_nothing(ann, task, key):
    body = mailgun_signed(mailgun_failed(ann.email, our_message_id(task, ann)), key=key or "x")
    if not key:
        body["signature"]["signature"] = ""
    assert post_mailgun(body).status_code == 400
    nothing_written()


@pytest.mark.bad_input
def test_a_correctly_signed_mailgun_post_still_needs_the_basic_auth(ann, task):
    body = mailgun_signed(mailgun_failed(ann.email, our_message_id(task, ann)))
    assert post_mailgun(body, auth={}).status_code == 400
    nothing_written()


# --- Postmark ---------------------------------------------------------------------------


def post_postmark(event: dict, auth=None):
    return Client().post(
        URL.format(esp="postmark", kind="tracking"),
        data=json.dumps(event),
        content_type="application/json",
        **(basic_auth() if auth is None else auth),
    )


def postmark_bounce(address: str, *, bounce_type="HardBounce", metadata=None) -> dict:
    """Postmark's documented bounce webhook; its MessageID is Postmark's own."""
    event = {
        "RecordType": "Bounce",
        "ID": 901542550,
        "Type": bounce_type,
        "TypeCode": 1,
        "ServerID": 23,
        "Name": "Hard bounce",
        "MessageID": "2706ee8a-737c-4285-b032-ccd317af53ed",
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": address,
        "From": "courses@lms.example.com",
        "BouncedAt": "2016-04-27T16:28:50.3963933-04:00",
        "Inactive": True,
        "Subject": "Week 1",
    }
    if metadata is not None:
        event["Metadata"] = metadata
    return event


def test_a_postmark_bounce_is_attributed_by_its_metadata(ann, task):
    metadata = {"bulk_email_message_id": our_message_id(task, ann)}
    assert post_postmark(postmark_bounce(ann.email, metadata=metadata)).status_code == 200
    event = FeedbackEvent.objects.get()
    assert (event.kind, event.user_id, event.task_id) == ("hard_bounce", ann.pk, task.pk)
    assert counts(task) == (1, 0)


def test_a_postmark_bounce_without_metadata_suppresses_the_address_only(ann, task):
    post_postmark(postmark_bounce(ann.email))
    assert Suppression.objects.get().source == "postmark"
    assert FeedbackEvent.objects.get().task_id is None
    assert counts(task) == (0, 0)


def test_a_postmark_soft_bounce_is_soft(ann, task):
    post_postmark(postmark_bounce(ann.email, bounce_type="SoftBounce"))
    assert FeedbackEvent.objects.get().kind == "soft_bounce"
    assert not Suppression.objects.exists()


def test_postmarks_bounce_and_its_suppression_notice_count_once(ann, task):
    """Postmark posts a hard bounce twice: as a Bounce and as a SubscriptionChange."""
    metadata = {"bulk_email_message_id": our_message_id(task, ann)}
    post_postmark(postmark_bounce(ann.email, metadata=metadata))
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "2706ee8a-737c-4285-b032-ccd317af53ed",
        "ServerID": 23,
        "MessageStream": "outbound",
        "ChangedAt": "2022-06-05T17:17:32Z",
        "Recipient": ann.email,
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "HardBounce",
        "Metadata": metadata,
    }
    post_postmark(change)
    assert FeedbackEvent.objects.count() == 1
    assert counts(task) == (1, 0)


def test_a_postmark_unsubscribe_opts_out_of_that_course(ann, task):
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "a4909a96-73d7-4c49-b148-a54522d3f7ac",
        "ServerID": 23,
        "ChangedAt": "2022-06-05T17:17:32Z",
        "Recipient": ann.email,
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Metadata": {"bulk_email_message_id": our_message_id(task, ann)},
    }
    post_postmark(change)
    assert list(Optout.objects.values_list("user_id", "course_id")) == [
        (ann.pk, task.email.course_id)
    ]
    assert not Suppression.objects.exists()


@pytest.mark.bad_input
def test_a_postmark_post_without_the_secret_changes_nothing(ann, task):
    assert post_postmark(postmark_bounce(ann.email), auth={}).status_code == 400
    nothing_written()


def test_the_receivers_are_connected_once(ann, task):
    """Connecting again (a second ready(), a test) does not record each event twice."""
    from bulk_email import webhooks

    assert webhooks.connect()
    post_postmark(postmark_bounce(ann.email))
    assert Suppression.objects.get().count == 1


def test_without_anymail_installed_connect_says_so(monkeypatch):
    from bulk_email import webhooks

    monkeypatch.setitem(sys.modules, "anymail.signals", None)
    assert webhooks.connect() is False


# --- Malformed posts from someone holding the secret -------------------------------------

SNS_HEADERS = {"HTTP_X_AMZ_SNS_MESSAGE_ID": "x", "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification"}


def sns_body(message: str) -> str:
    return json.dumps({"Type": "Notification", "MessageId": "x", "Message": message})


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("esp", "body", "headers"),
    [
        ("sendgrid", "not json", {}),
        ("sendgrid", '{"an": "object, not a list"}', {}),
        ("sendgrid", '[{"event": "bounce"}]', {}),  # no address
        ("postmark", "[]", {}),
        ("postmark", '{"RecordType": "Bounce"}', {}),  # no address
        ("postmark", '{"RecordType": "Bounce", "Email": "<b>x</b>"}', {}),
        ("amazon_ses", sns_body("garbage"), SNS_HEADERS),
        ("amazon_ses", sns_body('{"notificationType": "Bounce", "bounce": {}}'), SNS_HEADERS),
    ],
)
def test_a_malformed_post_changes_nothing_and_shows_no_trace(ann, task, esp, body, headers):
    """anymail refuses what it cannot parse with a 500 (the ESP will retry) and passes on
    events without an address; neither writes a row, and no traceback leaves the site."""
    client = Client(raise_request_exception=False)
    response = client.post(
        URL.format(esp=esp, kind="tracking"),
        data=body,
        content_type="application/json",
        **basic_auth(),
        **headers,
    )
    assert response.status_code in (200, 500)
    assert b"Traceback" not in response.content
    nothing_written()


# --- Over real HTTP, as an ESP posts ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_esp_posting_with_the_secret_in_its_url_over_http(live_server, ann, task):
    """The URL form every ESP is given, https://USER:PASSWORD@host/..., through a real HTTP
    server and client (requests sends the URL's credentials as basic auth)."""
    import requests

    host = live_server.url.removeprefix("http://")
    url = f"http://{WEBHOOK_SECRET}@{host}" + URL.format(esp="postmark", kind="tracking")
    metadata = {"bulk_email_message_id": our_message_id(task, ann)}
    response = requests.post(url, json=postmark_bounce(ann.email, metadata=metadata), timeout=10)
    assert response.status_code == 200
    assert FeedbackEvent.objects.get().task_id == task.pk
    assert counts(task) == (1, 0)
    stranger = f"http://esp-user:guess@{host}" + URL.format(esp="postmark", kind="tracking")
    refused = requests.post(stranger, json=postmark_bounce("bob@example.com"), timeout=10)
    assert refused.status_code == 400
    assert not Suppression.objects.filter(address="bob@example.com").exists()


def test_a_mailgun_inbound_mail_to_the_mailto_opts_out_of_that_course(ann, task):
    """A Mailgun route forward()ing mail for FEEDBACK_DOMAIN to the inbound_mime URL."""
    address = feedback_address(UNSUBSCRIBE, ann.pk, task.pk, FEEDBACK_DOMAIN)
    timestamp, token = "1534110422", "a" * 50
    signature = hmac.new(
        MAILGUN_SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    form = {
        "recipient": address,
        "sender": "ann@example.com",
        "body-mime": mail_to(address).decode(),
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
    }
    response = Client().post("/webhooks/anymail/mailgun/inbound_mime/", data=form, **basic_auth())
    assert response.status_code == 200
    assert list(Optout.objects.values_list("user_id", "course_id", "how")) == [
        (ann.pk, task.email.course_id, "mailto")
    ]
    assert FeedbackEvent.objects.get().source == "mailgun_inbound"
    form["signature"] = "0" * 64
    forged = Client().post("/webhooks/anymail/mailgun/inbound_mime/", data=form, **basic_auth())
    assert forged.status_code == 400
    assert FeedbackEvent.objects.count() == 1


# --- The whole loop -------------------------------------------------------------------------


def address(message) -> str:
    return parseaddr(message.to[0])[1]


def test_the_loop_a_send_through_an_esp_its_webhooks_and_the_next_send(settings):
    """A send through anymail's (test) backend, the ESP's bounce and complaint posts carrying
    the metadata each message went out with, the counts on that send, and a next send that
    leaves both addresses out."""
    from django.core import mail

    from bulk_email import pipeline
    from tests.factories import course_with_learners, run_fan_out

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    course, instructor, learners = course_with_learners(3)
    first = make_task(course, instructor)
    for batch_id in run_fan_out(first):
        pipeline.send_batch(batch_id=batch_id)
    sent = {address(m): m.anymail_test_params["metadata"] for m in mail.outbox}
    assert set(sent) == {learner.email for learner in learners}

    bounced, complainer = learners[1], learners[2]
    post_postmark(postmark_bounce(bounced.email, metadata=sent[bounced.email]))
    complaint = {
        **postmark_bounce(complainer.email, metadata=sent[complainer.email]),
        "RecordType": "SpamComplaint",
        "Type": "SpamComplaint",
        "ID": 901542551,
    }
    post_postmark(complaint)
    assert counts(first) == (1, 1)
    assert list(Optout.objects.values_list("user_id", "course_id")) == [(complainer.pk, course.id)]

    mail.outbox.clear()
    second = make_task(course, instructor)
    for batch_id in run_fan_out(second):
        pipeline.send_batch(batch_id=batch_id)
    assert [address(m) for m in mail.outbox] == [learners[0].email]


@pytest.mark.django_db(transaction=True)
def test_the_same_notification_posted_eight_times_at_once_is_recorded_once(live_server, ann, task):
    """SNS retries overlap: eight simultaneous posts of one bounce, through a real threaded
    HTTP server, end as one event, one suppression and one count."""
    import threading

    import requests
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises the whole file)")
    host = live_server.url.removeprefix("http://")
    url = f"http://{WEBHOOK_SECRET}@{host}" + URL.format(esp="amazon_ses", kind="tracking")
    message = {
        "Type": "Notification",
        "MessageId": "sns-1",
        "Message": json.dumps(ses_bounce(ann.email, our_message_id(task, ann))),
    }
    headers = {"x-amz-sns-message-id": "sns-1", "x-amz-sns-message-type": "Notification"}
    statuses, barrier = [], threading.Barrier(8)

    def post():
        barrier.wait()
        statuses.append(requests.post(url, data=json.dumps(message), headers=headers, timeout=30))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in statuses] == [200] * 8
    assert FeedbackEvent.objects.count() == 1
    assert Suppression.objects.get().count == 1
    assert counts(task) == (1, 0)


# --- The receivers (unit tests of webhooks.py) --------------------------------------------


def test_an_event_that_cannot_be_read_is_logged_and_skipped(ann, task, monkeypatch, caplog):
    """One unreadable event must not make the ESP repost it (and its batch) for days."""
    from bulk_email.feedback import esp

    def unreadable(event, esp_name):
        raise ValueError("an event no one foresaw")

    monkeypatch.setattr(esp, "feedback_item", unreadable)
    response = post_sendgrid([sendgrid_event("bounce", ann.email, "<x@y>", "u1", status="5.1.1")])
    assert response.status_code == 200
    assert "SendGrid tracking event could not be recorded; skipped" in caplog.text
    nothing_written()


def test_a_database_error_reaches_anymail_so_the_esp_posts_again(ann, task, monkeypatch):
    from django.db import OperationalError

    from bulk_email.feedback import esp

    def database_gone(item):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(esp, "record_feedback", database_gone)
    bounce = sendgrid_event("bounce", ann.email, our_message_id(task, ann), "d1", status="5.1.1")
    response = Client(raise_request_exception=False).post(
        URL.format(esp="sendgrid", kind="tracking"),
        data=json.dumps([bounce]),
        content_type="application/json",
        **basic_auth(),
    )
    assert response.status_code == 500
    assert b"Traceback" not in response.content
