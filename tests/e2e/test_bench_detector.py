"""The detector benchmark (the source of the cost estimate's throughput) runs and prints its figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> tuple[str, dict[str, str]]:
    """Run bench/detector.py; its output and its figures (``  name   value`` lines)."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "detector.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, dict(re.findall(r"^  (.+?)\s{2,}([\d,.]+)", run.stdout, re.MULTILINE))


def test_the_detector_benchmark_scores_every_reading_and_prints_the_figures() -> None:
    out, figures = _bench("--quick", "--s3-latency-ms", "5")
    assert "(S3 requests 5 ms, 16 in flight)" in out
    assert set(figures) >= {
        "steady state, readings/s (wall)",
        "steady state, readings/s (CPU of the handler)",
        "the forests alone, readings/s (CPU)",
        "the cost estimate assumes",
    }
    assert all(float(v.replace(",", "")) > 0 for v in figures.values())


@pytest.mark.slow
def test_the_fleet_benchmark_routes_batches_over_containers_and_prints_its_figures() -> None:
    out, figures = _bench("--fans", "40", "--shards", "2", "--parallelization", "2", "--minutes", "1")
    # How many containers the pool grows to depends on how long each batch takes on this machine (a new
    # one only when a batch starts while every other is busy), so the figure is checked against the
    # per-container table rather than against a count.
    used = int(figures["containers used"])
    rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+[\d,]+\s+[\d,]+\s+[\d,]+$", out, re.MULTILINE)
    assert 1 <= len(rows) <= used
    assert sum(int(batches) for _, batches in rows) > 0
    assert float(figures["messages per batch"]) > 0
    assert "iterator age, median / max" in figures
    assert "the capacity model" in out
