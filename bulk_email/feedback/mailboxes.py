"""The mailboxes ``poll_feedback`` reads: an IMAP folder over TLS (FEEDBACK_IMAP) or a local
Maildir (FEEDBACK_MAILDIR). Both give the same three things: the messages waiting (at most
``limit``), each one's raw bytes, and ``done(key)``, which takes a message out of the waiting
set for good once its feedback is recorded (docs/feedback.md).

Waiting / done:
- IMAP: every message of the folder not flagged \\Deleted. Done: copied to
  ``processed_folder`` when one is set, and flagged \\Seen \\Deleted; the session's done
  messages are expunged when it ends (UID EXPUNGE, RFC 4315, where the server has it).
- Maildir: every message in new/ and cur/ of the folder itself. Done: moved into its
  Maildir++ sub-folder ``.Processed`` (cur/, flagged seen), kept for an operator to read.
"""

import imaplib
import mailbox
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import app_settings
from ..exceptions import BulkEmailConfigurationError, BulkEmailError

IMAP_DEFAULTS = {
    "port": None,  # 993 with "ssl", 143 with "starttls"
    "folder": "INBOX",
    "ssl": True,  # TLS from the first byte (IMAPS)
    "starttls": False,  # plain connection upgraded by STARTTLS; with "ssl": False only
    "processed_folder": "",  # a folder handled mail is copied to first; "": none
    "ca_file": None,  # a CA bundle to trust instead of the system's (a private CA)
    "timeout": 30,  # seconds, for the connection and each command
}
IMAP_REQUIRED = ("host", "user", "password")
PROCESSED_MAILDIR_FOLDER = "Processed"
# A UID as the server sends it; anything else in a SEARCH answer is ignored.
UID = re.compile(rb"^\d+$")


class MailboxError(BulkEmailError, OSError):
    """The mailbox cannot be read now (unreachable, refused login, no such folder); the
    message says which and why, with no password in it."""

    code = "mailbox"


@dataclass(frozen=True)
class Letter:
    """One waiting message: its key in the mailbox and its bytes as they came."""

    key: str
    raw: bytes


# --- Which mailbox the settings name ----------------------------------------------------------


def configured_mailbox() -> "ImapMailbox | MaildirMailbox":
    """The mailbox of FEEDBACK_IMAP or FEEDBACK_MAILDIR (exactly one must be set)."""
    problems = configuration_problems()
    if problems:
        raise BulkEmailConfigurationError(" ".join(problems))
    imap = app_settings.get("FEEDBACK_IMAP")
    if imap:
        return ImapMailbox(**imap_settings(imap))
    return MaildirMailbox(Path(app_settings.get("FEEDBACK_MAILDIR")))


def configuration_problems() -> list[str]:
    """What is wrong with FEEDBACK_IMAP / FEEDBACK_MAILDIR, in words (empty when usable)."""
    imap, maildir = app_settings.get("FEEDBACK_IMAP"), app_settings.get("FEEDBACK_MAILDIR")
    if imap and maildir:
        return [_("Set one of BULK_EMAIL FEEDBACK_IMAP and FEEDBACK_MAILDIR, not both.")]
    if not imap and not maildir:
        return [_("Set BULK_EMAIL FEEDBACK_IMAP or FEEDBACK_MAILDIR to poll for feedback.")]
    return imap_problems(imap) if imap else maildir_problems(maildir)


def imap_problems(imap) -> list[str]:
    if not isinstance(imap, dict):
        return [_("BULK_EMAIL FEEDBACK_IMAP must be a dict (host, user, password, ...).")]
    unknown = sorted(set(imap) - set(IMAP_DEFAULTS) - set(IMAP_REQUIRED))
    missing = [name for name in IMAP_REQUIRED if not imap.get(name)]
    problems = []
    if unknown:
        problems.append(
            ngettext(
                "FEEDBACK_IMAP has an unknown key: %(keys)s.",
                "FEEDBACK_IMAP has unknown keys: %(keys)s.",
                len(unknown),
            )
            % {"keys": ", ".join(unknown)}
        )
    if missing:
        problems.append(_("FEEDBACK_IMAP needs %(keys)s.") % {"keys": ", ".join(missing)})
    if not imap.get("ssl", True) and not imap.get("starttls"):
        problems.append(
            _(
                "FEEDBACK_IMAP must use TLS: keep ssl True (IMAPS) or set starttls True; "
                "the password is never sent in clear."
            )
        )
    for name in ("host", "user", "folder", "processed_folder"):
        if any(character in str(imap.get(name) or "") for character in "\r\n\0"):
            problems.append(
                _("FEEDBACK_IMAP %(name)s must not contain line breaks.") % {"name": name}
            )
        elif not str(imap.get(name) or "").isascii():
            problems.append(
                _(
                    "FEEDBACK_IMAP %(name)s must be ASCII (a folder name in IMAP's modified "
                    "UTF-7, e.g. R&AOk-ponses for Réponses)."
                )
                % {"name": name}
            )
    port, timeout = imap.get("port"), imap.get("timeout", 30)
    if port is not None and not (_is_number(port, int) and 0 < port < 65536):
        problems.append(_("FEEDBACK_IMAP port must be a port number (or None for the default)."))
    if not (_is_number(timeout, int | float) and timeout > 0):
        problems.append(_("FEEDBACK_IMAP timeout must be a positive number of seconds."))
    if imap.get("ssl", True) and imap.get("starttls"):
        problems.append(_("FEEDBACK_IMAP: starttls is for a plain port; set ssl False with it."))
    return problems


