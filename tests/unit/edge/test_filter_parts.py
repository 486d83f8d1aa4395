"""The filter's parts: Hampel spike rejection, alert hysteresis, deadband + heartbeat, batching, sizes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fanwatch.edge.alerts import AlertTracker, Hysteresis
from fanwatch.edge.batching import Batcher, DeadbandGate, pack
from fanwatch.edge.spikes import Hampel
from fanwatch.telemetry import Reading, Telemetry, encode, parse_telemetry

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def reading(
    rpm: float, s: float = 0.0, flags: frozenset[str] = frozenset(), label: str | None = None
) -> Reading:
    return Reading(
        ts=T0 + timedelta(seconds=s), rpm=rpm, hz=rpm / 30, pulses=100, window_s=1.0, flags=flags, label=label
    )


# --- spikes -------------------------------------------------------------------------------------


def test_hampel_replaces_an_isolated_spike_with_the_median() -> None:
    h = Hampel(window=7, sigmas=3.0, min_percent=2.0)
    values = [3000, 3004, 2998, 3001, 2999, 3003]
    assert [h.filter(v) for v in values] == [(v, False) for v in values]  # not enough history yet
    assert h.filter(300) == (3000.5, True)  # the median of the six readings before it
    assert h.filter(3002) == (3002, False)


def test_hampel_ignores_small_wobbles_of_a_perfectly_steady_fan() -> None:
    h = Hampel(window=5, sigmas=3.0, min_percent=2.0)
    for _ in range(5):
        h.filter(3000)
    assert h.filter(3050) == (3050, False)  # MAD is 0, but 1.7 % is below the 2 % floor
    assert h.filter(3200)[1] is True


def test_hampel_follows_a_real_step_after_half_a_window_and_a_stall_restarts_it() -> None:
    h = Hampel(window=7)
    for _ in range(7):
        h.filter(3000)
    steps = [h.filter(1500) for _ in range(6)]  # a real step down is taken for a spike at first
    assert [s for _, s in steps[:3]] == [True, True, True] and steps[-1] == (1500, False)
    assert h.filter(0, bypass=True) == (0, False)
    assert [h.filter(v) for v in (900, 2000, 3000)] == [(900, False), (2000, False), (3000, False)]


# --- hysteresis ---------------------------------------------------------------------------------


def test_hysteresis_needs_the_condition_to_hold_before_raising_and_clearing() -> None:
    h = Hysteresis(raise_after_s=3, clear_after_s=5)
    assert [h.update(t, entering=True, leaving=False) for t in (0, 1, 2)] == [None, None, None]
    assert h.update(3, entering=True, leaving=False) == "raised" and h.began == 0
    assert h.update(4, entering=False, leaving=True) is None
    assert h.update(5, entering=False, leaving=False) is None  # in the band: the clear timer restarts
    assert [h.update(t, entering=False, leaving=True) for t in (6, 10)] == [None, None]
    assert h.update(11, entering=False, leaving=True) == "cleared"


def test_a_value_flapping_around_the_threshold_raises_once() -> None:
    tracker = AlertTracker(
        stall_rpm=100,
        under_speed_rpm=2000,
        over_speed_rpm=0,
        hysteresis_percent=5,
        raise_after_s=3,
        clear_after_s=10,
    )
    transitions = []
    for t in range(600):  # ten minutes of 1 Hz readings alternating around 2000 rpm
        transitions += tracker.update(float(t), 1990.0 if t % 2 else 2030.0, stalled=False)
    assert transitions == []  # never 3 s in a row below the threshold
    for t in range(600, 1200):  # now mostly below, sometimes just above, never past the band
        transitions += tracker.update(float(t), 1900.0 if t % 5 else 2050.0, stalled=False)
    assert [(tr.kind, tr.state) for tr in transitions] == [("under_speed", "raised")]


def test_stall_is_not_also_reported_as_under_speed_and_over_speed_is_separate() -> None:
    tracker = AlertTracker(
        stall_rpm=100,
        under_speed_rpm=2000,
        over_speed_rpm=4000,
        hysteresis_percent=5,
        raise_after_s=0,
        clear_after_s=0,
    )
    assert [(t.kind, t.state) for t in tracker.update(0, 0, stalled=True)] == [("stall", "raised")]
    assert [(t.kind, t.state) for t in tracker.update(1, 3000, stalled=False)] == [("stall", "cleared")]
    assert [(t.kind, t.state) for t in tracker.update(2, 4500, stalled=False)] == [("over_speed", "raised")]
    assert tracker.update(3, 3900, stalled=False) == []  # inside the 5 % band below 4000
    assert [(t.kind, t.state) for t in tracker.update(4, 3700, stalled=False)] == [("over_speed", "cleared")]
    assert tracker.active() == []


def _noisy_tracker(**options: float) -> AlertTracker:
    return AlertTracker(
        stall_rpm=100,
        under_speed_rpm=0,
        over_speed_rpm=0,
        hysteresis_percent=5,
        raise_after_s=3,
        clear_after_s=10,
        **{"noisy_percent": 10, "noisy_window_s": 60, **options},
    )


def test_a_noisy_signal_is_raised_when_many_readings_carry_glitches_and_cleared_when_few_do() -> None:
    tracker = _noisy_tracker()
    events = []
    for t in range(600):  # 1 Hz: clean, then every other reading glitched for 3 min, then clean
        noisy = 120 <= t < 300 and t % 2 == 0
        events += [(t, tr.kind, tr.state) for tr in tracker.update(t, 3000, stalled=False, noisy=noisy)]
    assert [(k, s) for _, k, s in events] == [("noisy_signal", "raised"), ("noisy_signal", "cleared")]
    (raised, _, _), (cleared, _, _) = events
    assert 120 < raised < 135  # 10 % of a 60 s window: six noisy readings, then 3 s to raise
    assert 330 < cleared < 375  # below 5 % once the window has moved past the noise, then 10 s


def test_a_few_glitches_a_stall_or_the_alert_turned_off_raise_no_noisy_signal() -> None:
    quiet = _noisy_tracker()
    off = _noisy_tracker(noisy_percent=0)
    stalled = _noisy_tracker()
    for t in range(600):
        assert quiet.update(t, 3000, stalled=False, noisy=t % 30 == 0) == []  # one in 30: 3 %
        assert off.update(t, 3000, stalled=False, noisy=True) == []
        kinds = {tr.kind for tr in stalled.update(t, 0, stalled=True, noisy=t % 2 == 0)}
        assert "noisy_signal" not in kinds


# --- deadband and heartbeat ---------------------------------------------------------------------


def test_deadband_suppresses_steady_readings_and_the_heartbeat_still_sends() -> None:
    gate = DeadbandGate(deadband_rpm=30, deadband_percent=1.0, heartbeat_s=60)
    assert gate.admit(reading(3000, 0)) is not None  # the first reading always goes
    assert gate.admit(reading(3020, 1)) is None  # within max(30, 1 % of 3000)
    sent = gate.admit(reading(3040, 2))
    assert sent is not None and "heartbeat" not in sent.flags  # 40 > 30
    assert all(gate.admit(reading(3040, s)) is None for s in range(3, 62))
    beat = gate.admit(reading(3040, 62))
    assert beat is not None and "heartbeat" in beat.flags


def test_a_zero_deadband_sends_every_reading() -> None:
    gate = DeadbandGate(deadband_rpm=0, deadband_percent=0, heartbeat_s=3600)
    assert all(gate.admit(reading(3000, s)) is not None for s in range(5))


def test_a_change_of_stall_state_or_a_forced_reading_always_goes() -> None:
    gate = DeadbandGate(deadband_rpm=5000, deadband_percent=0, heartbeat_s=3600)
    gate.admit(reading(20, 0))
    assert gate.admit(reading(0, 1, frozenset({"stalled"}))) is not None
    assert gate.admit(reading(0, 2, frozenset({"stalled"}))) is None
    assert gate.admit(reading(0, 3, frozenset({"stalled"})), force=True) is not None


# --- batching and message size ------------------------------------------------------------------


def test_a_batch_is_due_when_full_or_old() -> None:
    b = Batcher(batch_size=3, max_age_s=10)
    assert not b.due(0)
    b.add(reading(1), 0)
    b.add(reading(2), 1)
    assert not b.due(9)
    assert b.due(10)
    b.add(reading(3), 2)
    assert b.due(2) and len(b.take()) == 3 and len(b) == 0


def _make(readings: tuple[Reading, ...], seq: int) -> Telemetry:
    return Telemetry(thing="pi-1", fan="f", boot="b0", seq=seq, sent=T0, readings=readings)


def test_a_batch_over_the_limit_is_split_into_parts_that_fit_with_no_sequence_gap() -> None:
    readings = tuple(reading(3000 + i, i, label="x" * 200) for i in range(40))
    whole = len(encode(_make(readings, 0)))
    seqs = iter(range(100))
    messages, refused = pack(readings, make=_make, next_seq=lambda: next(seqs), max_bytes=whole // 3)
    assert refused == [] and len(messages) >= 3
    assert all(len(payload) <= whole // 3 for _, payload in messages)
    assert [m.seq for m, _ in messages] == list(range(len(messages)))
    assert [r for m, _ in messages for r in m.readings] == list(readings)  # nothing lost, order kept
    assert [r.ts for r in parse_telemetry(messages[0][1]).readings] == [r.ts for r in messages[0][0].readings]


def test_a_reading_too_large_on_its_own_is_refused_not_sent() -> None:
    big = reading(1, 0, label="y" * 600)
    small = reading(2, 1)
    seqs = iter(range(10))
    messages, refused = pack((small, big), make=_make, next_seq=lambda: next(seqs), max_bytes=500)
    assert refused == [big]
    assert [m.readings for m, _ in messages] == [(small,)] and messages[0][0].seq == 0
