"""scripts/ensure_chromium.sh installs what is missing — Chromium, a CJK font — and nothing
when both are there, run against stand-ins for apt-get, fc-list, id and chromium."""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure_chromium.sh"


def stand_in(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def run_script(tmp_path: Path, *, chromium: bool, cjk_font: bool) -> list[str]:
    """Run the script as root with the stand-ins first on PATH; the apt-get lines it ran."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apt-get.log"
    bin_dir.mkdir()
    stand_in(bin_dir, "apt-get", f'echo "$*" >> {log}')
    stand_in(bin_dir, "id", "echo 0")
    stand_in(bin_dir, "fc-list", "echo 'Noto Sans CJK SC'" if cjk_font else "true")
    if chromium:
        stand_in(bin_dir, "chromium", "true")
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    env.pop("CHROMIUM_PATH", None)
    subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, check=False)
    return log.read_text().splitlines() if log.exists() else []


def test_a_missing_cjk_font_is_installed_even_when_chromium_is_there(tmp_path):
    installs = [
        line for line in run_script(tmp_path, chromium=True, cjk_font=False) if "install" in line
    ]
    assert installs and "fonts-noto-cjk" in installs[0]
    assert "chromium" not in installs[0]


def test_nothing_is_installed_when_both_are_there(tmp_path):
    assert run_script(tmp_path, chromium=True, cjk_font=True) == []
