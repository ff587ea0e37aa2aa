"""process_message: each kind of message that comes back, and each bad one, end to end
through the tables."""

import pytest

from bulk_email.feedback import process_message
from bulk_email.feedback.record import DUPLICATE, OPTED_OUT, OUTCOME_IGNORED, SUPPRESSED
from bulk_email.models import EmailTask, FeedbackEvent, Optout, Suppression
from bulk_email.tokens import BOUNCE, UNSUBSCRIBE, feedback_address, make_message_id
from tests.factories import make_course, make_task, make_user
from tests.feedback.mail import FEEDBACK_DOMAIN, arf, dsn, mail_to, original_message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def feedback_domain(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": FEEDBACK_DOMAIN}


@pytest.fixture
def ann():
    return make_user("ann", email="ann@example.com")


@pytest.fixture
def task(ann):
    return make_task(make_course(), make_user("prof"))


def verp(user, task) -> str:
    return feedback_address(BOUNCE, user.pk, task.pk, FEEDBACK_DOMAIN)


def mailto(user, task) -> str:
    return feedback_address(UNSUBSCRIBE, user.pk, task.pk, FEEDBACK_DOMAIN)


def nothing_changed():
    """No suppression, no opt-out, no count; the message was counted as ignored."""
    assert not Suppression.objects.exists()
    assert not Optout.objects.exists()
    assert set(EmailTask.objects.values_list("bounced", "complained")) <= {(0, 0)}
    assert set(FeedbackEvent.objects.values_list("kind", flat=True)) <= {"ignored"}
    assert FeedbackEvent.objects.filter(kind="ignored").exists()


# --- Bounces ---------------------------------------------------------------------------


def test_a_permanent_failure_to_the_verp_address_suppresses_its_learner(ann, task):
    result = process_message(dsn(to=verp(ann, task), recipient=ann.email), source="dsn")
    assert (result.kind, result.outcome, result.status_code) == ("hard_bounce", SUPPRESSED, "5.1.1")
    assert (result.user_id, result.task_id) == (ann.pk, task.pk)
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.status_code) == (
        "ann@example.com",
        "hard_bounce",
        "5.1.1",
    )
    assert "User unknown" in suppression.diagnostic
    assert EmailTask.objects.get().bounced == 1


def test_a_delay_warning_counts_and_the_limit_suppresses(ann, task, settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "SOFT_BOUNCE_LIMIT": 2}
    soft = {"to": verp(ann, task), "recipient": ann.email, "action": "delayed", "status": "4.2.2"}
    assert process_message(dsn(**soft), source="dsn").outcome == "counted"
    assert not Suppression.objects.exists()
    assert process_message(dsn(**soft), source="dsn").outcome == SUPPRESSED
    assert Suppression.objects.get().reason == "soft_bounces"
    assert EmailTask.objects.get().bounced == 0


def test_a_failure_with_a_temporary_status_is_soft(ann, task):
    """Given up after days of 4.4.7: "failed", yet the address may well work."""
    message = dsn(to=verp(ann, task), recipient=ann.email, status="4.4.7")
    result = process_message(message, source="dsn")
    assert (result.kind, result.outcome) == ("soft_bounce", "counted")


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded"])
def test_a_success_notice_changes_nothing(ann, task, action):
    message = dsn(to=verp(ann, task), recipient=ann.email, action=action, status="2.0.0")
    assert process_message(message, source="dsn").outcome == OUTCOME_IGNORED
    nothing_changed()


def test_a_bounce_without_token_is_attributed_by_the_quoted_message_id(ann, task):
    original = original_message(task, ann)
    message = dsn(to="postmaster@feedback.example.com", recipient=ann.email, original=original)
    result = process_message(message, source="dsn")
    assert (result.outcome, result.user_id, result.task_id) == (SUPPRESSED, ann.pk, task.pk)
    assert Suppression.objects.get().address == "ann@example.com"


def test_the_same_dsn_twice_changes_nothing_the_second_time(ann, task):
    message = dsn(to=verp(ann, task), recipient=ann.email)
    assert process_message(message, source="dsn").outcome == SUPPRESSED
    assert process_message(message, source="maildir").outcome == DUPLICATE
    assert Suppression.objects.get().count == 1
    assert EmailTask.objects.get().bounced == 1
    assert FeedbackEvent.objects.count() == 1


