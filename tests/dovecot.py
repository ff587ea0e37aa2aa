"""A real, private Dovecot for the feedback poller's IMAP tests: Debian's binaries unpacked by
scripts/ensure_dovecot.sh, its own configuration, state and log under a temporary folder,
one IMAPS listener (TLS from the first byte, a self-signed certificate made here with
openssl) on a free loopback port, and, when asked, a second listener that offers STARTTLS.
Nothing of the machine's mail system is used; /etc/dovecot is never read.

One user, ``USER`` / ``PASSWORD`` (a static passdb), whose INBOX is one Maildir: a folder of
its own, or the Maildir the private Postfix delivers the feedback domain's mail to, so that a
DSN Postfix wrote is read over IMAP. The mail processes run as that Maildir's owner.

Debian's binaries have their paths compiled in (/usr/lib/dovecot, /usr/bin/doveconf): every
service's ``executable`` is given here, and the master is started through ``doveconf -e``,
which reads the private configuration and starts the master with it, as the master itself
would do by running /usr/bin/doveconf.
"""

import grp
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from tests import processes

ROOT = Path(__file__).resolve().parent.parent
DIST = Path(os.environ.get("DOVECOT_DIST", ROOT / ".cache" / "dovecot"))
ENSURE_SCRIPT = ROOT / "scripts" / "ensure_dovecot.sh"

USER = "feedback"
PASSWORD = "s3cret-feedback"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes
# Every process runs as the Maildir's owner (the Postfix harness delivers as "nobody").
default_internal_user = {owner}
default_internal_group = {group}
default_login_user = {owner}
first_valid_uid = 1
first_valid_gid = 1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
ssl_min_protocol = TLSv1.2
# The password only ever travels inside TLS.
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {{
  driver = static
  args = user={user} password={password}
}}
userdb {{
  driver = static
  args = uid={owner} gid={group} home={home}
}}
mail_location = maildir:{maildir}:INDEX={root}/index:CONTROL={root}/control
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Processed {{
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {starttls_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
"""


class DovecotUnavailable(Exception):
    """Dovecot cannot run here; the message says why."""


def ensure_binaries() -> Path:
    """Run scripts/ensure_dovecot.sh (quick when all is there); the unpacked packages."""
    if os.geteuid() != 0:
        raise DovecotUnavailable(
            "Debian's binaries run in a private mount namespace (their paths are compiled "
            "in), which needs root, and this is not root"
        )
    namespace = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True)
    if namespace.returncode:
        raise DovecotUnavailable(
            "Debian's binaries need their compiled-in /usr/lib/dovecot, shown in a private "
            f"mount namespace, and `unshare --mount` is refused here: {namespace.stderr.strip()} "
            "(a container needs CAP_SYS_ADMIN)"
        )
    result = subprocess.run(["bash", str(ENSURE_SCRIPT)], capture_output=True, text=True)
    if result.returncode:
        raise DovecotUnavailable(f"{ENSURE_SCRIPT.name} failed: {result.stderr.strip()}")
    return DIST


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateDovecot:
    """``start()`` / ``stop()``, or a context manager. ``root`` holds everything it writes;
    ``maildir`` is the INBOX (made here unless given)."""

    def __init__(self, *, maildir: Path | None = None, dist: Path = DIST) -> None:
        self.dist = dist
        self.port = free_port()
        self.starttls_port = free_port()
        # Not under pytest's tmp folders: those are private to root, and the mail processes
        # run as the Maildir's owner.
        self.root = Path(tempfile.mkdtemp(prefix="bulk-email-dovecot-"))
        self.root.chmod(0o755)
        self.maildir = maildir or self.root / "mail" / "inbox"
        self.cert = self.root / "cert.pem"
        self.log_path = self.root / "dovecot.log"
        self.master_log = self.root / "master.out"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "PrivateDovecot":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.remove()

    # --- configuration ------------------------------------------------------------------

    def owner(self) -> tuple[str, str]:
        """The user and group the mail processes run as: the Maildir's folder's owner."""
        if not self.maildir.parent.exists():
            self.make_maildir()
        stat = self.maildir.parent.stat()
        return pwd.getpwuid(stat.st_uid).pw_name, grp.getgrgid(stat.st_gid).gr_name

    def make_maildir(self) -> None:
        for sub in ("new", "cur", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the mail processes run as nobody, never as root
            nobody = pwd.getpwnam("nobody")
            for path in (self.maildir.parent, self.maildir, *self.maildir.iterdir()):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)

    def write_configuration(self) -> Path:
        owner, group = self.owner()
        for name in ("run", "state", "index", "control"):
            (self.root / name).mkdir(mode=0o755, exist_ok=True)
            if name in ("index", "control"):
                shutil.chown(self.root / name, owner, group)
        self.make_certificate()
        values = {
            "root": self.root, "owner": owner, "group": group,
            "user": USER, "password": PASSWORD, "home": self.maildir.parent,
            "maildir": self.maildir, "port": self.port, "starttls_port": self.starttls_port,
        }  # fmt: skip
        config = self.root / "dovecot.conf"
        config.write_text(CONFIG.format(**values))
        return config

    def make_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1; a client trusts it by ``self.cert``."""
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(self.root / "key.pem"), "-out", str(self.cert),
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip

    # --- processes ----------------------------------------------------------------------

    def start(self, timeout: float = 15) -> None:
        config = self.write_configuration()
        self.process = processes.start(self.command(config), env={}, log_path=self.master_log)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise DovecotUnavailable(f"Dovecot did not start:\n{self.logs()}")
            time.sleep(0.05)

    def command(self, config: Path) -> list[str]:
        """The master in a private mount namespace where /usr/lib also shows the unpacked
        /usr/lib/dovecot (a read-only overlay, gone with the process), as its compiled-in
        paths expect; doveconf reads the configuration, then executes the master with it
        (-F: in the foreground, so stop() can signal it)."""
        overlay = f"lowerdir=/usr/lib:{self.dist}/usr/lib"
        mount = f'mount -t overlay bulk-email-dovecot -o {overlay} /usr/lib && exec "$@"'
        doveconf = [str(self.dist / "usr/bin/doveconf"), "-c", str(config), "-m", "master"]
        master = [str(self.dist / "usr/sbin/dovecot"), "-F", "-c", str(config)]
        return ["unshare", "--mount", "sh", "-c", mount, "sh", *doveconf, "-p", "-e", *master]

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cert))

    def answers(self) -> bool:
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw,
                self.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                return tls.recv(100).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
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

    # --- what a test does ----------------------------------------------------------------

    def deliver(self, raw: bytes) -> Path:
        """Put one message in the INBOX as a delivery agent would (tmp/, then new/)."""
        name = f"{time.time_ns()}.{os.getpid()}.test"
        temporary, final = self.maildir / "tmp" / name, self.maildir / "new" / name
        temporary.write_bytes(raw)
        owner = self.maildir.stat()
        os.chown(temporary, owner.st_uid, owner.st_gid)
        temporary.rename(final)
        return final

    def settings(self, **extra) -> dict:
        """FEEDBACK_IMAP for bulk_email: this server, trusting its certificate."""
        return {
            "host": "127.0.0.1", "port": self.port, "user": USER, "password": PASSWORD,
            "folder": "INBOX", "ssl": True, "ca_file": str(self.cert), **extra,
        }  # fmt: skip
