"""Header values made safe and put on the wire: injection refused, RFC 2047 encoded words,
IDNA domains, display names quoted or encoded, lines folded at 78 columns. ``encode_address``
and ``encode_header_value`` run per recipient (To, a personal Subject), so they stay cheap.
"""

import base64
import re
from email.utils import quote

from ..exceptions import InvalidEmailError

CRLF = "\r\n"
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def refuse_header_injection(**fields: str | None) -> None:
    """Raise InvalidEmailError(field=...) when a value bound for a header has CR, LF or another
    control character: what staff type (subject, from address, names) is refused, not mended."""
    for name, value in fields.items():
        if value and CONTROL_CHARACTERS.search(value):
            raise InvalidEmailError(
                f"The {name.replace('_', ' ')} must be a single line without control characters.",
                field=name,
            )


def one_line(value: str) -> str:
    """Data we do not control (learners' names, course titles) made header-safe."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", value).split())


# 42 bytes make 56 base64 characters; with "=?utf-8?b?" and "?=" a word is 68 characters, so
# "Subject: " and the first word stay within the 78 that RFC 5322 recommends.
ENCODED_WORD_BYTES = 42


def encoded_words(value: str) -> str:
    """RFC 2047 "B" encoded words, folded, never splitting a UTF-8 character. (The email
    package's Header does this too, but at ~60 us a header: too slow per recipient.)"""
    raw = value.encode("utf-8")
    words, start = [], 0
    while start < len(raw):
        end = min(start + ENCODED_WORD_BYTES, len(raw))
        while end < len(raw) and raw[end] & 0xC0 == 0x80:  # a continuation byte: step back
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(raw[start:end]).decode('ascii')}?=")
        start = end
    return f"{CRLF} ".join(words)


ATEXT_WORD = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]*\Z")  # RFC 5322 atext


# A longer word is encoded: encoded words can be folded, a plain word cannot.
LONGEST_PLAIN_WORD = 66


def _stays_plain(word: str, *, phrase: bool) -> bool:
    if "=?" in word or not word.isascii() or len(word) > LONGEST_PLAIN_WORD:
        return False
    return bool(ATEXT_WORD.match(word)) if phrase else True


def _segments(value: str, *, phrase: bool) -> list[tuple[bool, str]]:
    """Words grouped into runs: (encode this run?, its text). Spaces between runs stay plain,
    because whitespace between two encoded words is dropped by decoders."""
    segments: list[tuple[bool, str]] = []
    for word in value.split(" "):
        encode = not _stays_plain(word, phrase=phrase)
        if encode and segments and segments[-1][0]:
            segments[-1] = (True, f"{segments[-1][1]} {word}")
        else:
            segments.append((encode, word))
    return segments


def _fold(pieces: list[str], start: int) -> str:
    """Join with spaces, breaking the line (CRLF + space) where a piece would pass 78 columns."""
    folded, width = "", start
    for piece in pieces:
        head, _, _ = piece.partition(CRLF)
        if folded:
            fits = width + 1 + len(head) <= 78
            folded, width = folded + (" " if fits else CRLF + " "), (width + 1 if fits else 1)
        folded += piece
        width = width + len(piece) if CRLF not in piece else len(piece.rsplit(CRLF, 1)[1])
    return folded


def encode_header_value(value: str, *, phrase: bool = False, start: int = 10) -> str:
    """A header value as it goes on the wire: ASCII as it is, non-ASCII runs of words RFC 2047
    encoded, folded. ``phrase``: a display name, where only atoms may stay plain."""
    if not phrase and value.isascii() and "=?" not in value and len(value) < 900:
        return value
    segments = _segments(value, phrase=phrase)
    pieces = [encoded_words(text) if encode else text for encode, text in segments]
    return _fold(pieces, start)


