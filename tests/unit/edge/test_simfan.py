"""The simulated fan behaves like a physical one and is reproducible."""

from __future__ import annotations

import itertools
import math

import pytest

from fanwatch.edge.tach import FAULT_KINDS, Fault, SimulatedFan


def edges(fan: SimulatedFan, until: float, step: float = 1.0) -> list[float]:
    out: list[float] = []
    t = 0.0
    while t < until:
        t = min(until, t + step)
        out += fan.pulses(t)
    return out


def rate(pulses: list[float], a: float, b: float, ppr: int = 2) -> float:
    """RPM from the edges counted in [a, b)."""
    return sum(a <= p < b for p in pulses) / (b - a) * 60 / ppr


def test_same_seed_same_pulses_however_time_is_chunked() -> None:
    faults = [Fault("glitch", 2, 6), Fault("dropout", 4, 9), Fault("bearing_wear", 1)]
    a = edges(SimulatedFan(seed=7, faults=faults), 10, step=1.0)
    b = edges(SimulatedFan(seed=7, faults=faults), 10, step=0.137)
    assert a == b
    assert a != edges(SimulatedFan(seed=8, faults=faults), 10)


def test_edges_are_in_order_and_never_handed_out_twice() -> None:
    fan = SimulatedFan(target_rpm=20_000, seed=1, jitter_s=100e-6, period_jitter=0.01)
    pulses = edges(fan, 5, step=0.01)
    assert pulses == sorted(pulses)
    assert len(set(pulses)) == len(pulses)
    assert fan.pulses(4.0) == []  # asking for the past returns nothing new


def test_spin_up_follows_inertia() -> None:
    fan = SimulatedFan(target_rpm=3000, start_rpm=0, spin_up_s=1.5, seed=1)
    pulses = edges(fan, 12)
    early, settled = rate(pulses, 0.5, 1.0), rate(pulses, 10, 12)
    assert early < 0.6 * 3000  # still spinning up after half a second
    assert settled == pytest.approx(3000, rel=0.01)
    assert fan.rpm == pytest.approx(3000, rel=1e-3)


def test_stall_stops_the_rotor_and_the_label_says_so() -> None:
    fan = SimulatedFan(target_rpm=3000, faults=[Fault("stall", 5, 10)], seed=1)
    pulses = edges(fan, 20)
    assert rate(pulses, 6.5, 10) == 0  # a blocked rotor stops within a second and a half
    assert fan.label_at(7) == "stall"
    assert fan.label_at(4) == fan.label_at(11) == "normal"
    assert rate(pulses, 17, 20) == pytest.approx(3000, rel=0.02)  # spun up again after the fault


def test_bearing_wear_drifts_down_and_jitters_more() -> None:
    fan = SimulatedFan(
        target_rpm=3000, faults=[Fault("bearing_wear", 0)], seed=1, period_jitter=0.001, jitter_s=0
    )
    pulses = edges(fan, 300)
    assert rate(pulses, 280, 300) < 0.9 * 3000

    def spread(a: float, b: float) -> float:
        iv = [y - x for x, y in itertools.pairwise(pulses) if a <= x < b]
        mean = sum(iv) / len(iv)
        return math.sqrt(sum((v - mean) ** 2 for v in iv) / len(iv)) / mean

    assert spread(280, 300) > 3 * spread(0, 20)


def test_dropout_removes_pulses_while_the_rotor_turns() -> None:
    fan = SimulatedFan(target_rpm=3000, faults=[Fault("dropout", 0, 60, 2.0)], seed=3)
    pulses = edges(fan, 60)
    gaps = [y - x for x, y in itertools.pairwise(pulses)]
    assert max(gaps) > 0.1  # bursts of missing pulses (a period is 10 ms)
    assert fan.rpm == pytest.approx(3000, rel=1e-3)


def test_glitch_adds_short_spurious_pulses() -> None:
    clean = edges(SimulatedFan(target_rpm=3000, seed=3), 30)
    noisy = edges(SimulatedFan(target_rpm=3000, seed=3, faults=[Fault("glitch", 0, 30, 2.0)]), 30)
    assert 60 < len(noisy) - len(clean) < 300  # about 6 per second


def test_hunting_oscillates_and_overspeed_overshoots() -> None:
    fan = SimulatedFan(
        target_rpm=3000, faults=[Fault("hunting", 0, 40)], seed=1, spin_up_s=0.3, coast_down_s=0.3
    )
    pulses = edges(fan, 40)
    rates = [rate(pulses, t, t + 0.5) for t in range(20, 28)]
    assert max(rates) > 3300 and min(rates) < 2700
    fast = SimulatedFan(target_rpm=3000, faults=[Fault("overspeed", 0)], seed=1)
    assert rate(edges(fast, 30), 25, 30) == pytest.approx(4200, rel=0.02)


def test_faults_are_validated() -> None:
    assert set(FAULT_KINDS) == {"stall", "bearing_wear", "dropout", "glitch", "hunting", "overspeed", "stuck"}
    with pytest.raises(ValueError, match="fault kind 'smoke'"):
        Fault("smoke", 0)
    with pytest.raises(ValueError, match="start_s < end_s"):
        Fault("stall", 5, 5)
    with pytest.raises(ValueError, match="severity"):
        Fault("stall", 0, severity=0)
    with pytest.raises(ValueError, match="pulses_per_rev"):
        SimulatedFan(pulses_per_rev=0)


def test_a_speed_controlled_fan_follows_its_setpoints_and_says_what_was_commanded() -> None:
    fan = SimulatedFan(target_rpm=3000, setpoints=[(25, 4000), (10, 2000)], seed=3)
    pulses = edges(fan, 35)
    assert [fan.target_at(t) for t in (0, 9.9, 10, 24.9, 25, 35)] == [3000, 3000, 2000, 2000, 4000, 4000]
    assert rate(pulses, 5, 10) == pytest.approx(3000, rel=0.02)
    assert rate(pulses, 10, 11) > 2500  # coasting down through the rotor's inertia (4 s)
    assert rate(pulses, 22, 25) == pytest.approx(2000, rel=0.04)
    assert rate(pulses, 32, 35) == pytest.approx(4000, rel=0.02)
    assert fan.label_at(15) == "normal"  # a commanded change is not a fault
    assert SimulatedFan(target_rpm=3000).target_at(5) is None  # not speed-controlled
    with pytest.raises(ValueError, match="setpoints"):
        SimulatedFan(setpoints=[(-1, 2000)])


def test_a_stuck_fan_keeps_the_speed_it_had_while_its_controller_commands_another() -> None:
    fan = SimulatedFan(
        target_rpm=3000, setpoints=[(5, 2000), (35, 3000)], faults=[Fault("stuck", 30, 50)], seed=4
    )
    pulses = edges(fan, 60)
    assert rate(pulses, 25, 30) == pytest.approx(2000, rel=0.02)  # it followed the first change
    assert fan.target_at(40) == 3000  # told 3,000 at 35 s ...
    assert rate(pulses, 40, 50) == pytest.approx(2000, rel=0.02)  # ... it stays at 2,000
    assert fan.label_at(40) == "stuck"
    assert rate(pulses, 56, 60) == pytest.approx(3000, rel=0.02)  # the fault over, it follows again
