"""The runnable snippets under docs/examples/edge_*.py run and print what the docs say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


def run(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_edge_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("edge_*.py")) == [
        "edge_configuration.py",
        "edge_message_budget.py",
        "edge_simulated_fan.py",
    ]


def test_simulated_fan_example_shows_the_stall_and_the_recovery() -> None:
    lines = run("edge_simulated_fan.py").splitlines()
    assert len(lines) == 20
    assert "rpm=    0.0" in lines[9] and "stalled" in lines[9] and "truth=stall" in lines[9]
    assert "rpm= 3000.0" in lines[0] and "rpm=    0.0" not in lines[-1]


def test_configuration_example_names_the_refused_keys() -> None:
    out = run("edge_configuration.py")
    assert "accepted: batch 60 readings" in out
    for key in ("'batchSize'", "'heartbeatSecond'", "'underSpeedRpm'"):
        assert f"key {key}" in out


@pytest.mark.slow
def test_message_budget_example_prints_the_table() -> None:
    rows = run("edge_message_budget.py", "--minutes", "10").splitlines()
    per_day = {line[:66].strip(): int(line[66:80].replace(",", "")) for line in rows[1:6]}
    assert per_day["every reading, one per message (the original design)"] == 86_400
    counts = list(per_day.values())
    assert counts == sorted(counts, reverse=True) and counts[-1] < 200
