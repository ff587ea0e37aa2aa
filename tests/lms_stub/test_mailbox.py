"""The development Mailbox shows what the local SMTP sink saved, and only in development."""

import smtplib
from email.message import EmailMessage

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
