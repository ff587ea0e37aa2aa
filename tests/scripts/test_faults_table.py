from scripts.faults_table import main, table

FIGURES = {
    "fault": "worker `kill -9` twice",
    "bound": "≤ 4",
    "measured": "2026-11-22",
    "recipients": 2950,
    "received": 2952,
    "lost": 0,
    "duplicated": 2,
    "state": "Success",
    "sent": 2950,
    "failed": 0,
    "skipped": 0,
    "retries": 0,
    "seconds": 11.25,
}


def test_one_row_per_test_with_its_measured_figures():
    text = table({"test_kill": FIGURES})
    row = text.splitlines()[2]
    assert row == (
        "| worker `kill -9` twice (`test_kill`) | 2,950 | 2,952 | 0 | 2 (≤ 4) "
        "| Success: 2,950 sent, 0 failed | 0 | 11.2 s |"
    )
    assert text.endswith("Measured by `make faults` (2026-11-22).")


def test_a_missing_report_is_a_clear_message(tmp_path, capsys):
    assert main(tmp_path / "none.json") == 1
    assert "run the fault suite first" in capsys.readouterr().out
