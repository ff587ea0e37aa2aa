"""A real, private Postfix for the bounce tests: Debian's binaries unpacked by
scripts/ensure_postfix.sh, its own configuration, queue and log under a temporary folder, one
SMTP listener on a free loopback port. Nothing of the machine's mail system is used.

Mail to ``@lms.test`` (``LOCAL_DOMAIN``) is accepted by smtpd, then fails at delivery, as it
does behind a relay: Postfix's bounce daemon writes the DSN (RFC 3464) to the envelope sender.
``@feedback.test`` (``FEEDBACK_DOMAIN``) is a virtual mailbox domain whose every address lands
in one Maildir (``maildir``), as the feedback poller reads it; ``@learners.test``
(``LEARNER_DOMAIN``) is another, whose mail lands in ``learner_maildir``: learners who exist.
``SOFT_BOUNCE_RECIPIENT`` is deferred (4.2.2) instead: Postfix sends a delay warning
(Action: delayed) after a second.
"""

import email
import email.policy
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from tests import processes

ROOT = Path(__file__).resolve().parent.parent
DIST = Path(os.environ.get("POSTFIX_DIST", ROOT / ".cache" / "postfix"))
ENSURE_SCRIPT = ROOT / "scripts" / "ensure_postfix.sh"

LOCAL_DOMAIN = "lms.test"
FEEDBACK_DOMAIN = "feedback.test"
LEARNER_DOMAIN = "learners.test"
SOFT_BOUNCE_RECIPIENT = f"full@{LOCAL_DOMAIN}"
MAIL_OWNER = "postfix"
MAILDIR_OWNER = "nobody"  # virtual(8) writes the Maildir as this user

# Queue folders as Postfix's own `postfix-files` creates them: (name, mode, group).
QUEUE_FOLDERS = [
    *((name, 0o700, None) for name in ("active", "bounce", "corrupt", "defer", "deferred")),
    *((name, 0o700, None) for name in ("flush", "hold", "incoming", "private", "saved")),
    ("trace", 0o700, None),
    ("maildrop", 0o730, "postdrop"),
    ("public", 0o710, "postdrop"),
]

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
daemon_directory = {dist}/usr/lib/postfix/sbin
command_directory = {dist}/usr/sbin
shlib_directory = {dist}/usr/lib/postfix
meta_directory = {conf}
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C
  LD_LIBRARY_PATH={dist}/usr/lib/postfix
mail_owner = {mail_owner}
setgid_group = postdrop
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = mta.{local}
mydomain = {local}
myorigin = $mydomain
mydestination = $mydomain
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# smtpd accepts any local part (no recipient table), so a bad one bounces after the fact;
# the virtual agent delivers lms.test and knows none of its users: "5.1.1 unknown user".
local_recipient_maps =
local_transport = virtual
alias_maps =
alias_database =
transport_maps = texthash:{conf}/transport
recipient_delimiter = +
virtual_mailbox_domains = {feedback}, {learners}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{conf}/mailboxes
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
# Nothing leaves this machine.
default_transport = error:5.7.1 this test Postfix sends nowhere
relayhost =
# Fast retries and a delay warning after one second, for the soft bounce.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 1s
biff = no
"""

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
# The soft bounce: a delivery that fails for now, with the status a full mailbox gives.
mailbox-full unix - n n - - pipe
  user=nobody argv=/bin/sh -c {{ echo 4.2.2 mailbox full, test soft bounce; exit 75 }}
"""


class PostfixUnavailable(Exception):
    """Postfix cannot run here; the message says why."""