def _is_number(value, kind) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def maildir_problems(maildir) -> list[str]:
    path = Path(str(maildir))
    if not all((path / sub).is_dir() for sub in ("new", "cur", "tmp")):
        return [
            _("FEEDBACK_MAILDIR %(path)s is not a Maildir (no new/, cur/ and tmp/ in it).")
            % {"path": path}
        ]
    return []


def read_limit() -> int:
    """Bytes read of one message: one over MAX_FEEDBACK_MESSAGE_BYTES, enough for
    process_message to see that it is too large."""
    return app_settings.get("MAX_FEEDBACK_MESSAGE_BYTES") + 1


def imap_settings(imap: dict) -> dict:
    values = {**IMAP_DEFAULTS, **imap}
    values["port"] = values["port"] or (993 if values["ssl"] else 143)
    return values


# --- IMAP -------------------------------------------------------------------------------------


class ImapMailbox:
    """One IMAP folder, read over TLS; a context manager (log in, select / expunge, log out)."""

    source = "imap"  # FeedbackEvent.source of what it brings

    def __init__(self, *, host, port, user, password, folder, ssl, starttls,
                 processed_folder, ca_file, timeout) -> None:  # fmt: skip
        self.host, self.port, self.user, self.password = host, int(port), user, password
        self.folder, self.processed_folder = folder, processed_folder
        self.use_ssl, self.starttls, self.ca_file = ssl, starttls, ca_file
        self.timeout = timeout
        self.client: imaplib.IMAP4 | None = None
        self.taken_out: list[str] = []

    @property
    def identity(self) -> str:
        """What names this mailbox for the poll lock: two pollers of it never overlap."""
        return f"imap://{self.user}@{self.host}:{self.port}/{self.folder}"

    def __enter__(self) -> "ImapMailbox":
        self.client = self.checked("connect to", self.connect)
        self.checked(f"log in as {self.user!r} to", self.client.login, self.user, self.password)
        self.checked(f"open folder {self.folder!r} on", self.select)
        if self.processed_folder:
            self.checked(f"create folder {self.processed_folder!r} on", self.create_processed)
        return self

    def create_processed(self) -> None:
        """Make the processed folder when missing, before any message is processed: a COPY
        failing after processing would only bring the message back in the next run."""
        name = imap_quote(self.processed_folder)
        status, answer = self.client.create(name)
        if status == "OK":
            return
        status, listed = self.client.list('""', name)  # refused because it exists?
        if status != "OK" or not any(listed):
            raise imaplib.IMAP4.error(answer_text(answer))

    def __exit__(self, *exc) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            self.expunge(client)  # also after a failure: what was taken out was processed
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass  # flagged messages stay flagged; the next run expunges them

    def connect(self) -> imaplib.IMAP4:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.use_ssl:
            return imaplib.IMAP4_SSL(
                self.host, self.port, ssl_context=context, timeout=self.timeout
            )
        client = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        client.starttls(ssl_context=context)
        return client

    def select(self) -> None:
        status, answer = self.client.select(imap_quote(self.folder))
        if status != "OK":
            raise imaplib.IMAP4.error(answer_text(answer))

    def checked(self, doing: str, call, *args):
        """``call(*args)``, its failures as a MailboxError that says what failed where."""
        try:
            return call(*args)
        except (imaplib.IMAP4.error, OSError, ssl.SSLError, UnicodeError) as error:
            raise MailboxError(
                f"Could not {doing} {self.host}:{self.port}: {describe(error)}"
            ) from error

    # What poll_feedback calls.

    def waiting(self, limit: int) -> Iterator[Letter]:
        for uid in self.checked("search", self.waiting_uids)[:limit]:
            raw = self.checked("fetch a message from", self.fetch, uid)
            if raw is not None:  # expunged meanwhile
                yield Letter(key=uid, raw=raw)

    def waiting_uids(self) -> list[str]:
        status, answer = self.client.uid("SEARCH", None, "UNDELETED")
        if status != "OK":
            raise imaplib.IMAP4.error(answer_text(answer))
        words = b" ".join(part for part in answer if part).split()
        return [word.decode() for word in words if UID.match(word)]

    def fetch(self, uid: str) -> bytes | None:
        # PEEK: reading a message does not mark it seen; done() is what marks it. At most
        # one byte over the size limit: process_message refuses a longer one unread, and a
        # 50 MB message is not downloaded for that.
        status, answer = self.client.uid("FETCH", uid, f"(BODY.PEEK[]<0.{read_limit()}>)")
        if status != "OK":
            raise imaplib.IMAP4.error(answer_text(answer))
        for part in answer:
            if isinstance(part, tuple):
                return part[1]
        return None

    def done(self, key: str) -> None:
        self.checked("mark a message processed on", self.take_out, key)

    def take_out(self, uid: str) -> None:
        """Copied to the processed folder (when set), then flagged \\Seen \\Deleted: from now
        on no run sees it (they search UNDELETED). Expunged together when the session ends:
        one EXPUNGE per message made a run twice as slow."""
        if self.processed_folder:
            self.ok(self.client.uid("COPY", uid, imap_quote(self.processed_folder)))
        self.ok(self.client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen \Deleted)"))
        self.taken_out.append(uid)

    def expunge(self, client: imaplib.IMAP4) -> None:
        """The messages this session took out; only those where the server can (UIDPLUS)."""
        if not self.taken_out:
            return
        if "UIDPLUS" in client.capabilities:
            for start in range(0, len(self.taken_out), 500):  # command lines stay short
                client.uid("EXPUNGE", ",".join(self.taken_out[start : start + 500]))
        else:
            client.expunge()
        self.taken_out = []

    @staticmethod
    def ok(reply) -> None:
        status, answer = reply
        if status != "OK":
            raise imaplib.IMAP4.error(answer_text(answer))


