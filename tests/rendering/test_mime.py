import pytest

from bulk_email import rendering
from bulk_email.rendering import Recipient, render_message
from bulk_email.rendering.mime import BULK_HEADERS
from tests.messages import EmailData, prepare
from tests.rendering.mail import LEARNER, parse, rendered_mail


def test_the_message_is_multipart_alternative_with_text_then_html():
    message = rendered_mail()
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_bulk_headers_are_present():
    message = rendered_mail()
    assert message["Precedence"] == "bulk"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Date"].datetime is not None
    assert "<EPFL.Phys101.2026.lms.example.com>" in message["List-Id"]
    assert "Physique générale — 物理" in str(message["List-Id"])


def test_the_email_message_form_carries_the_same_headers():
    message = render_message(prepare(), LEARNER).as_email_message().message()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "one-click" in message["List-Unsubscribe"]


@pytest.mark.parametrize(
    ("data", "stuffed"),
    [
        (b"no dots\r\nat line starts.\r\n", b"no dots\r\nat line starts.\r\n"),
        (b".first\r\nx\r\n.\r\n", b"..first\r\nx\r\n..\r\n"),
        (b"a\r\n..b\r\n", b"a\r\n...b\r\n"),
        (b"a\rb\r\n.c\n.d", b"a\rb\r\n..c\n..d"),
    ],
)
def test_dot_stuffing_doubles_only_leading_dots(data, stuffed):
    assert rendering.dot_stuffed(data) == stuffed


def test_the_stuffed_bytes_are_the_message_dot_stuffed():
    dotted = EmailData(html_message="<p>" + "a" * 75 + ".b</p>\n<p>.c</p>", text_message=".t")
    recipient = Recipient(7, "l@example.com", "." + "ü" * 30 + ".name")
    message = render_message(prepare(dotted), recipient)
    stuffed = message.as_stuffed_bytes()
    assert stuffed == rendering.dot_stuffed(message.as_bytes()) != message.as_bytes()


def test_both_forms_of_a_message_carry_every_bulk_header():
    message = render_message(prepare(), LEARNER)
    raw, django_form = parse(message.as_bytes()), message.as_email_message().message()
    for name, value in BULK_HEADERS.items():
        assert raw[name] == django_form[name] == value


def test_the_header_lines_keep_their_order_on_the_wire():
    head = render_message(prepare(), LEARNER).as_bytes().split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0].decode() for line in head.split(b"\r\n") if line[:1] != b" "]
    assert names == [
        "From", "List-Unsubscribe-Post", "List-Id", "Precedence", "Auto-Submitted",
        "MIME-Version", "Content-Type", "Subject", "To", "Date", "Message-ID", "List-Unsubscribe",
    ]  # fmt: skip