# --- Complaints ------------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["rfc", "yahoo", "microsoft"])
def test_a_complaint_opts_out_of_the_course_and_suppresses(ann, task, agent):
    report = arf(original=original_message(task, ann), agent=agent)
    result = process_message(report, source="arf")
    assert (result.kind, result.outcome) == ("complaint", SUPPRESSED)
    assert list(Optout.objects.values_list("user_id", "course_id", "how")) == [
        (ann.pk, task.email.course_id, "complaint")
    ]
    assert Suppression.objects.get().reason == "complaint"
    assert EmailTask.objects.get().complained == 1


def test_a_complaint_quoting_only_headers_is_attributed_by_its_message_id(ann, task):
    """Some loops redact the original to its headers and drop Return-Path; the Message-ID
    is still there."""
    original = original_message(task, ann).split(b"\r\n", 1)[1]  # no Return-Path
    head = original.split(b"\r\n\r\n")[0] + b"\r\n\r\n(redacted)\r\n"
    assert process_message(arf(original=head), source="arf").outcome == SUPPRESSED
    assert Optout.objects.get().how == "complaint"


@pytest.mark.parametrize("feedback_type", ["not-spam", "auth-failure", "", "virus"])
def test_a_report_that_is_no_complaint_changes_nothing(ann, task, feedback_type):
    report = arf(original=original_message(task, ann), feedback_type=feedback_type)
    assert process_message(report, source="arf").outcome == OUTCOME_IGNORED
    nothing_changed()


def test_a_complaint_quoting_someone_elses_message_changes_nothing(ann, task):
    foreign = b"From: a@b.example\r\nMessage-ID: <x@b.example>\r\nSubject: hi\r\n\r\nhi\r\n"
    assert process_message(arf(original=foreign), source="arf").outcome == OUTCOME_IGNORED
    nothing_changed()


def test_a_token_for_another_course_changes_nothing(ann, task):
    """The quoted original names one course in its List-Unsubscribe link and a send of
    another course in its Return-Path: one of them was tampered with."""
    other_task = make_task(make_course(), make_user("prof2"))
    original = original_message(task, ann)
    tampered = original.replace(
        f"Return-Path: <{verp(ann, task)}>".encode(),
        f"Return-Path: <{verp(ann, other_task)}>".encode(),
    )
    assert tampered != original
    assert process_message(arf(original=tampered), source="arf").outcome == OUTCOME_IGNORED
    nothing_changed()


# --- Mailed unsubscribes -----------------------------------------------------------------


def test_a_mail_to_the_mailto_opts_out_of_exactly_that_course(ann, task):
    other_course = make_course()
    result = process_message(mail_to(mailto(ann, task)), source="mailto")
    assert (result.kind, result.outcome) == ("unsubscribe", OPTED_OUT)
    assert list(Optout.objects.values_list("user_id", "course_id", "how")) == [
        (ann.pk, task.email.course_id, "mailto")
    ]
    assert not Optout.objects.filter(course_id=other_course.id).exists()
    assert not Suppression.objects.exists()


def test_the_mailto_of_a_real_message_works(ann, task):
    """The address taken from the List-Unsubscribe header bulk_email wrote."""
    original = original_message(task, ann).decode()
    address = original.split("mailto:")[1].split("?")[0]
    assert process_message(mail_to(address), source="mailto").outcome == OPTED_OUT


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Auto-Submitted": "auto-generated"},
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "Vacation"},
        {"Precedence": "bulk"},
        {"Precedence": "auto_reply"},
        {"Precedence": "junk"},
        {"Subject": "Out of Office: Course news"},
        {"Subject": "Automatic reply: Course news"},
        {"Subject": "Réponse automatique : absent"},
        {"Subject": "Abwesenheitsnotiz"},
        {"Return-Path": "<>"},
    ],
)
def test_an_auto_reply_to_the_unsubscribe_address_changes_nothing(ann, task, headers):
    message = mail_to(mailto(ann, task), headers=headers)
    result = process_message(message, source="mailto")
    assert result.outcome == OUTCOME_IGNORED, result
    nothing_changed()


def test_auto_submitted_no_is_a_person(ann, task):
    message = mail_to(mailto(ann, task), headers={"Auto-Submitted": "no"})
    assert process_message(message, source="mailto").outcome == OPTED_OUT


# --- Everything else and bad input -------------------------------------------------------


def test_a_human_reply_to_the_verp_address_changes_nothing(ann, task):
    reply = mail_to(verp(ann, task), subject="Re: Course news", headers={})
    assert process_message(reply, source="dsn").outcome == OUTCOME_IGNORED
    nothing_changed()


