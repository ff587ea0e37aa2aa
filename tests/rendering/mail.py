"""Rendered mail read back as a mail client reads it, and the learner most tests mail."""

from email import policy
from email.parser import BytesParser

from bulk_email.rendering import Recipient, render_message
from tests.messages import prepare

LEARNER = Recipient(user_id=12, email="ana@example.com", full_name="Ána <Ö'Brien> & 李")


def parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def rendered_mail(email=None, recipient=LEARNER):
    return parse(render_message(prepare(email), recipient).as_bytes())


def parts(message) -> dict[str, str]:
    """Decoded parts by type; line ends as a mail client shows them (the wire has CRLF)."""
    return {
        part.get_content_type(): part.get_content().replace("\r\n", "\n")
        for part in message.iter_parts()
    }
