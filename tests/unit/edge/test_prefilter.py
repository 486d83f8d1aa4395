"""The edge filter's logic: bad input is counted and logged, alerts go out at once, nothing is lost."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from fanwatch.edge.clock import SimClock
from fanwatch.edge.config import ConfigError, parse_filter_config
from fanwatch.edge.prefilter import EdgeFilter, Publication
from fanwatch.telemetry import Reading, Status, Telemetry, encode, parse_alert, parse_status, parse_telemetry

THING = "pi-7"


class Feed:
    """Raw messages as the tachometer publishes them, one reading each, one per simulated second."""

    def __init__(self, clock: SimClock, fan: str = "fan0", boot: str = "tach0") -> None:
        self.clock, self.fan, self.boot, self.seq = clock, fan, boot, 0

    def message(self, rpm: float, flags: frozenset[str] = frozenset(), *, seq: int | None = None) -> bytes:
        ts = self.clock.utc()
        r = Reading(ts=ts, rpm=rpm, hz=rpm / 30, pulses=int(rpm / 30), window_s=1.0, flags=flags)
        n = self.seq if seq is None else seq
        self.seq = max(self.seq, n + 1)
        return encode(Telemetry(thing=THING, fan=self.fan, boot=self.boot, seq=n, sent=ts, readings=(r,)))


def make(clock: SimClock, **config: object) -> EdgeFilter:
    return EdgeFilter(parse_filter_config(config), thing=THING, clock=clock, version="1.2.3", boot="filt0")


def run(f: EdgeFilter, feed: Feed, rpms: list[float], stalled_below: float = -1) -> list[Publication]:
    out = []
    for rpm in rpms:
        flags = frozenset({"stalled"}) if rpm <= stalled_below else frozenset()
        out += f.accept(feed.message(rpm, flags))
        out += f.tick()
        feed.clock.advance(1.0)
    return out


def kinds(pubs: list[Publication]) -> list[str]:
    return [p.topic.rsplit("/", 1)[-1] for p in pubs]


def test_steady_readings_become_few_batched_messages_on_the_thing_topic() -> None:
    clock = SimClock()
    f = make(
        clock,
        deadbandRpm=30,
        deadbandPercent=1,
        batchSize=10,
        maxBatchAgeSeconds=600,
        heartbeatSeconds=5,
        statusIntervalSeconds=3600,
    )
    pubs = run(f, Feed(clock), [3000.0] * 100)
    telemetry = [
        parse_telemetry(p.payload, thing=THING) for p in pubs if p.topic == f"fanwatch/{THING}/telemetry"
    ]
    assert len(telemetry) == 2  # 100 readings, a heartbeat every 5 s: 20 sent, 10 per message
    assert [m.seq for m in telemetry] == [0, 1] and {m.boot for m in telemetry} == {"filt0"}
    assert sum(len(m.readings) for m in telemetry) == 20
    assert f.counters["suppressed"] == 80 and f.counters["readings"] == 100
    assert all("heartbeat" in r.flags for m in telemetry for r in m.readings[1:])


def test_with_a_basic_ingest_rule_telemetry_goes_to_that_rule_and_alerts_and_status_do_not() -> None:
    clock = SimClock()
    f = make(clock, batchSize=10, basicIngestRule="fanwatch_telemetry", statusIntervalSeconds=5)
    pubs = run(f, Feed(clock), [1500.0] * 10 + [0.0] * 5, stalled_below=50)
    topics = {p.topic for p in pubs}
    assert f"$aws/rules/fanwatch_telemetry/fanwatch/{THING}/telemetry" in topics
    assert {f"fanwatch/{THING}/alerts", f"fanwatch/{THING}/status"} <= topics  # the broker routes those
    assert f"fanwatch/{THING}/telemetry" not in topics


@pytest.mark.parametrize("rule", ["fanwatch-telemetry", "a/b", 7, "x" * 129])
def test_a_basic_ingest_rule_that_no_iot_rule_could_be_called_is_refused(rule: object) -> None:
    with pytest.raises(ConfigError, match="basicIngestRule"):
        parse_filter_config({"basicIngestRule": rule})


def test_malformed_and_foreign_messages_are_dropped_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = SimClock()
    f = make(clock)
    other = Feed(clock)
    foreign = json.loads(other.message(3000))
    foreign["thing"] = "someone-else"
    with caplog.at_level(logging.WARNING):
        assert f.accept(b"{not json") == []
        assert f.accept(json.dumps(foreign).encode()) == []
        assert f.accept(b'{"schema": "fanwatch.telemetry/1", "thing": "pi-7", "readings": []}') == []
    assert f.counters["invalid"] == 3 and f.counters["dropped"] == 3
    fields = [getattr(r, "fields", {}).get("field") for r in caplog.records]
    assert fields == ["$", "thing", "readings"]


def test_duplicates_and_replays_are_dropped_but_a_new_tachometer_boot_is_welcome() -> None:
    clock = SimClock()
    f = make(clock, batchSize=1)
    feed = Feed(clock)
    first = feed.message(3000)
    assert kinds(f.accept(first)) == ["telemetry"]
    assert f.accept(first) == []  # a redelivery
    assert f.accept(feed.message(3500, seq=0)) == []  # an old sequence number replayed
    assert f.counters["duplicates"] == 2
    restarted = Feed(clock, boot="tach1")
    assert kinds(f.accept(restarted.message(3500))) == ["telemetry"]


def test_a_spike_is_replaced_flagged_and_does_not_raise_an_alert() -> None:
    clock = SimClock()
    f = make(clock, deadbandRpm=30, batchSize=1, underSpeedRpm=1000, raiseAfterSeconds=0)
    pubs = run(f, Feed(clock), [3000.0] * 10 + [200.0] + [3000.0] * 5)
    assert "alerts" not in kinds(pubs)
    assert f.counters["spikes"] == 1
    sent = [r for p in pubs if p.topic.endswith("telemetry") for r in parse_telemetry(p.payload).readings]
    assert sent and all(r.rpm == 3000 for r in sent)  # the 200 never leaves the device
    assert f.counters["suppressed"] == 15  # the replaced spike equals the last value sent


def test_a_stall_raises_an_alert_at_once_locally_and_flushes_the_batch() -> None:
    clock = SimClock()
    f = make(clock, batchSize=30, maxBatchAgeSeconds=600, raiseAfterSeconds=2, clearAfterSeconds=3)
    feed = Feed(clock)
    pubs = run(f, feed, [3000.0] * 20 + [0.0] * 5, stalled_below=0)
    alerts = [p for p in pubs if p.topic == f"fanwatch/{THING}/alerts"]
    assert len(alerts) == 1 and alerts[0].local  # also on local pub/sub, for a buzzer or an LED
    alert = parse_alert(alerts[0].payload, thing=THING)
    assert (alert.kind, alert.state, alert.fan, alert.rpm) == ("stall", "raised", "fan0", 0)
    assert alert.since == alert.ts - timedelta(seconds=2)
    after = pubs[pubs.index(alerts[0]) + 1 :]
    assert kinds(after)[:1] == ["telemetry"]  # the readings leading up to it go out with it
    more = run(f, feed, [3000.0] * 6)
    cleared = [parse_alert(p.payload) for p in more if p.topic.endswith("alerts")]
    assert [(a.kind, a.state) for a in cleared] == [("stall", "cleared")]


def test_a_silent_fan_is_reported_lost_and_found() -> None:
    clock = SimClock()
    f = make(clock, sensorTimeoutSeconds=10)
    feed = Feed(clock)
    run(f, feed, [3000.0] * 3)
    clock.advance(10.5)
    lost = [parse_alert(p.payload) for p in f.tick() if p.topic.endswith("alerts")]
    assert [(a.kind, a.state) for a in lost] == [("sensor_lost", "raised")]
    assert "alerts" not in kinds(f.tick())  # raised once, not on every tick
    back = [parse_alert(p.payload) for p in f.accept(feed.message(3000)) if p.topic.endswith("alerts")]
    assert [(a.kind, a.state) for a in back] == [("sensor_lost", "cleared")]


def test_shutdown_flush_sends_everything_held() -> None:
    clock = SimClock()
    f = make(clock, batchSize=600, maxBatchAgeSeconds=3600, deadbandRpm=0, deadbandPercent=0)
    run(f, Feed(clock), [3000.0 + i for i in range(50)])
    held = f.flush()
    assert kinds(held) == ["telemetry"]
    assert len(parse_telemetry(held[0].payload).readings) == 50
    assert f.flush() == []


def test_reconfiguring_keeps_batches_and_applies_new_thresholds() -> None:
    clock = SimClock()
    f = make(
        clock, batchSize=600, maxBatchAgeSeconds=3600, deadbandRpm=0, deadbandPercent=0, raiseAfterSeconds=0
    )
    feed = Feed(clock)
    run(f, feed, [3000.0 + i for i in range(10)])
    f.reconfigure(parse_filter_config({"batchSize": 5, "overSpeedRpm": 3005, "raiseAfterSeconds": 0}))
    pubs = run(f, feed, [3010.0])
    assert kinds(pubs) == ["alerts", "telemetry"]
    assert len(parse_telemetry(pubs[1].payload).readings) == 11


def test_status_reports_versions_config_counters_and_the_last_reading() -> None:
    clock = SimClock()
    f = make(clock, statusIntervalSeconds=60)
    peer = Status(
        thing=THING,
        boot="tach0",
        ts=clock.utc(),
        uptime_s=1,
        components={"fanwatch.Tachometer": "1.0.7"},
        config_digest="abc",
        counters={"pulses": 42},
    )
    f.note_peer(encode(peer))
    f.note_peer(b"garbage")
    pubs = run(f, Feed(clock), [3000.0] * 61)
    statuses = [parse_status(p.payload, thing=THING) for p in pubs if p.topic.endswith("status")]
    assert len(statuses) == 2  # at start and after a minute
    s = statuses[-1]
    assert s.components == {"fanwatch.EdgeFilter": "1.2.3", "fanwatch.Tachometer": "1.0.7"}
    assert s.config_digest.startswith("fanwatch.EdgeFilter=") and "fanwatch.Tachometer=abc" in s.config_digest
    assert (
        s.counters["tachometer_pulses"] == 42 and s.counters["readings"] == 61 and s.counters["invalid"] == 1
    )
    assert s.last_reading is not None and s.last_reading.rpm == 3000 and s.uptime_s == 60
