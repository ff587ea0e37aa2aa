"""The README's faults table from the figures the fault suite measured.

    make faults          # runs `pytest -m faults` on PostgreSQL, then this script
    python scripts/faults_table.py [tests/artifacts/faults.json]

Each row is one named test of tests/integration/test_faults.py, as its last run measured it
(tests/conftest.py writes the report)."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.readme_section import write_section  # noqa: E402

REPORT = ROOT / "tests" / "artifacts" / "faults.json"
HEADER = (
    "| fault, mid-send | recipients | received | lost | duplicated (bound asserted) "
    "| shown to staff | retries | send took |\n|---|---|---|---|---|---|---|---|"
)


def row(test: str, figures: dict) -> str:
    shown = f"{figures['state']}: {figures['sent']:,} sent, {figures['failed']:,} failed"
    cells = (
        f"{figures['fault']} (`{test}`)",
        f"{figures['recipients']:,}",
        f"{figures['received']:,}",
        f"{figures['lost']:,}",
        f"{figures['duplicated']:,} ({figures['bound']})",
        shown,
        f"{figures['retries']:,}",
        f"{figures['seconds']:.1f} s",
    )
    return "| " + " | ".join(cells) + " |"


def table(report: dict) -> str:
    dates = sorted({figures["measured"] for figures in report.values()})
    when = dates[-1] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    rows = "\n".join(row(test, figures) for test, figures in report.items())
    return f"{HEADER}\n{rows}\n\nMeasured by `make faults` ({when})."


def main(path: Path = REPORT) -> int:
    if not path.exists():
        print(f"{path} does not exist: run the fault suite first (make faults)")
        return 1
    text = table(json.loads(path.read_text()))
    print(text)
    return 0 if write_section("faults", text) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPORT))