# RFC 5321's limits: 64 octets of local part, 254 of address (256 with the angle brackets).
MAX_LOCAL_PART = 64
MAX_ADDRESS = 254
# A dot-atom, or a quoted string without backslashes; non-ASCII allowed (SMTPUTF8). No space,
# control character, "<", ">", "," or "@" outside the quotes: any of them lets an address
# end the envelope's <...> early and add parameters (NOTIFY=, ORCPT=) or another recipient.
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\U0010ffff-]+"
QUOTED = r'"[!#-\[\]-~\x80-\U0010ffff]*"'  # printable ASCII but space, '"' and "\"
LOCAL_PART = re.compile(rf"(?:{ATOM}(?:\.{ATOM})*|{QUOTED})\Z")
DOMAIN_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


def _not_an_address(address: str, why: str) -> InvalidEmailError:
    shown = one_line(address)[:100]
    return InvalidEmailError(f"{shown!r} is not an email address ({why}).", field="to")


def _ascii_domain(domain: str, address: str) -> str:
    try:
        ascii_domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise _not_an_address(address, "its domain cannot be encoded") from error
    if not all(DOMAIN_LABEL.match(label) for label in ascii_domain.split(".")):
        raise _not_an_address(address, "its domain is not a host name")
    return ascii_domain


def idna_address(address: str) -> str:
    """The address with its domain in IDNA (ASCII), after a strict check: it goes into the
    envelope (MAIL FROM, RCPT TO) as it is, so anything that could end ``<...>`` early or add a
    parameter is refused with InvalidEmailError(field="to"), never sent."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise _not_an_address(address, "no local part and domain")
    if not LOCAL_PART.match(local):
        raise _not_an_address(address, "a space, control or special character outside quotes")
    if len(local.encode()) > MAX_LOCAL_PART:
        raise _not_an_address(address, f"more than {MAX_LOCAL_PART} characters before the @")
    checked = f"{local}@{_ascii_domain(domain, address)}"
    if len(checked.encode()) > MAX_ADDRESS:
        raise _not_an_address(address, f"longer than {MAX_ADDRESS} characters")
    return checked


PHRASE_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
# Longer display names are cut (with an ellipsis): a name is not worth a header line longer
# than SMTP allows (a 5,000-character one was refused with "Line too long").
MAX_DISPLAY_NAME = 100


def quote_phrase(name: str) -> str:
    """An ASCII display name as RFC 5322 wants it: quoted when it has special characters."""
    return f'"{quote(name)}"' if PHRASE_SPECIALS.search(name) else name


def display_phrase(display_name: str, *, start: int) -> str:
    """The display name as it goes on the wire. RFC 2047 encoded when it is not ASCII, when it
    looks like an encoded word itself ("=?": mail readers would decode it, into CR/LF and
    headers too) or when it would not fit on the line (encoded words fold); else quoted."""
    if len(display_name) > MAX_DISPLAY_NAME:
        display_name = display_name[: MAX_DISPLAY_NAME - 1] + "…"
    if display_name.isascii() and "=?" not in display_name:
        phrase = quote_phrase(display_name)
        if start + len(phrase) <= 76:
            return phrase
    return encode_header_value(display_name, phrase=True, start=start)


def plain_address(display_name: str, address: str) -> str:
    """'"Name" <address>' unencoded, for APIs that encode it themselves (Django's EmailMessage)."""
    display_name = one_line(display_name)
    return f'"{quote(display_name)}" <{address}>' if display_name else address


def encode_address(display_name: str, address: str, *, start: int = 6) -> str:
    """A From/To value: the display name quoted or RFC 2047 encoded, then <address>, folded
    before the address when the line would pass 78 columns."""
    display_name = one_line(display_name)
    if not display_name:
        return f"<{address}>"
    phrase = display_phrase(display_name, start=start)
    last_line = phrase.rsplit(CRLF, 1)[-1]
    width = len(last_line) + (start if CRLF not in phrase else 0)
    separator = " " if width + len(address) + 3 <= 78 else CRLF + " "
    return f"{phrase}{separator}<{address}>"
