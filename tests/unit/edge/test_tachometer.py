"""The tachometer's first readings: a fan just opened has not been observed to stall."""

from __future__ import annotations

import pytest

from fanwatch.edge.clock import SimClock
from fanwatch.edge.tach import SimulatedFan, Tachometer


def tachometer(target_rpm: float, clock: SimClock, *, stall_timeout_s: float = 2.0) -> Tachometer:
    fan = SimulatedFan(target_rpm=target_rpm, seed=8, t0=clock.now())
    return Tachometer(fan, clock=clock, window_s=1.0, stall_timeout_s=stall_timeout_s)


def test_a_spinning_fan_is_first_read_after_one_window_and_not_as_stalled() -> None:
    clock = SimClock(t0=500.0)
    tach = tachometer(3000, clock)
    assert tach.read() is None  # opened this instant: nothing measured yet
    clock.advance(0.5)
    assert tach.read() is None
    clock.advance(0.5)
    first = tach.read()
    assert first is not None and first.flags == {"simulated"}
    assert first.rpm == pytest.approx(3000, rel=0.005) and first.ts == clock.utc()


def test_a_fan_stopped_at_start_reads_zero_stalled_once_the_stall_timeout_passes() -> None:
    clock = SimClock(t0=500.0)
    tach = tachometer(0, clock, stall_timeout_s=3.0)
    early = []
    while clock.now() < 503.0:
        early.append(tach.read())
        clock.advance(0.5)
    assert early == [None] * 6  # 0 to 2.5 s: no pulse yet, but no stall measured either
    stalled = tach.read()
    assert stalled is not None and stalled.rpm == 0 and "stalled" in stalled.flags


def test_readings_carry_the_setpoint_of_the_moment_and_otherwise_the_configured_target() -> None:
    clock = SimClock()
    controlled = SimulatedFan(target_rpm=3000, setpoints=[(5, 2000)], seed=1, t0=clock.now())
    fixed = SimulatedFan(target_rpm=3000, seed=1, t0=clock.now())
    tachs = [Tachometer(controlled, clock=clock), Tachometer(fixed, clock=clock, target_rpm=3000)]
    targets = []
    for _ in range(8):
        clock.advance(1.0)
        targets.append([r.target_rpm for r in (t.read() for t in tachs) if r is not None])
    assert [t[0] for t in targets] == [3000] * 4 + [2000] * 4
    assert {t[1] for t in targets} == {3000}
