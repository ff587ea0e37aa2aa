"""The wire form of a message: quoted-printable pieces that can be joined, SMTP dot stuffing,
texts cut around the personal slots, the MIME part headers and the fixed header block.

A body is encoded once per email as literals with slots between them; per recipient only
the values that go into the slots are encoded (``SplitText.fill_encoded``).
"""

import binascii
import re
from dataclasses import dataclass

from .headers import CRLF

USER_FULLNAME = "%%USER_FULLNAME%%"
USER_ID = "%%USER_ID%%"
# Internal slots: the recipient's unsubscribe token (footer and headers) and address (an
# Open edX template's {email}).
UNSUBSCRIBE_TOKEN = "%%UNSUBSCRIBE_TOKEN%%"
USER_EMAIL = "%%BULK_EMAIL_USER_EMAIL%%"
# An Open edX template's {user_id} is the database id, while %%USER_ID%% is the anonymous one.
USER_DATABASE_ID = "%%BULK_EMAIL_USER_DATABASE_ID%%"
PERSONAL_SLOTS = (USER_FULLNAME, USER_ID, UNSUBSCRIBE_TOKEN, USER_EMAIL, USER_DATABASE_ID)
PERSONAL_SLOT_PATTERN = re.compile("(" + "|".join(re.escape(s) for s in PERSONAL_SLOTS) + ")")


def with_crlf(text: str) -> str:
    """``text`` with every line end CRLF, as the wire has them."""
    return text.replace("\r\n", "\n").replace("\n", CRLF)


def quoted_printable(text: str) -> bytes:
    """``text`` quoted-printable, CRLF line ends, ending in a line break (a soft one, "=", when
    the text does not end in one) so that encoded pieces can be joined: a message body is
    pre-encoded literals and per-recipient encoded values, one after the other."""
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    encoded = encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # "=\n" soft breaks too
    return encoded if not encoded or encoded.endswith(b"\r\n") else encoded + b"=\r\n"


def dot_stuffed(data: bytes) -> bytes:
    """Lines that start with "." get another, as SMTP's DATA needs (RFC 5321 4.5.2).
    ``bytes.replace`` does what smtplib's ``(?m)^[.]`` substitution does (a line starts after
    "\n") in a tenth of the time, and quoted-printable often puts a dot there."""
    stuffed = data.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


@dataclass(frozen=True)
class SplitText:
    """A text cut around personal slots: (literal, slot, literal, slot, ..., literal)."""

    parts: tuple[str, ...]
    # The same with each literal quoted-printable encoded once (slots left as b"").
    encoded: tuple[bytes, ...] = ()
    # ``encoded`` dot-stuffed for SMTP, once. Every encoded piece ends in a line break, so
    # each starts a line, and stuffing the pieces one by one stuffs their concatenation.
    stuffed: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, text: str) -> "SplitText":
        parts = tuple(PERSONAL_SLOT_PATTERN.split(text))
        encoded = tuple(b"" if i % 2 else quoted_printable(p) for i, p in enumerate(parts))
        return cls(parts, encoded, tuple(map(dot_stuffed, encoded)))

    @property
    def is_personal(self) -> bool:
        return len(self.parts) > 1

    def fill(self, values: dict[str, str]) -> str:
        parts = list(self.parts)
        for index in range(1, len(parts), 2):
            parts[index] = values[parts[index]]
        return "".join(parts)

    def fill_encoded(self, values: dict[str, str], *, stuffed: bool = False) -> bytes:
        """The quoted-printable body with the values encoded into the slots (only the values
        this text has a slot for, each once); dot-stuffed for SMTP when ``stuffed``."""
        parts, encoded = list(self.stuffed if stuffed else self.encoded), {}
        for index in range(1, len(parts), 2):
            slot = self.parts[index]
            if slot not in encoded:
                value = quoted_printable(values[slot])
                encoded[slot] = dot_stuffed(value) if stuffed else value
            parts[index] = encoded[slot]
        return b"".join(parts)


def mime_part_head(subtype: str) -> str:
    return (
        f"Content-Type: text/{subtype}; charset=utf-8{CRLF}"
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
    )


# What marks every copy as bulk mail, whichever way it leaves: the raw SMTP bytes
# (fixed_header_block) or Django's EmailMessage (RenderedMessage.as_email_message).
BULK_HEADERS = {
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",  # RFC 8058: one-click by POST
    "Precedence": "bulk",  # older servers send no vacation replies to it
    "Auto-Submitted": "auto-generated",  # RFC 3834: no automatic replies
}


def fixed_header_block(from_header: str, list_id: str, boundary: str) -> str:
    """The header lines that start every recipient's copy, in their order on the wire."""
    one_click_post, *other_bulk_headers = BULK_HEADERS.items()
    headers = (
        ("From", from_header),
        one_click_post,
        ("List-Id", list_id),  # the place it has always had, so the bytes sent stay the same
        *other_bulk_headers,
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative;{CRLF} boundary="{boundary}"'),
    )
    return "".join(f"{name}: {value}{CRLF}" for name, value in headers)
