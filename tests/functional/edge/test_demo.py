"""``fanwatch demo``'s parts that need no Greengrass core: the fleet it deploys, the in-process run,
what it reads from the broker (bad input included), how it judges a run, and its picture.

The run on local Greengrass cores is tested end to end in ``tests/e2e/test_demo.py``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from fanwatch.core.deployment.document import DeploymentDocument
from fanwatch.demo.inprocess import run_in_process
from fanwatch.demo.observations import DemoRun, Observations, Timeline
from fanwatch.demo.plot import fault_spans
from fanwatch.demo.report import alert_causes, missing
from fanwatch.demo.scenario import EDGE_FILTER, TACHOMETER, FanPlan, Fault, Scenario, ThingPlan
from fanwatch.telemetry import Alert, Reading, Telemetry, encode, parse_telemetry

EVENTS = Path(__file__).resolve().parents[2] / "events" / "mqtt"
VERSIONS = {TACHOMETER: "1.0.0", EDGE_FILTER: "1.0.0"}


# --- the fleet and its deployments ----------------------------------------------------------------


def test_each_thing_gets_the_deployment_a_user_would_send_it() -> None:
    scenario = Scenario.fleet(things=3, minutes=20, time_scale=20)
    documents = {t.name: scenario.deployment(t.name, VERSIONS) for t in scenario.things}
    assert list(documents) == ["demo-pi-001", "demo-pi-002", "demo-pi-003"]
    fans = {}
    for thing, document in documents.items():
        merge = document["components"][TACHOMETER]["configurationUpdate"]["merge"]
        assert isinstance(merge, str)  # as the CreateDeployment API takes it
        parsed = {n: c.update.merge for n, c in DeploymentDocument.parse(document).components.items()}
        assert parsed["aws.greengrass.Nucleus"] == {"interpolateComponentConfiguration": True}
        tach, edge = parsed[TACHOMETER], parsed[EDGE_FILTER]
        assert tach is not None and edge is not None
        assert (tach["backend"], tach["timeScale"], tach["publishIntervalSeconds"]) == ("simulated", 20, 0.05)
        # the recipe's timings divided by the time scale, but never below what the filter accepts
        timings = ("heartbeatSeconds", "raiseAfterSeconds", "statusIntervalSeconds", "sensorTimeoutSeconds")
        assert [edge[key] for key in timings] == [3, 0.15, 15, 1.0]
        fans[thing] = tach["fans"]
    assert fans["demo-pi-001"]["fan1"]["faults"] == [
        {"kind": "stall", "startSeconds": 360.0, "endSeconds": 540.0, "severity": 1.0}
    ]
    assert "endSeconds" not in fans["demo-pi-001"]["fan2"]["faults"][0]  # a worn bearing does not heal
    assert len({json.dumps(f) for f in fans.values()}) == 3  # faults per thing
    assert scenario.stalls() == [("demo-pi-001", "fan1", Fault("stall", 360.0, 540.0))]


def test_settings_a_component_would_refuse_are_refused_before_anything_is_deployed() -> None:
    melting = Scenario((ThingPlan("pi", (FanPlan("fan0", 0, (Fault("melting", 0, 10),)),)),), 5, 20)
    with pytest.raises(ValueError, match=r"fanwatch.Tachometer refuses .* fans\.fan0\.faults\[0\]\.kind"):
        melting.deployment("pi", VERSIONS)
    for things, minutes, scale in ((0, 20, 20), (3, 2, 20), (3, 20, 61)):
        with pytest.raises(ValueError, match="must be"):
            Scenario.fleet(things=things, minutes=minutes, time_scale=scale)


# --- the in-process run ---------------------------------------------------------------------------


def test_the_in_process_fleet_raises_the_alerts_its_faults_should() -> None:
    run = run_in_process(Scenario.fleet(things=3, minutes=8))
    seen = {
        (thing, a.fan, a.kind, a.state, alert_causes(log)[(a.fan, a.boot, a.seq)])
        for thing, log in run.observations
        for a in log.alerts
    }
    assert {
        ("demo-pi-001", "fan1", "stall", "raised", "stall"),
        ("demo-pi-001", "fan1", "stall", "cleared", "stall"),
        ("demo-pi-001", "fan2", "under_speed", "raised", "bearing_wear"),
        ("demo-pi-002", "fan1", "over_speed", "raised", "overspeed"),
        ("demo-pi-003", "fan0", "over_speed", "raised", "overspeed"),
    } <= seen
    healthy = {("demo-pi-001", "fan0"), ("demo-pi-002", "fan2"), ("demo-pi-003", "fan1")}
    assert not [s for s in seen if s[:2] in healthy]  # a healthy fan raises nothing
    labels = {r.label for _, log in run.observations for m in log.telemetry for r in m.readings}
    assert {"normal", "stall", "bearing_wear", "overspeed", "glitch", "dropout", "hunting"} <= labels
    assert missing(run) == []
    log = run.observations.things["demo-pi-001"]
    per_day = log.messages * 86_400 / run.observations.simulated_seconds("demo-pi-001")
    assert per_day < 86_400 * 3 / 20  # far below one message per reading


def test_fanwatch_demo_in_process_prints_a_report_and_draws_the_fleet(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fanwatch",
            "demo",
            "--in-process",
            "--things",
            "2",
            "--minutes",
            "4",
            "--out",
            out,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo-pi-001:" in done.stdout and "demo-pi-002:" in done.stdout
    assert "messages per device per day" in done.stdout and "<- fault: stall" in done.stdout
    assert "fanwatch demo OK" in done.stdout
    picture = (out / "fleet.png").read_bytes()
    assert picture.startswith(b"\x89PNG") and len(picture) > 20_000
    lines = (out / "messages.jsonl").read_text().splitlines()
    telemetry = [
        json.loads(line) for line in lines if line.startswith('{"topic": "fanwatch/demo-pi-002/telemetry"')
    ]
    assert telemetry and parse_telemetry(telemetry[0]["payload"], thing="demo-pi-002").readings


def test_fanwatch_demo_refuses_a_run_too_short_to_show_a_stall() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fanwatch", "demo", "--minutes", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "minutes must be 3 to 1440" in done.stderr


# --- what the demo reads from the broker ----------------------------------------------------------


def _telemetry_event() -> bytes:
    return (EVENTS / "telemetry.json").read_bytes()


def test_observations_refuse_what_breaks_the_contract_and_drop_redeliveries() -> None:
    observations = Observations()
    valid = _telemetry_event()
    observations.add("fanwatch/pi-lab-01/telemetry", valid)
    observations.add("fanwatch/pi-lab-01/telemetry", valid)  # a QoS 1 redelivery
    observations.add("fanwatch/pi-lab-01/alerts", (EVENTS / "alert_stall.json").read_bytes())
    observations.add("fanwatch/pi-lab-01/telemetry", b"{not json")
    observations.add("fanwatch/pi-lab-02/telemetry", valid)  # names pi-lab-01: one thing posing as another
    observations.add("fanwatch/pi-lab-01/telemetry", valid.replace(b'"rpm":1500.0', b'"rpm":"fast"'))
    observations.add("fanwatch/pi-lab-01/commands", valid)
    observations.add("elsewhere/pi-lab-01/telemetry", valid)
    observations.add("fanwatch/pi-lab-01/status", b"[" * 100_000)  # too deep for the JSON parser
    log = observations.things["pi-lab-01"]
    assert (len(log.telemetry), len(log.alerts), log.duplicates) == (1, 1, 1)
    assert "pi-lab-02" not in observations.things
    reasons = [r.reason for r in observations.refused]
    assert reasons[0].startswith("$: not valid JSON")
    assert reasons[1].startswith("thing: message names 'pi-lab-01' but arrived from 'pi-lab-02'")
    assert reasons[2].startswith("readings[0].rpm: expected a number")
    assert reasons[3:5] == ["topic: not fanwatch/<thing>/telemetry|alerts|status"] * 2
    assert reasons[5] == "$: JSON nested too deeply"
    assert observations.count == 9  # everything is kept as it arrived, for messages.jsonl


def test_the_observer_reads_every_thing_from_a_real_broker_and_survives_garbage(tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt

    from fanwatch.core.mqtt.amqtt_broker import AmqttBroker
    from fanwatch.demo.observer import BrokerObserver

    observations = Observations()
    with AmqttBroker(tmp_path / "broker") as broker, BrokerObserver(broker.host, broker.port, observations):
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pi-lab-01")
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        for payload in (b"\xff\xfe garbage", _telemetry_event()):
            publisher.publish("fanwatch/pi-lab-01/telemetry", payload, qos=1).wait_for_publish(5)
        publisher.publish("fanwatch/pi-lab-01/local", b"not subscribed").wait_for_publish(5)
        deadline = time.monotonic() + 10
        while observations.count < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        publisher.loop_stop()
        publisher.disconnect()
    assert [r.topic for r in observations.refused] == ["fanwatch/pi-lab-01/telemetry"]
    assert len(observations.things["pi-lab-01"].telemetry) == 1
    assert observations.count == 2


# --- judging a run, and its picture ---------------------------------------------------------------


def _reading(t0: Timeline, second: float, rpm: float, label: str) -> Reading:
    return Reading(
        ts=t0.origin + timedelta(seconds=second), rpm=rpm, hz=rpm / 30, pulses=0, window_s=1.0, label=label
    )


def _stall_alert(t0: Timeline, second: float) -> Alert:
    ts = t0.origin + timedelta(seconds=second)
    return Alert("demo-pi-001", "fan1", "b1", 0, "stall", "raised", ts, 0.0, ts, "below 100 rpm")


def test_a_run_is_judged_by_telemetry_from_every_thing_and_a_stall_alert_caused_by_the_stall() -> None:
    t0 = Timeline(parse_telemetry(_telemetry_event()).sent, 1.0)

    def seen(label: str) -> Observations:
        """fan1 reading ``label`` around 03:20, when a stall alert is raised."""
        observations = Observations()
        readings = tuple(_reading(t0, s, 0 if label == "stall" else 3000, label) for s in (180, 200))
        message = Telemetry("demo-pi-001", "fan1", "b1", 0, readings[0].ts, readings)
        observations.add("fanwatch/demo-pi-001/telemetry", encode(message))
        observations.add("fanwatch/demo-pi-001/alerts", encode(_stall_alert(t0, 200)))
        return observations

    failed = ["deployment to demo-pi-002: FAILED"]
    false_alarm = DemoRun(Scenario.fleet(things=2, minutes=10), "here", seen("normal"), 1.0, failed)
    assert missing(false_alarm) == [
        "deployment to demo-pi-002: FAILED",
        "no telemetry arrived from demo-pi-002",
        "no stall alert from demo-pi-001 fan1, whose fan stalled at 03:00–04:30 simulated",
    ]
    assert missing(DemoRun(Scenario.fleet(things=1, minutes=10), "here", seen("stall"), 1.0)) == []


def test_fault_spans_run_from_the_first_labelled_reading_to_the_next_label() -> None:
    t0 = Timeline(parse_telemetry(_telemetry_event()).sent, 20.0)
    labels = ["normal", "stall", "stall", "normal", "overspeed", "overspeed"]
    readings = [
        _reading(t0, i / 20, 3000, label) for i, label in enumerate(labels)
    ]  # one simulated second apart
    assert fault_spans(readings, t0) == [("stall", 1.0, 3.0), ("overspeed", 4.0, 5.0)]
    assert fault_spans([], t0) == []
    assert math.isclose(t0.at(t0.origin + timedelta(seconds=3)), 60.0)