def test_a_vacation_notice_to_the_verp_address_changes_nothing(ann, task):
    notice = mail_to(verp(ann, task), subject="Out of office",
                     headers={"Auto-Submitted": "auto-replied"})  # fmt: skip
    assert process_message(notice, source="dsn").outcome == OUTCOME_IGNORED
    nothing_changed()


def test_a_dsn_with_no_token_and_no_message_id_of_ours_changes_nothing(ann, task):
    message = dsn(to="postmaster@feedback.example.com", recipient=ann.email)
    result = process_message(message, source="dsn")
    assert result.outcome == OUTCOME_IGNORED and "no signed token" in result.reason
    nothing_changed()


def forged(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:-4]}aaaa@{domain}"


def truncated(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:-6]}@{domain}"


@pytest.mark.parametrize("damage", [forged, truncated])
def test_a_forged_or_truncated_verp_token_changes_nothing(ann, task, damage):
    message = dsn(to=damage(verp(ann, task)), recipient=ann.email)
    assert process_message(message, source="dsn").outcome == OUTCOME_IGNORED
    nothing_changed()


@pytest.mark.parametrize("damage", [forged, truncated])
def test_a_forged_or_truncated_mailto_token_changes_nothing(ann, task, damage):
    message = mail_to(damage(mailto(ann, task)))
    assert process_message(message, source="mailto").outcome == OUTCOME_IGNORED
    nothing_changed()


def test_a_token_of_another_site_changes_nothing(ann, task, settings):
    address = verp(ann, task)
    settings.SECRET_KEY = "another-site-" + "k" * 50
    assert process_message(dsn(to=address, recipient=ann.email), source="dsn").outcome == (
        OUTCOME_IGNORED
    )
    nothing_changed()


def test_a_forged_message_id_changes_nothing(ann, task):
    genuine = make_message_id(task.email_id, ann.pk, "lms.example.com")
    fake = genuine.replace(genuine[1:5], "ffff" if genuine[1:5] != "ffff" else "0000")
    original = f"Message-ID: {fake}\r\nSubject: x\r\n\r\n".encode()
    message = dsn(to="postmaster@feedback.example.com", recipient=ann.email, original=original)
    assert process_message(message, source="dsn").outcome == OUTCOME_IGNORED
    nothing_changed()


def test_a_message_over_the_size_limit_is_refused_unread(ann, task, settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_FEEDBACK_MESSAGE_BYTES": 10 * 1024 * 1024}
    message = dsn(to=verp(ann, task), recipient=ann.email) + b"x" * (10 * 1024 * 1024)
    result = process_message(message, source="dsn")
    assert result.outcome == OUTCOME_IGNORED and "refused unread" in result.reason
    nothing_changed()


MALFORMED = [
    b"",
    b"\x00\xff\xfe garbage",
    b"Content-Type: multipart/report; report-type=delivery-status\n\nno boundary at all",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\n"
    b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822;\nAction: failed\n"
    b"Status: 5.1.1\n--B--\n",
    b"Content-Type: multipart/report; report-type=feedback-report; boundary=B\n\n--B\n"
    b"Content-Type: message/feedback-report\n\n\n--B\nContent-Type: message/rfc822\n\n--B--",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\n"
    b"Content-Type: message/delivery-status\n\n" + b"X: y\n" * 5000 + b"--B--",
    b"To: =?utf-8?b?////?= <\xff@feedback.example.com>\nSubject: \xc3\x28\n\nbody",
    b"Delivered-To: bounces+zz-zz-zz@feedback.example.com\n\n",
    b"Delivered-To: unsubscribe+" + b"9" * 500 + b"-1-aaaa@feedback.example.com\n\nx",
    b"Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n" * 50,
    # Nested deeper than Python's recursion limit.
    b"Content-Type: multipart/mixed; boundary=a\n\n--a\n" * 3000,
    b"Content-Type: message/rfc822\n\n" * 3000,
]


@pytest.mark.parametrize("raw", MALFORMED, ids=range(len(MALFORMED)))
def test_a_malformed_message_changes_nothing_and_is_counted(raw):
    result = process_message(raw, source="dsn")
    assert result.outcome == OUTCOME_IGNORED
    nothing_changed()


def test_hostile_text_in_a_report_is_stored_as_text(ann, task):
    message = dsn(to=verp(ann, task), recipient=ann.email,
                  diagnostic="smtp; 550 <script>alert(1)</script>\r\nX-Injected: yes")  # fmt: skip
    assert process_message(message, source="dsn").outcome == SUPPRESSED
    assert "<script>" in Suppression.objects.get().diagnostic  # escaped where it is shown
