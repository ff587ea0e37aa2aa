"""Feedback messages for the tests, written as the senders write them: DSNs (RFC 3464, in
Postfix's layout), complaint reports (ARF, RFC 5965 appendix B, with the User-Agents Yahoo's
and Microsoft's feedback loops use) and mail to the List-Unsubscribe mailto. The original they
quote is a real bulk_email message (``original_message``)."""

import dataclasses
import itertools

from bulk_email.rendering import Recipient, render_message
from tests.messages import UNICODE_COURSE, EmailData, prepare

FEEDBACK_DOMAIN = "feedback.example.com"
_numbers = itertools.count(1)


def original_message(task, user) -> bytes:
    """The message bulk_email sent ``user`` for ``task``, as the receiving MTA stored it:
    Return-Path (the VERP envelope sender) added on top. FEEDBACK_DOMAIN must be set."""
    course_id = task.email.course_id
    course = dataclasses.replace(UNICODE_COURSE, course_id=course_id)
    prepared = prepare(EmailData(pk=task.email_id, course_id=course_id), course)
    rendered = render_message(prepared, Recipient(user.pk, user.email, "Ann"), task_id=task.pk)
    return f"Return-Path: <{rendered.envelope_from}>\r\n".encode() + rendered.as_bytes()


def headers_of(message: bytes) -> bytes:
    return message.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n") + b"\n"


def dsn(*, to: str, recipient: str, action="failed", status="5.1.1",
        diagnostic="smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
        original: bytes = b"", message_id: str | None = None) -> bytes:  # fmt: skip
    """A Postfix-style bounce to ``to`` about ``recipient``, quoting ``original``'s headers."""
    message_id = message_id or f"<{next(_numbers)}.dsn@mta.example.net>"
    quoted = headers_of(original) if original else b"Subject: unknown\n"
    return (
        (
            f"Return-Path: <>\n"
            f"Delivered-To: {to}\n"
            f"X-Original-To: {to}\n"
            f"From: MAILER-DAEMON@mta.example.net (Mail Delivery System)\n"
            f"To: {to}\n"
            f"Subject: Undelivered Mail Returned to Sender\n"
            f"Auto-Submitted: auto-replied\n"
            f"Message-Id: {message_id}\n"
            f"MIME-Version: 1.0\n"
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\n'
            f"\n--B1\nContent-Type: text/plain\n\n"
            f"This is the mail system at host mta.example.net.\n\n"
            f"I'm sorry to have to inform you that your message could not\n"
            f"be delivered to one or more recipients.\n\n"
            f"--B1\nContent-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; mta.example.net\n"
            f"Arrival-Date: Fri,  4 Dec 2026 14:00:00 +0000 (UTC)\n\n"
            f"Final-Recipient: rfc822; {recipient}\n"
            f"Original-Recipient: rfc822;{recipient}\n"
            f"Action: {action}\n"
            f"Status: {status}\n"
            f"Diagnostic-Code: {diagnostic.format(r=recipient)}\n"
            f"\n--B1\nContent-Type: text/rfc822-headers\n\n"
        ).encode()
        + quoted
        + b"\n--B1--\n"
    )


ARF_AGENTS = {
    "rfc": "SomeGenerator/1.0",
    "yahoo": "Yahoo!-Mail-Feedback/2.0",
    "microsoft": "Hotmail FBL",
}


def arf(*, original: bytes, feedback_type="abuse", agent="rfc", to="fbl@feedback.example.com",
        rcpt_to="ann@example.com", message_id: str | None = None) -> bytes:  # fmt: skip
    """A complaint report as RFC 5965's appendix B example lays it out, quoting ``original``
    whole (message/rfc822), as Yahoo's and Microsoft's loops do."""
    message_id = message_id or f"<{next(_numbers)}.arf@feedback.example.org>"
    return (
        (
            f"From: <staff@fbl.example.org>\n"
            f"Date: Fri, 4 Dec 2026 14:40:36 +0000\n"
            f"Subject: FW: Course news\n"
            f"To: <{to}>\n"
            f"Message-ID: {message_id}\n"
            f"MIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=feedback-report;\n"
            f'     boundary="part1_13d.2e68ed54_boundary"\n'
            f"\n--part1_13d.2e68ed54_boundary\n"
            f'Content-Type: text/plain; charset="US-ASCII"\n'
            f"Content-Transfer-Encoding: 7bit\n\n"
            f"This is an email abuse report for an email message received from IP\n"
            f"192.0.2.1 on Fri, 4 Dec 2026 14:00:00 +0000.\n"
            f"\n--part1_13d.2e68ed54_boundary\n"
            f"Content-Type: message/feedback-report\n\n"
            f"Feedback-Type: {feedback_type}\n"
            f"User-Agent: {ARF_AGENTS[agent]}\n"
            f"Version: 1\n"
            f"Original-Mail-From: <bounces@feedback.example.com>\n"
            f"Original-Rcpt-To: <{rcpt_to}>\n"
            f"Arrival-Date: Fri, 4 Dec 2026 14:00:00 +0000\n"
            f"Reporting-MTA: dns; mail.example.org\n"
            f"Source-IP: 192.0.2.1\n"
            f"\n--part1_13d.2e68ed54_boundary\n"
            f"Content-Type: message/rfc822\n"
            f"Content-Disposition: inline\n\n"
        ).encode()
        + original.replace(b"\r\n", b"\n")
        + b"\n--part1_13d.2e68ed54_boundary--\n"
    )


def mail_to(address: str, *, subject="unsubscribe", headers: dict | None = None,
            sender="Ann <ann@example.com>", message_id: str | None = None) -> bytes:  # fmt: skip
    """A message to ``address`` (the mailto of List-Unsubscribe), as a mail client sends it;
    ``headers`` adds or replaces some (Auto-Submitted ...)."""
    fields = {
        "Return-Path": f"<{sender.split('<')[-1].rstrip('>')}>",
        "Delivered-To": address,
        "From": sender,
        "To": address,
        "Subject": subject,
        "Message-ID": message_id or f"<{next(_numbers)}.mua@example.com>",
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=utf-8",
        **(headers or {}),
    }
    head = "".join(f"{name}: {value}\n" for name, value in fields.items() if value is not None)
    return f"{head}\nunsubscribe\n".encode()
