"""The detection benchmark (the figures the README quotes) runs end to end and prints its tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _rows(table: str) -> dict[str, list[str]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines()]
    return {r[0]: r[1:] for r in rows[2:]}


@pytest.mark.slow
def test_the_detection_benchmark_catches_every_injected_fault_without_false_alarms(tmp_path: Path) -> None:
    picture = tmp_path / "detection.png"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "detection.py"), "--quick", "--plot", str(picture)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    tables = [block for block in run.stdout.split("\n\n") if block.startswith("|")]
    assert len(tables) == 2, run.stdout
    cases = _rows(tables[0])
    faults = ["stall", "bearing_wear", "hunting", "overspeed", "glitch", "dropout", "stuck"]
    assert set(cases) == {*faults, "healthy", "setpoints", "all"}
    for kind in faults:  # recall edge, rcf, both; then time to detect; then false alarms per fan-day
        assert cases[kind][3] == "100 %", (kind, cases[kind])
    for kind in ("healthy", "setpoints"):
        assert cases[kind][-3:] == ["0.00", "0.00", "0.00"], (kind, cases[kind])
    rows = _rows(tables[1])
    default = rows["every reading, 60 per message (default)"]
    assert default[0] == "1,440" and default[1] == "60.0"  # messages per fan per day, readings each
    assert float(default[3]) < float(default[2])  # Basic Ingest costs less
    assert picture.stat().st_size > 10_000
