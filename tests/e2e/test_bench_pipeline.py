"""The pipeline benchmark runs end to end and finds every published reading in the lake, once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_pipeline_benchmark_prints_the_sustained_rate_and_loses_nothing() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pipeline.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    steps = re.findall(r"^\s+(\d+)\s+([\d,]+) \|\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)", run.stdout, re.MULTILINE)
    assert [int(s[0]) for s in steps][:1] == [2]
    assert all(int(s[1].replace(",", "")) > 0 for s in steps)
    assert re.search(r"^bottleneck: ", run.stdout, re.MULTILINE)
    lake = re.search(
        r"^lake: ([\d,]+) rows for ([\d,]+) readings published, ([\d,]+) distinct", run.stdout, re.M
    )
    assert lake and lake.group(1) == lake.group(2) == lake.group(3) and lake.group(1) != "0"
