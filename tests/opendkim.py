"""OpenDKIM's own verifier for the DKIM tests: ``opendkim -t FILE`` (its test mode: one
message, no milter, no mail server) with the public keys from a local data file
(``TestDNSData``), so nothing asks DNS. The binaries are Debian's, unpacked by
scripts/ensure_opendkim.sh."""

import os
import re
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENSURE_SCRIPT = ROOT / "scripts" / "ensure_opendkim.sh"
DIST = Path(os.environ.get("OPENDKIM_DIST", ROOT / ".cache" / "opendkim"))
RESULT = re.compile(rb"dkim=(\w+)[^;]*?header\.a=([\w-]+)")


class OpenDkimUnavailable(Exception):
    pass


def ensure_binaries() -> Path:
    """Run scripts/ensure_opendkim.sh (quick when all is there); the unpacked packages."""
    result = subprocess.run(["bash", str(ENSURE_SCRIPT)], capture_output=True, text=True)
    if result.returncode:
        raise OpenDkimUnavailable(f"{ENSURE_SCRIPT.name} failed: {result.stderr.strip()}")
    return DIST


class OpenDkimVerifier:
    """Verifies messages against the given DNS records ({name: TXT value})."""

    def __init__(self, dns_records: dict[str, bytes]):
        self.folder = Path(tempfile.mkdtemp(prefix="opendkim-"))
        dns = self.folder / "dns"
        dns.write_bytes(
            b"".join(f"{name} ".encode() + txt + b"\n" for name, txt in dns_records.items())
        )
        self.config = self.folder / "opendkim.conf"
        self.config.write_text(
            "Mode v\n"
            f"TestDNSData file:{dns}\n"
            "Syslog no\n"
            "AlwaysAddARHeader yes\n"
            "AuthservID opendkim.test\n"
        )

    def results(self, message: bytes) -> list[tuple[str, str]]:
        """(algorithm, result) of each DKIM-Signature, e.g. ("rsa-sha256", "pass"), from the
        Authentication-Results header OpenDKIM would add."""
        path = self.folder / "message.eml"
        path.write_bytes(message)
        run = subprocess.run(
            [str(DIST / "usr/sbin/opendkim"), "-x", str(self.config), "-t", str(path), "-vv"],
            capture_output=True,
            env={**os.environ, "LD_LIBRARY_PATH": str(DIST / "usr/lib/x86_64-linux-gnu")},
            timeout=30,
        )
        found = [(a.decode(), r.decode()) for r, a in RESULT.findall(run.stdout)]
        if not found:
            raise AssertionError(f"no DKIM result from opendkim: {run.stdout!r} {run.stderr!r}")
        return found
