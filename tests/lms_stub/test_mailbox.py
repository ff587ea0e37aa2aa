"""The development Mailbox shows what the local SMTP sink saved, and only in development."""

import base64
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

import pytest
from django.urls import reverse

from lms_stub import mailbox
from lms_stub.smtp_sink import SMTPSink


@pytest.fixture
def maildir(tmp_path, settings):
    settings.MAILBOX_DIR = tmp_path
    settings.MAILBOX_ENABLED = True
    return tmp_path


def deliver(maildir, *, subject: str, html: str) -> None:
    """Through the real sink, as the site's worker would."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        "a@example.com",
        "Zoë <z@example.com>",
        subject,
    )
    message.set_content("Plain — текст")
    message.add_alternative(html, subtype="html")
    with SMTPSink(maildir=maildir) as sink, smtplib.SMTP("127.0.0.1", sink.port) as client:
        client.send_message(message)


def test_the_list_and_a_message_with_its_parts_and_links(client, maildir):
    deliver(
        maildir, subject="Bienvenue — 物理", html='<p>Hi <a href="https://x.example/u/1">go</a></p>'
    )
    page = client.get(reverse("mailbox")).content.decode()
    assert "Bienvenue — 物理" in page
    name = mailbox.message_names(maildir, limit=1)[0]
    message_page = client.get(reverse("mailbox_message", args=[name])).content.decode()
    assert "Plain — текст" in message_page and "https://x.example/u/1" in message_page
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in message_page
    frame = client.get(reverse("mailbox_message_html", args=[name]))
    assert (
        "sandbox" in frame["Content-Security-Policy"]
        and "script-src" not in frame["Content-Security-Policy"]
    )
    assert b'<base target="_blank">' in frame.content


@pytest.mark.parametrize("name", ["../../etc/passwd", "nope", "1.0-1; rm"])
def test_unknown_or_crafted_names_are_404(client, maildir, name):
    assert client.get(f"/mailbox/{name}/").status_code == 404


def test_the_mailbox_is_404_outside_development(client, maildir, settings):
    settings.MAILBOX_ENABLED = False
    assert client.get(reverse("mailbox")).status_code == 404


def test_the_list_shows_each_message_once_and_no_python_objects(client, maildir):
    deliver(maildir, subject="Semaine 1", html="<p>x</p>")
    page = client.get(reverse("mailbox")).content.decode()
    assert "Summary(" not in page and "datetime.datetime(" not in page
    assert page.count("Semaine 1") == 1


def deliver_many(maildir, subjects: list[str]) -> None:
    """Through the real sink, one connection, in this order (the last is the newest)."""
    with SMTPSink(maildir=maildir) as sink, smtplib.SMTP("127.0.0.1", sink.port) as client:
        for subject in subjects:
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = (
                "a@x.example",
                "b@x.example",
                subject,
            )
            message["Date"] = formatdate()
            message.set_content("x")
            client.send_message(message)


def test_the_list_is_paged_and_says_how_many_in_all(client, maildir, settings):
    settings.MAILBOX_PAGE_SIZE = 2
    deliver_many(maildir, ["Message 1", "Message 2", "Message 3"])
    first = client.get(reverse("mailbox")).content.decode()
    assert "3 messages in all" in first and "Page 1 of 2" in first
    assert "Message 3" in first and "Message 2" in first and "Message 1" not in first
    second = client.get(reverse("mailbox"), {"page": 2}).content.decode()
    assert "Message 1" in second and "Message 3" not in second and "Page 2 of 2" in second


def deliver_raw(maildir, head: str) -> None:
    raw = f"From: a@example.com\r\n{head}\r\nSubject: Hi\r\n\r\nHello\r\n".encode()
    with SMTPSink(maildir=maildir) as sink, smtplib.SMTP("127.0.0.1", sink.port) as client:
        client.sendmail("a@example.com", ["z@example.com"], raw)


CRLF_BCC = base64.b64encode(b"\r\nBcc: x@y").decode()


@pytest.mark.parametrize(
    "head",
    [
        f"To: =?utf-8?b?{CRLF_BCC}?= <z@example.com>",  # decodes to CR/LF and a header
        f"To: z@example.com\r\nX-Note: =?utf-8?b?{CRLF_BCC}?=",
        "To: =?utf-8?b?!!broken?= <z@example.com>",
        "To: =?utf-8?q?=ZZ?= <z@example.com>",
        "To: " + "\r\n ".join(["Ann Ann Ann"] * 450) + " <z@example.com>",  # 5,400 characters
        "To: <<<@@@>>>\r\nDate: not a date",
    ],
)
def test_any_message_shows_in_the_list_and_on_its_page(client, maildir, head):
    deliver_raw(maildir, head)
    assert client.get(reverse("mailbox")).status_code == 200
    name = mailbox.message_names(maildir, limit=1)[0]
    page = client.get(reverse("mailbox_message", args=[name]))
    assert page.status_code == 200 and "Hello" in page.content.decode()
    assert client.get(reverse("mailbox_message_html", args=[name])).status_code == 200


def test_a_folded_address_with_an_encoded_name_is_shown_decoded(client, maildir):
    # As bulk_email writes a course's From or a learner's To: the name encoded in part,
    # folded before <address>.
    name_word = base64.b64encode("générale — 物理".encode()).decode()
    deliver_raw(maildir, f"To: Physique =?utf-8?b?{name_word}?= Staff\r\n <z@x.example>")
    listed = client.get(reverse("mailbox")).content.decode()
    assert "Physique générale — 物理 Staff &lt;z@x.example&gt;" in listed
    assert "=?utf-8?" not in listed
