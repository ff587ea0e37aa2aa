"""The development Mailbox: the messages the local SMTP sink saved as .eml files, parsed
with Python's email package for the Mailbox pages."""

import datetime
import email
import re
from dataclasses import dataclass
from email import policy
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

NAME_CHARACTERS = set("0123456789.-")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Summary:
    name: str
    date: datetime.datetime | None
    sender: str
    to: str
    subject: str


@dataclass(frozen=True)
class Message:
    summary: Summary
    headers: list[tuple[str, str]]
    text: str
    html: str
    links: list[str]


def message_names(folder: Path, *, limit: int | None = None) -> list[str]:
    """The message names (file stems), newest first; only the newest ``limit`` if given."""
    if not folder.is_dir():
        return []
    names = sorted((p.stem for p in folder.glob("*.eml")), key=float_prefix, reverse=True)
    return names if limit is None else names[:limit]


def float_prefix(name: str) -> float:
    return float(name.split("-", 1)[0])


def parse(folder: Path, name: str) -> email.message.EmailMessage | None:
    """The message saved under ``name``, or None (unknown or malformed names included)."""
    if not name or set(name) - NAME_CHARACTERS:
        return None  # only sink-made names: no path tricks
    path = folder / f"{name}.eml"
    if not path.is_file():
        return None
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


# What the Mailbox shows of one header at most: a 5,000-character name is still one line.
MAX_HEADER_SHOWN = 500


def shown(value: str) -> str:
    """A header value as one short line: decoded words may hold CR, LF or anything."""
    line = " ".join(CONTROL_CHARACTERS.sub(" ", value).split())
    return line if len(line) <= MAX_HEADER_SHOWN else line[: MAX_HEADER_SHOWN - 1] + "…"


def header_text(message: email.message.EmailMessage, name: str) -> str:
    """The header decoded, or as it came when the email package cannot parse it (an encoded
    word that decodes to CR/LF raises ValueError): any message must show, not answer 500."""
    raw = next((value for key, value in message.raw_items() if key.lower() == name.lower()), "")
    return decoded_or_raw(name, raw) if raw else ""


def decoded_or_raw(name: str, raw: str) -> str:
    # Unfolded first, as the email package does when it reads a header (header_fetch_parse):
    # a folded From with an encoded word in its name is refused with its line break in it.
    unfolded = "".join(raw.splitlines())
    try:
        return shown(str(policy.default.header_factory(name, unfolded)))
    except Exception:  # the email package's parsers raise many kinds on hostile input
        return shown(raw)


def summarize(name: str, message: email.message.EmailMessage) -> Summary:
    return Summary(
        name=name,
        date=message_date(message),
        sender=header_text(message, "From"),
        to=header_text(message, "To"),
        subject=header_text(message, "Subject"),
    )


def message_date(message: email.message.EmailMessage) -> datetime.datetime | None:
    try:
        date = header_text(message, "Date")
        return parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError, IndexError):
        return None


def summarize_names(folder: Path, names: list[str]) -> list[Summary]:
    """The summaries of these messages (one page of the Mailbox), skipping vanished ones."""
    summaries = []
    for name in names:
        message = parse(folder, name)
        if message is not None:
            summaries.append(summarize(name, message))
    return summaries


def read_message(folder: Path, name: str) -> Message | None:
    message = parse(folder, name)
    if message is None:
        return None
    return Message(
        summary=summarize(name, message),
        headers=[(key, decoded_or_raw(key, value)) for key, value in message.raw_items()],
        text=body(message, "plain"),
        html=with_links_in_new_tabs(body(message, "html")),
        links=links_in(body(message, "html")),
    )


def body(message: email.message.EmailMessage, subtype: str) -> str:
    try:
        part = message.get_body(preferencelist=(subtype,))
        wanted = part is not None and part.get_content_subtype() == subtype
        return part.get_content() if wanted else ""
    except Exception:  # a malformed part shows as missing, the rest of the message still shows
        return ""


class LinkCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href") or ""
        if tag == "a" and href.startswith(("http://", "https://")) and href not in self.links:
            self.links.append(href)


def links_in(html: str) -> list[str]:
    """The http(s) links of the HTML part, listed under the frame so they are easy to follow."""
    collector = LinkCollector()
    collector.feed(html)
    return collector.links


def with_links_in_new_tabs(html: str) -> str:
    """Links clicked in the sandboxed frame open as ordinary pages in a new tab."""
    return '<base target="_blank">' + html if html else html
