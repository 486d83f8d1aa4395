"""RPM from pulse timestamps: accuracy with jitter, glitches, dropouts, and a stopped fan reads 0."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fanwatch.edge.tach import Estimate, Fault, RpmEstimator, SimulatedFan


def readings_from(
    fan: SimulatedFan, est: RpmEstimator, start: float, until: float, step: float = 1.0
) -> list[tuple[float, Estimate | None]]:
    out = []
    t = start
    while t < until - 1e-9:
        t += step
        est.add(fan.pulses(t))
        out.append((t, est.read(t)))
    return out


def readings(
    fan: SimulatedFan, est: RpmEstimator, until: float, step: float = 1.0
) -> list[tuple[float, Estimate | None]]:
    return readings_from(fan, est, 0.0, until, step)


@settings(max_examples=60, deadline=None, derandomize=True)  # the same examples on every run
@given(
    rpm=st.floats(300, 20_000),
    jitter_s=st.floats(0, 50e-6),
    period_jitter=st.floats(0, 0.005),
    ppr=st.sampled_from([1, 2, 4]),
    seed=st.integers(0, 10_000),
)
def test_within_half_a_percent_from_300_to_20000_rpm(
    rpm: float, jitter_s: float, period_jitter: float, ppr: int, seed: int
) -> None:
    fan = SimulatedFan(
        target_rpm=rpm,
        start_rpm=rpm,
        pulses_per_rev=ppr,
        jitter_s=jitter_s,
        period_jitter=period_jitter,
        seed=seed,
    )
    est = RpmEstimator(pulses_per_rev=ppr, max_rpm=25_000, window_s=1.0, stall_timeout_s=3.0, started_at=0.0)
    for _, e in readings(fan, est, 6)[2:]:
        assert e.rpm == pytest.approx(rpm, rel=0.005), e
        assert "stalled" not in e.flags


def test_reads_far_above_3000_rpm_because_the_debounce_follows_max_rpm() -> None:
    """The original edge script's fixed 10 ms debounce capped it at 3000 RPM with 2 pulses/rev."""
    fan = SimulatedFan(target_rpm=12_000, start_rpm=12_000, seed=1)
    est = RpmEstimator(pulses_per_rev=2, max_rpm=25_000, started_at=0.0)
    assert est.debounce_s == pytest.approx(15.0 / (25_000 * 2))  # a quarter of the shortest period
    assert est.debounce_s < 0.010
    assert readings(fan, est, 3)[-1][1].rpm == pytest.approx(12_000, rel=0.005)
    assert RpmEstimator(max_rpm=5_000, started_at=0.0).debounce_s == pytest.approx(5 * est.debounce_s)


@pytest.mark.parametrize("timeout", [1.0, 2.0, 5.0])
def test_a_stopped_fan_reads_zero_within_the_timeout_and_never_repeats_its_last_speed(timeout: float) -> None:
    fan = SimulatedFan(target_rpm=3000, faults=[Fault("stall", 10)], seed=2)
    est = RpmEstimator(stall_timeout_s=timeout, started_at=0.0)
    series = readings(fan, est, 30, step=0.25)
    last_pulse = 10 + 1.5  # the blocked rotor turns for well under 1.5 s
    for t, e in series:
        if t >= last_pulse + timeout:
            assert e.rpm == 0 and "stalled" in e.flags, (t, e)
    falling = [e.rpm for t, e in series if 10 < t < last_pulse + timeout]
    assert falling and max(falling[2:]) < 3000 * 0.5  # the reading drops as soon as pulses stop coming


def test_nothing_is_claimed_before_a_full_window_has_passed_since_listening_began() -> None:
    """The first reading used to come before any pulse had arrived, and said 0 rpm ``stalled``."""
    fan = SimulatedFan(target_rpm=3000, start_rpm=3000, seed=4, t0=50.0)
    est = RpmEstimator(window_s=1.0, stall_timeout_s=2.0, started_at=50.0)
    assert est.read(50.0) is None
    est.add(fan.pulses(50.5))
    assert est.read(50.5) is None  # half a window: neither a speed nor a stall has been measured
    est.add(fan.pulses(51.0))
    first = est.read(51.0)
    assert first is not None and "stalled" not in first.flags
    assert first.rpm == pytest.approx(3000, rel=0.005)


@pytest.mark.parametrize("timeout", [1.0, 2.0, 5.0])
def test_a_fan_stopped_from_the_start_reads_zero_stalled_once_the_timeout_has_passed(timeout: float) -> None:
    fan = SimulatedFan(target_rpm=0, seed=6, t0=10.0)
    est = RpmEstimator(window_s=1.0, stall_timeout_s=timeout, started_at=10.0)
    series = readings_from(fan, est, 10.0, 10.0 + timeout + 1, step=0.25)
    assert [e for t, e in series if t < 10.0 + timeout] == [None] * int(timeout / 0.25 - 1)
    after = [e for t, e in series if t >= 10.0 + timeout]
    assert after and all(e is not None and e.rpm == 0 and "stalled" in e.flags for e in after)


def test_glitch_pulses_are_rejected_and_flagged() -> None:
    fan = SimulatedFan(
        target_rpm=3000, start_rpm=3000, faults=[Fault("glitch", 0, 30, 2.0)], seed=5
    )  # 6 glitches a second
    series = readings(fan, RpmEstimator(started_at=0.0), 30)[1:]
    assert all(e.rpm == pytest.approx(3000, rel=0.005) for _, e in series)
    assert sum("glitch" in e.flags for _, e in series) > len(series) / 2


def test_missing_pulses_are_counted_not_mistaken_for_a_slower_fan() -> None:
    edges = [i * 0.01 for i in range(101) if i not in {30, 31, 55, 80}]  # 3000 RPM, four pulses lost
    est = RpmEstimator(started_at=0.0)
    est.add(edges)
    e = est.read(1.0)
    assert e.rpm == pytest.approx(3000, rel=1e-6)
    assert "dropout" in e.flags
    assert e.pulses == 97


def test_a_slow_fan_uses_a_longer_window_and_says_so() -> None:
    est = RpmEstimator(window_s=1.0, stall_timeout_s=5.0, min_edges=4, started_at=0.0)
    est.add([0.0, 0.5, 1.0, 1.5, 2.0])  # 60 RPM at 2 pulses/rev: too few edges in 1 s
    e = est.read(2.0)
    assert e.rpm == pytest.approx(60)
    assert "estimated" in e.flags and e.window_s == pytest.approx(1.5)


def test_estimator_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="stall_timeout_s"):
        RpmEstimator(window_s=2.0, stall_timeout_s=1.0, started_at=0.0)
    with pytest.raises(ValueError, match="pulses_per_rev"):
        RpmEstimator(pulses_per_rev=0, started_at=0.0)
