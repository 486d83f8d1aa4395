"""Replay of recorded CSVs: edge recordings, speed traces (the original log format too), bad files."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from fanwatch.edge.tach import CsvReplay, ReplayError, RpmEstimator, SimulatedFan


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rec.csv"
    path.write_text(text)
    return path


def test_recorded_edges_replay_on_the_callers_clock(tmp_path: Path) -> None:
    fan = SimulatedFan(target_rpm=4500, start_rpm=4500, seed=3)
    recorded = list(fan.pulses(5.0))
    path = write(tmp_path, "t\n" + "\n".join(f"{t:.6f}" for t in recorded) + "\n")
    replay = CsvReplay(path, t0=100.0)
    est = RpmEstimator(started_at=100.0)
    est.add(replay.pulses(103.0))
    assert est.read(103.0).rpm == pytest.approx(4500, rel=0.005)
    assert replay.simulated  # replayed readings are not live


def test_a_speed_trace_in_the_original_log_format_becomes_pulses(tmp_path: Path) -> None:
    rows = [f"2026-01-01T00:00:{s:02d},fan1,{1500 / 60 * 2:.1f},{1500 if s < 5 else 3000}" for s in range(10)]
    path = write(tmp_path, "TIME,FANID,FREQ,RPM\n" + "\n".join(rows) + "\n")
    replay = CsvReplay(path, pulses_per_rev=2)
    est = RpmEstimator(started_at=0.0)
    est.add(replay.pulses(4.0))
    assert est.read(4.0).rpm == pytest.approx(1500, rel=0.005)
    est.add(replay.pulses(8.0))
    assert est.read(8.0).rpm == pytest.approx(3000, rel=0.005)


def test_loop_starts_over_and_without_loop_the_recording_ends(tmp_path: Path) -> None:
    path = write(tmp_path, "t,rpm\n0,600\n1,600\n2,600\n")  # 20 pulses per second for 2 s
    looped = CsvReplay(path, loop=True)
    pulses = looped.pulses(10.0)
    assert len(pulses) == 200  # 20 per second, and no gap at the seams
    assert max(b - a for a, b in itertools.pairwise(pulses)) == pytest.approx(0.05)
    once = CsvReplay(path, loop=False)
    assert len(once.pulses(10.0)) == 39
    assert once.exhausted and not looped.exhausted


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the recording is empty"),
        ("t\n", "has a header and no rows"),
        ("rpm\n1\n", "no time column"),
        ("t\n0.1\nsoon\n", "rec.csv:3: column t: expected seconds, got 'soon'"),
        ("t\n0.5\n0.2\n", "rec.csv:3: column t: time goes backwards"),
        ("t,rpm\n0,fast\n", "rec.csv:2: column rpm: expected a number, got 'fast'"),
        ("t,rpm\n0,-5\n", "rec.csv:2: column rpm: -5.0 is out of range"),
        ("t,rpm\n0,1,2\n", "rec.csv:2: 3 columns, the header has 2"),
        ("TIME,RPM\nyesterday,100\n", "rec.csv:2: column TIME: not an ISO 8601 timestamp"),
        ("t\nnan\n", "rec.csv:2: column t: expected a finite number"),
    ],
)
def test_bad_recordings_name_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ReplayError, match=message.replace("(", r"\(").replace(".", r"\.")):
        CsvReplay(write(tmp_path, text))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match=r"nope\.csv: cannot read the recording"):
        CsvReplay(tmp_path / "nope.csv")
