"""Messages and mailboxes for the feedback poller's tests: a message to deliver, delivery
into a Maildir as an agent does it, and a second IMAP session's view of a Dovecot folder."""

import imaplib
import itertools
import os
import time
from pathlib import Path

from tests.dovecot import PASSWORD, USER


def raw_message(number: int, body: bytes = b"Hello.") -> bytes:
    return (
        (
            f"From: MAILER-DAEMON@mta.test\r\nTo: bounces+t{number}@feedback.test\r\n"
            f"Subject: Undelivered mail {number}\r\nMessage-ID: <m{number}@mta.test>\r\n\r\n"
        ).encode()
        + body
        + b"\r\n"
    )


def folder_uids(dovecot, folder: str = "INBOX") -> list[bytes]:
    """The folder's messages not flagged \\Deleted, seen by a session of its own."""
    client = imaplib.IMAP4_SSL("127.0.0.1", dovecot.port, ssl_context=dovecot.ssl_context())
    client.login(USER, PASSWORD)
    client.select(f'"{folder}"', readonly=True)
    _, [found] = client.uid("SEARCH", None, "UNDELETED")
    client.logout()
    return found.split()


_deliveries = itertools.count(1)


def deliver(path: Path, raw: bytes, *, subdir: str = "new") -> str:
    """Write ``raw`` as a delivery agent does (tmp/, then renamed), bytes untouched."""
    key = f"{time.time_ns()}.P{os.getpid()}Q{next(_deliveries)}.test"
    (path / "tmp" / key).write_bytes(raw)
    name = key if subdir == "new" else f"{key}:2,"
    (path / "tmp" / key).rename(path / subdir / name)
    return key