def ensure_binaries() -> Path:
    """Run scripts/ensure_postfix.sh (quick when all is there); the unpacked package."""
    if os.geteuid() != 0:
        raise PostfixUnavailable("Postfix's master runs as root only, and this is not root")
    result = subprocess.run(["bash", str(ENSURE_SCRIPT)], capture_output=True, text=True)
    if result.returncode:
        raise PostfixUnavailable(f"{ENSURE_SCRIPT.name} failed: {result.stderr.strip()}")
    return DIST


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivatePostfix:
    """``start()`` / ``stop()``, or a context manager. ``root`` holds everything it writes."""

    def __init__(self, *, dist: Path = DIST, port: int | None = None) -> None:
        self.dist = dist
        self.port = port or free_port()
        # Not under pytest's tmp folders: those are private to root, and the daemons run as
        # the postfix user.
        self.root = Path(tempfile.mkdtemp(prefix="bulk-email-postfix-"))
        self.root.chmod(0o755)
        self.conf = self.root / "conf"
        self.maildir = self.root / "mail" / "feedback"
        self.learner_maildir = self.root / "mail" / "learners"
        self.log_path = self.root / "maillog"
        self.master_log = self.root / "master.out"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "PrivatePostfix":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- configuration ------------------------------------------------------------------

    def write_configuration(self) -> None:
        maildir_owner = pwd.getpwnam(MAILDIR_OWNER)
        values = {
            "root": self.root, "dist": self.dist, "conf": self.conf, "port": self.port,
            "mail_owner": MAIL_OWNER, "local": LOCAL_DOMAIN, "feedback": FEEDBACK_DOMAIN,
            "learners": LEARNER_DOMAIN,
            "uid": maildir_owner.pw_uid, "gid": maildir_owner.pw_gid,
        }  # fmt: skip
        self.conf.mkdir(mode=0o755)
        (self.conf / "main.cf").write_text(MAIN_CF.format(**values))
        (self.conf / "master.cf").write_text(MASTER_CF.format(**values))
        # The trailing slash makes it a Maildir; "@domain" is the catch-all.
        (self.conf / "mailboxes").write_text(
            f"@{FEEDBACK_DOMAIN} feedback/\n@{LEARNER_DOMAIN} learners/\n"
        )
        transport = f"{SOFT_BOUNCE_RECIPIENT} mailbox-full:\n"
        (self.conf / "transport").write_text(transport)
        shutil.copy(self.dist / "usr/share/postfix/dynamicmaps.cf", self.conf)
        # Postfix waits, re-reading main.cf and texthash tables, until each is a few seconds
        # old (an editor may still be writing it): these are finished, so date them back.
        an_hour_ago = time.time() - 3600
        for path in self.conf.iterdir():
            os.utime(path, (an_hour_ago, an_hour_ago))
        self.make_folders(maildir_owner)

    def make_folders(self, maildir_owner: pwd.struct_passwd) -> None:
        owner = pwd.getpwnam(MAIL_OWNER)
        queue = self.root / "queue"
        (queue / "pid").mkdir(parents=True, mode=0o755)
        for name, mode, group in QUEUE_FOLDERS:
            (queue / name).mkdir(mode=mode)
            shutil.chown(queue / name, owner.pw_name, group or owner.pw_gid)
            (queue / name).chmod(mode)
        (self.root / "data").mkdir(mode=0o700)
        shutil.chown(self.root / "data", owner.pw_name, owner.pw_gid)
        (self.root / "mail").mkdir(mode=0o755)
        shutil.chown(self.root / "mail", maildir_owner.pw_uid, maildir_owner.pw_gid)

    # --- processes ----------------------------------------------------------------------

    def start(self, timeout: float = 10) -> None:
        self.write_configuration()
        master = self.dist / "usr/lib/postfix/sbin/master"
        env = {"LD_LIBRARY_PATH": str(self.dist / "usr/lib/postfix")}
        # -d: stay in the foreground, so stop() can signal it; -c: this configuration only.
        command = [str(master), "-d", "-c", str(self.conf)]
        self.process = processes.start(command, env=env, log_path=self.master_log)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise PostfixUnavailable(f"Postfix did not start:\n{self.logs()}")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                return connection.recv(100).startswith(b"220")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to the master's process group: master stops its daemons, then itself."""
        if self.process is not None:
            processes.stop(self.process, timeout=10)
            self.process = None

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self) -> str:
        parts = []
        for path in (self.master_log, self.log_path):
            text = path.read_text(errors="replace") if path.exists() else "(none)"
            parts.append(f"--- {path}:\n{text[-6000:]}")
        return "\n".join(parts)

    # --- what a test reads --------------------------------------------------------------

    def messages(self, maildir: Path | None = None) -> list[EmailMessage]:
        """The messages waiting in ``maildir`` (the feedback Maildir unless given)."""
        folder = (maildir or self.maildir) / "new"
        paths = sorted(folder.iterdir()) if folder.exists() else []
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths
        ]

    def messages_to(self, address: str) -> list[EmailMessage]:
        """The Maildir's messages delivered to ``address`` (its Delivered-To)."""
        return [m for m in self.messages() if m["Delivered-To"] == address]

    def wait_for_messages(self, address: str, count: int = 1, timeout: float = 10) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages_to(address)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(
            f"{count} message(s) to {address} expected in {self.maildir} within {timeout} s, "
            f"found {len(self.messages_to(address))}:\n{self.logs()}"
        )
