"""A real Postfix accepts mail for a recipient that does not exist, fails to deliver it, and
sends its own DSN (RFC 3464) to the VERP envelope sender, which lands in the Maildir the
feedback poller reads: the token in the envelope sender comes back."""

import smtplib
from concurrent.futures import ThreadPoolExecutor

from flufl.bounce import all_failures

from tests.postfix import FEEDBACK_DOMAIN, LOCAL_DOMAIN, SOFT_BOUNCE_RECIPIENT

UNKNOWN_RECIPIENT = f"nobody@{LOCAL_DOMAIN}"


def verp(token: str) -> str:
    return f"bounces+{token}@{FEEDBACK_DOMAIN}"


def send(postfix, *, sender: str, recipient: str) -> None:
    message = (
        f"From: Course staff <{sender}>\r\nTo: {recipient}\r\n"
        f"Subject: Week 1 ({sender})\r\n\r\nHello.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as session:
        refused = session.sendmail(sender, [recipient], message.encode())
    # Accepted now, bounced later: the DSN is asynchronous, as behind a relay.
    assert refused == {}


def delivery_status(dsn) -> tuple:
    """The report's per-message fields and its per-recipient field blocks."""
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    [status_part] = [
        p for p in dsn.iter_parts() if p.get_content_type() == "message/delivery-status"
    ]
    per_message, *per_recipient = status_part.get_payload()
    return per_message, per_recipient


def assert_returns_to(dsn, address: str) -> None:
    assert dsn["Delivered-To"] == address
    assert dsn["X-Original-To"] == address
    assert dsn["Return-Path"] == "<>"


def assert_hard_bounce(dsn, *, token: str) -> None:
    assert_returns_to(dsn, verp(token))
    per_message, [recipient] = delivery_status(dsn)
    assert per_message["X-Postfix-Sender"] == f"rfc822; {verp(token)}"
    assert recipient["Final-Recipient"] == f"rfc822; {UNKNOWN_RECIPIENT}"
    assert recipient["Action"] == "failed"
    assert recipient["Status"].startswith("5.")


def test_an_unknown_recipient_is_bounced_to_the_verp_address(postfix):
    send(postfix, sender=verp("abc"), recipient=UNKNOWN_RECIPIENT)

    [dsn] = postfix.wait_for_messages(verp("abc"), timeout=10)

    assert_hard_bounce(dsn, token="abc")
    assert dsn["From"].addresses[0].username == "MAILER-DAEMON"


def test_two_messages_at_once_each_bounce_to_their_own_token(postfix):
    tokens = ["two-1", "two-2"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        sends = [
            pool.submit(send, postfix, sender=verp(token), recipient=UNKNOWN_RECIPIENT)
            for token in tokens
        ]
        [future.result() for future in sends]

    for token in tokens:
        [dsn] = postfix.wait_for_messages(verp(token), timeout=10)
        assert_hard_bounce(dsn, token=token)


def test_a_full_mailbox_comes_back_as_a_delay_warning(postfix):
    send(postfix, sender=verp("soft"), recipient=SOFT_BOUNCE_RECIPIENT)

    [dsn] = postfix.wait_for_messages(verp("soft"), timeout=15)

    assert_returns_to(dsn, verp("soft"))
    _, [recipient] = delivery_status(dsn)
    assert recipient["Final-Recipient"] == f"rfc822; {SOFT_BOUNCE_RECIPIENT}"
    assert recipient["Action"] == "delayed"
    assert recipient["Status"] == "4.2.2"


def test_flufl_bounce_reads_the_postfix_dsn(postfix):
    """The library the feedback code uses finds the permanent failure in Postfix's DSN."""
    send(postfix, sender=verp("flufl"), recipient=UNKNOWN_RECIPIENT)

    [dsn] = postfix.wait_for_messages(verp("flufl"), timeout=10)

    temporary, permanent = all_failures(dsn)
    assert permanent == {UNKNOWN_RECIPIENT.encode()}
    assert temporary == set()