def imap_quote(name: str) -> str:
    """A folder name as an IMAP quoted string (names may hold spaces)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def answer_text(answer) -> str:
    parts = [p.decode(errors="replace") if isinstance(p, bytes) else str(p) for p in answer]
    return " ".join(parts)[:300]


def describe(error: Exception) -> str:
    if isinstance(error, socket.timeout | TimeoutError):
        return "no answer in time"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({error.verify_message})"
    text = error.args[0] if error.args else error
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return str(text)[:300] or type(error).__name__


# --- Maildir ----------------------------------------------------------------------------------


class MaildirMailbox:
    """A local Maildir (what Postfix's virtual or local delivery writes)."""

    source = "maildir"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.maildir: mailbox.Maildir | None = None

    @property
    def identity(self) -> str:
        return f"maildir://{os.path.realpath(self.path)}"

    def __enter__(self) -> "MaildirMailbox":
        problems = maildir_problems(self.path)
        if problems:
            raise MailboxError(problems[0])
        self.maildir = mailbox.Maildir(self.path, factory=None, create=False)
        self.maildir.add_folder(PROCESSED_MAILDIR_FOLDER)  # made when missing
        return self

    def __exit__(self, *exc) -> None:
        self.maildir = None

    def waiting(self, limit: int) -> Iterator[Letter]:
        keys = sorted(self.maildir.keys())[:limit]  # delivery order: keys start with the time
        for key in keys:
            try:
                with self.maildir.get_file(key) as file:
                    yield Letter(key=key, raw=file.read(read_limit()))
            except (KeyError, FileNotFoundError):
                continue  # taken out meanwhile

    def done(self, key: str) -> None:
        """Move it into .Processed/cur/, seen. One rename: no copy is ever left behind."""
        # _lookup: the file's path under the Maildir (new/KEY or cur/KEY:2,FLAGS), which
        # mailbox.Maildir keeps and offers no public name for.
        source = self.path / self.maildir._lookup(key)
        target = self.path / f".{PROCESSED_MAILDIR_FOLDER}" / "cur" / f"{key}:2,S"
        os.rename(source, target)
