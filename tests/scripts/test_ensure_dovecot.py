"""scripts/ensure_dovecot.sh: nothing fetched or installed when the unpacked packages are
usable; a clear reason (and a failure) when they cannot be fetched. apt-get is a stand-in
that records what it was asked."""

import os
import subprocess
from pathlib import Path

import pytest

from tests import dovecot

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure_dovecot.sh"


def run_script(tmp_path: Path, dist: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir, log = tmp_path / "bin", tmp_path / "apt-get.log"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {log}\nexit 100\n')
    (bin_dir / "apt-get").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "DOVECOT_DIST": str(dist)}
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    return result, log.read_text().splitlines() if log.exists() else []


def test_usable_packages_are_left_alone(tmp_path):
    try:
        dist = dovecot.ensure_binaries()
    except dovecot.DovecotUnavailable as why:
        pytest.skip(f"SKIPPED LOUDLY: no unpacked Dovecot to check against: {why}")
    result, apt_calls = run_script(tmp_path, dist)
    assert (result.returncode, apt_calls) == (0, [])
    assert result.stdout.strip() == f"dovecot: {dist}"


def test_packages_that_cannot_be_fetched_fail_with_the_reason(tmp_path):
    result, apt_calls = run_script(tmp_path, tmp_path / "cache" / "dovecot")
    assert result.returncode == 1
    assert "`apt-get download dovecot-core` failed" in result.stderr
    assert apt_calls and apt_calls[0] == "download dovecot-core dovecot-imapd"
