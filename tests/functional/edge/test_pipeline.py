"""The two services wired in-process (the demo's pipeline), driven on a simulated clock.

The in-process nucleus stands in for Greengrass only for what these tests need (local pub/sub,
configuration, IoT Core); the same services run over real IPC in test_on_local_core.py.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fanwatch.demo.inprocess import run_edge_in_process
from fanwatch.demo.scenario import Scenario, default_configuration
from fanwatch.edge.clock import MonotonicClock, ScaledClock, SimClock
from fanwatch.edge.component import stop_on_signals
from fanwatch.edge.inprocess import InProcessNucleus, topic_matches
from fanwatch.edge.run_filter import FilterService
from fanwatch.edge.run_tachometer import TachometerService
from fanwatch.telemetry import parse_alert, parse_telemetry

THING = "pipe-1"


def device(
    tach: dict[str, Any] | None = None, flt: dict[str, Any] | None = None, clock: Any = None
) -> tuple[InProcessNucleus, TachometerService, FilterService, Any]:
    clock = clock or SimClock()
    nucleus = InProcessNucleus()
    tach_config = {**default_configuration("fanwatch.Tachometer"), "backend": "simulated", **(tach or {})}
    flt_config = {**default_configuration("fanwatch.EdgeFilter"), **(flt or {})}
    t = TachometerService(nucleus.bus("fanwatch.Tachometer", tach_config), thing=THING, clock=clock)
    f = FilterService(nucleus.bus("fanwatch.EdgeFilter", flt_config), thing=THING, clock=clock)
    f.start()
    t.start()
    return nucleus, t, f, clock


def seconds(t: TachometerService, f: FilterService, clock: SimClock, n: int) -> None:
    """``n`` publish cycles, one a second; the first a second after the tachometer opened its fans."""
    for _ in range(n):
        clock.advance(1.0)
        t.step()
        f.process(None)


def telemetry(nucleus: InProcessNucleus) -> list[Any]:
    return [parse_telemetry(p, thing=THING) for t, p in nucleus.iot if t.endswith("/telemetry")]


def test_sequence_numbers_have_no_gaps_and_both_components_report_running() -> None:
    nucleus, t, f, clock = device(flt={"batchSize": 3, "deadbandRpm": 0, "deadbandPercent": 0})
    seconds(t, f, clock, 30)
    msgs = telemetry(nucleus)
    assert [m.seq for m in msgs] == list(range(len(msgs))) and len(msgs) == 10
    assert nucleus.states == {"fanwatch.EdgeFilter": ["RUNNING"], "fanwatch.Tachometer": ["RUNNING"]}
    assert all("simulated" in r.flags for m in msgs for r in m.readings)


def raw_readings(nucleus: InProcessNucleus, fan: str, clock: SimClock) -> list[Any]:
    """(seq, seconds on ``clock``, reading) of what the tachometer published for ``fan``."""
    messages = [parse_telemetry(p) for topic, p in nucleus.local if topic == f"fanwatch/raw/{fan}"]
    return [(m.seq, (m.sent - clock.utc(0)).total_seconds(), m.readings[0]) for m in messages]


def test_no_fan_is_reported_stalled_before_its_stall_timeout_has_passed() -> None:
    """The tachometer used to publish 0 rpm ``stalled`` for every fan the instant it opened it."""
    fans = {"spinning": {"targetRpm": 3000}, "stopped": {"targetRpm": 0, "pin": 18}}
    nucleus, t, f, clock = device(tach={"fans": fans, "stallTimeoutSeconds": 3})
    t.step()  # the instant it opened the fans: nothing is measured yet
    seconds(t, f, clock, 5)  # then 1, 2, ..., 5 s
    spinning = raw_readings(nucleus, "spinning", clock)
    assert [(seq, at) for seq, at, _ in spinning] == [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0), (4, 5.0)]
    assert all(r.rpm == pytest.approx(3000, rel=0.005) and "stalled" not in r.flags for _, _, r in spinning)
    stopped = raw_readings(nucleus, "stopped", clock)
    assert [(seq, at, r.rpm) for seq, at, r in stopped] == [(0, 3.0, 0), (1, 4.0, 0), (2, 5.0, 0)]
    assert all("stalled" in r.flags for _, _, r in stopped)  # still read as 0 once the timeout passed


def test_the_in_process_demo_reports_a_stall_only_where_a_fan_stopped() -> None:
    """The symptom as reported: ``fanwatch demo --in-process`` began every fan with 0 rpm ``stalled``."""
    run = run_edge_in_process(Scenario.fleet(devices=1, minutes=3, warmup_minutes=0))
    readings = [r for _, log in run.observations for m in log.telemetry for r in m.readings]
    assert any(r.label == "stall" and "stalled" in r.flags for r in readings)  # the real stall is there
    stall_ended = max(r.ts for r in readings if r.label == "stall")
    # every reading is sent, so the second or two the rotor needs to spin up after a stall shows too
    assert [
        r
        for r in readings
        if "stalled" in r.flags
        and r.label not in {"stall", "dropout"}
        and not stall_ended < r.ts <= stall_ended + timedelta(seconds=3)
    ] == []


def test_filter_configuration_changes_apply_without_a_restart_and_bad_ones_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nucleus, t, f, clock = device(flt={"batchSize": 10, "deadbandRpm": 0, "deadbandPercent": 0})
    seconds(t, f, clock, 10)
    boot = telemetry(nucleus)[0].boot
    nucleus.merge_configuration("fanwatch.EdgeFilter", {"batchSize": 2})
    seconds(t, f, clock, 6)
    assert [len(m.readings) for m in telemetry(nucleus)[1:]] == [2, 2, 2]
    with caplog.at_level(logging.ERROR):
        nucleus.merge_configuration("fanwatch.EdgeFilter", {"batchSize": 0, "heartbeatSecond": 1})
        seconds(t, f, clock, 4)
    refused = [r for r in caplog.records if r.getMessage() == "configuration refused"]
    assert refused and refused[0].fields["key"] in {"batchSize", "heartbeatSecond"}  # type: ignore[attr-defined]
    assert [len(m.readings) for m in telemetry(nucleus)[4:]] == [2, 2]  # the last good configuration
    assert {m.boot for m in telemetry(nucleus)} == {boot}


def test_tachometer_changes_apply_live_and_a_backend_that_cannot_open_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nucleus, t, f, clock = device(flt={"batchSize": 1, "deadbandRpm": 0, "deadbandPercent": 0})
    seconds(t, f, clock, 3)
    nucleus.merge_configuration("fanwatch.Tachometer", {"fans": {"fan1": {"targetRpm": 1200, "pin": 18}}})
    seconds(t, f, clock, 5)
    assert {m.fan for m in telemetry(nucleus)[-2:]} == {"fan0", "fan1"}
    with caplog.at_level(logging.ERROR):
        nucleus.merge_configuration("fanwatch.Tachometer", {"backend": "gpio"})  # this is no Raspberry Pi
        seconds(t, f, clock, 3)
    assert any("not a Raspberry Pi" in str(getattr(r, "fields", {}).get("problem")) for r in caplog.records)
    assert t.config.backend == "simulated" and len(t.tachs) == 2
    assert telemetry(nucleus)[-1].readings[0].rpm > 0  # still reading the simulated fans
    reopened = raw_readings(nucleus, "fan0", clock) + raw_readings(nucleus, "fan1", clock)
    assert not [r for _, _, r in reopened if "stalled" in r.flags]  # a reconfiguration is no stall


def test_replay_files_are_found_next_to_the_artifact(tmp_path: Path) -> None:
    (tmp_path / "rec.csv").write_text("t,rpm\n0,1800\n10,1800\n")
    nucleus = InProcessNucleus()
    config = {"backend": "replay", "fans": {"fan0": {"replayFile": "rec.csv"}}}
    clock = SimClock()
    t = TachometerService(
        nucleus.bus("fanwatch.Tachometer", config), thing=THING, clock=clock, base_dir=tmp_path
    )
    t.start()
    clock.advance(3)
    t.step()
    raw = [parse_telemetry(p) for topic, p in nucleus.local if topic == "fanwatch/raw/fan0"]
    assert raw[-1].readings[0].rpm == pytest.approx(1800, rel=0.005)


def test_callbacks_only_enqueue_the_work_happens_on_the_worker() -> None:
    nucleus, t, f, clock = device(flt={"batchSize": 1})
    clock.advance(1.0)
    t.step()  # the tachometer publishes: the filter's callback runs, as on the IPC thread
    assert [topic for topic, _ in nucleus.iot if topic.endswith("telemetry")] == []
    f.process(None)
    assert len(telemetry(nucleus)) == 1


def test_a_failing_publish_is_counted_and_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, t, f, clock = device(flt={"batchSize": 1, "deadbandRpm": 0, "deadbandPercent": 0})

    def refuse(topic: str, payload: bytes) -> None:
        raise RuntimeError("UnauthorizedError: not allowed to publish")

    f.bus.publish_iot = refuse  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        seconds(t, f, clock, 3)
    assert f.filter is not None and f.filter.counters["publish_errors"] >= 3
    assert any(r.getMessage() == "publish failed" for r in caplog.records)


def test_a_stall_reaches_iot_core_as_an_alert_and_clears() -> None:
    stall = {"kind": "stall", "startSeconds": 20, "endSeconds": 40}
    nucleus, t, f, clock = device(tach={"fans": {"fan0": {"targetRpm": 3000, "faults": [stall]}}})
    seconds(t, f, clock, 70)
    alerts = [parse_alert(p) for topic, p in nucleus.iot if topic == f"fanwatch/{THING}/alerts"]
    assert [(a.kind, a.state) for a in alerts] == [("stall", "raised"), ("stall", "cleared")]
    assert [parse_alert(p).kind for topic, p in nucleus.local if topic.endswith("/alerts")] == [
        "stall",
        "stall",
    ]
    raised_at = (alerts[0].ts - clock.utc(0)).total_seconds()
    assert 20 < raised_at < 28  # stall timeout (2 s) + raise-after (3 s) + the rotor running down


def test_sigterm_stops_the_worker_which_flushes_what_it_holds() -> None:
    nucleus, t, f, _ = device(
        flt={"batchSize": 600, "maxBatchAgeSeconds": 3600, "deadbandRpm": 0, "deadbandPercent": 0},
        tach={"windowSeconds": 0.1, "stallTimeoutSeconds": 0.1},
        clock=ScaledClock(MonotonicClock(), 1.0),
    )
    time.sleep(0.1)  # one window: the first reading
    for _ in range(5):
        t.step()
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stop_on_signals(stop)
    try:
        worker = threading.Thread(target=f.run, args=(stop,))
        worker.start()
        time.sleep(0.3)
        assert telemetry(nucleus) == []  # held: the batch is neither full nor old
        os.kill(os.getpid(), signal.SIGTERM)
        worker.join(timeout=5)
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    assert not worker.is_alive()
    assert sum(len(m.readings) for m in telemetry(nucleus)) == 5


def test_topic_filters_match_like_mqtt() -> None:
    assert topic_matches("fanwatch/raw/+", "fanwatch/raw/fan0")
    assert not topic_matches("fanwatch/raw/+", "fanwatch/raw/fan0/x")
    assert topic_matches("fanwatch/#", "fanwatch/raw/fan0") and not topic_matches(
        "fanwatch/raw", "fanwatch/raw/a"
    )


def test_a_scaled_clock_runs_faster_than_real_time() -> None:
    base = SimClock()
    fast = ScaledClock(base, 10.0)
    base.advance(2.0)
    assert fast.now() == pytest.approx(20.0)
    assert (fast.utc() - base.utc(0)).total_seconds() == pytest.approx(2.0)
    fast.sleep(10.0)
    assert base.now() == pytest.approx(3.0)


def test_the_tachometer_publishes_at_the_configured_rate_on_a_fixed_grid() -> None:
    clock = SimClock()
    nucleus = InProcessNucleus()
    config = {"backend": "simulated", "publishIntervalSeconds": 0.5, "fans": {"a": {}, "b": {}}}
    t = TachometerService(nucleus.bus("fanwatch.Tachometer", config), thing=THING, clock=clock)
    t.start()
    stop = threading.Event()
    nucleus.subscribe("fanwatch/raw/+", lambda _t, _p: stop.set() if clock.now() >= 10 else None)
    t.run(stop)
    raw = [parse_telemetry(p) for topic, p in nucleus.local if topic.startswith("fanwatch/raw/")]
    assert len(raw) == 2 * 19  # two fans, at 1, 1.5, ..., 10 s (the first after a full window)
    assert [m.seq for m in raw if m.fan == "a"] == list(range(19))
    assert [topic for topic, _ in nucleus.local if topic == "fanwatch/local/status"] == [
        "fanwatch/local/status"
    ]


def test_a_tachometer_that_cannot_open_its_backend_does_not_start() -> None:
    nucleus = InProcessNucleus()
    t = TachometerService(
        nucleus.bus("fanwatch.Tachometer", {"backend": "gpio"}), thing=THING, clock=SimClock()
    )
    with pytest.raises(ValueError, match="not a Raspberry Pi"):
        t.start()
    assert nucleus.states == {}


def test_a_batch_too_large_for_iot_core_is_split_and_an_oversized_reading_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from fanwatch.telemetry import Reading, Telemetry, encode

    nucleus, t, f, clock = device(
        flt={
            "batchSize": 40,
            "maxBatchAgeSeconds": 3600,
            "deadbandRpm": 0,
            "deadbandPercent": 0,
            "maxMessageBytes": 2048,
        }
    )
    with caplog.at_level(logging.INFO):
        seconds(t, f, clock, 40)
        huge = Reading(ts=clock.utc(), rpm=1, hz=1, pulses=1, window_s=1, label="x" * 4000)
        f.inbox.put(
            "raw",
            encode(Telemetry(thing=THING, fan="big", boot="x", seq=0, sent=clock.utc(), readings=(huge,))),
        )
        f.shutdown()  # drains the inbox, then publishes everything held
    sizes = [len(p) for topic, p in nucleus.iot if topic.endswith("/telemetry")]
    assert len(sizes) > 1 and max(sizes) <= 2048
    assert sum(len(m.readings) for m in telemetry(nucleus)) == 40
    assert f.filter is not None and f.filter.counters["too_large"] == 1
    messages = {r.getMessage() for r in caplog.records}
    assert "batch split to fit the message limit" in messages
    assert "reading refused: larger than the message limit on its own" in messages
