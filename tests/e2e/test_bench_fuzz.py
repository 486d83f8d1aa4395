"""The fuzz benchmark runs end to end (tiny counts) and prints its table with nothing escaped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_fuzz_benchmark_prints_tried_refused_and_escaped_per_target() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--examples", "30", "--records", "30"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = re.findall(r"^  (\S.*?)\s{2,}([\d,]+) (\w+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$", run.stdout, re.M)
    assert [r[0] for r in rows] == [
        "parse_telemetry",
        "parse_alert",
        "parse_status",
        "parse_event",
        "IPC frame decoder",
        "IPC request JSON",
        "recipes",
        "deployment documents",
        "detector (Kinesis)",
        "notifier (Kinesis)",
        "lake (Firehose)",
    ]
    assert all(r[5] == "0" for r in rows)
    assert all(int(r[1]) == 30 for r in rows[:8])
    assert all(int(r[1]) <= 30 for r in rows[8:])  # --records bounds the batches (one record or more each)
