"""``fanwatch demo``'s parts that need no Greengrass core: the fleet it deploys, the in-process run,
what it reads from the broker (bad input included), how it judges a run, and its report and picture.

The run on local Greengrass cores is tested end to end in ``tests/e2e/test_demo.py``, the report in a
browser in ``tests/e2e/test_report_in_chromium.py``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from fanwatch.core.deployment.document import DeploymentDocument
from fanwatch.demo.assemble import edge_story
from fanwatch.demo.inprocess import run_edge_in_process
from fanwatch.demo.observations import Observations
from fanwatch.demo.outcome import AFTER_FAULT_S, Caught, Finding, Ledger, Point, Source, Story, judge
from fanwatch.demo.page import write_report
from fanwatch.demo.plot import plot
from fanwatch.demo.report import failures, summary
from fanwatch.demo.scenario import EDGE_FILTER, TACHOMETER, FanPlan, Fault, Scenario, ThingPlan

EVENTS = Path(__file__).resolve().parents[2] / "events" / "mqtt"
VERSIONS = {TACHOMETER: "1.0.0", EDGE_FILTER: "1.0.0"}


# --- the fleet and its deployments ----------------------------------------------------------------


def test_each_device_gets_the_deployment_a_user_would_send_it() -> None:
    scenario = Scenario.fleet(devices=5, minutes=20, time_scale=20, warmup_minutes=5)
    documents = {t.name: scenario.deployment(t.name, VERSIONS) for t in scenario.things}
    assert list(documents) == [f"demo-pi-00{n}" for n in range(1, 6)]
    fans, thresholds = {}, {}
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
        assert [edge[key] for key in timings] == [3, 0.15, 15, 3.0]  # sensor timeout: a floor of 3 s
        fans[thing] = tach["fans"]
        thresholds[thing] = (edge["underSpeedRpm"], edge["overSpeedRpm"])
    # the story starts after five minutes of warm-up: 15 minutes of it, a stall from 25 % to 40 %
    assert fans["demo-pi-001"]["fan1"]["faults"] == [
        {"kind": "stall", "startSeconds": 525.0, "endSeconds": 660.0, "severity": 1.0}
    ]
    assert "endSeconds" not in fans["demo-pi-001"]["fan2"]["faults"][0]  # a worn bearing does not heal
    assert {f["targetRpm"] for f in fans["demo-pi-001"].values()} == {2950, 3000, 3050}  # own speeds
    assert fans["demo-pi-003"]["fan0"]["setpoints"] == [
        {"atSeconds": 480.0, "rpm": 2200.0},
        {"atSeconds": 750.0, "rpm": 3600.0},
        {"atSeconds": 1020.0, "rpm": 2600.0},
    ]
    # each device's thresholds leave room for all its fans, and every speed its controller commands
    assert thresholds["demo-pi-001"] == (2360, 3812)
    assert thresholds["demo-pi-003"] == (1760, 4500)
    first_fault = min(f.start_s for _, _, f in scenario.faults())
    assert first_fault > scenario.warmup_s  # every fan warms up healthy


def test_settings_a_component_would_refuse_are_refused_before_anything_is_deployed() -> None:
    melting = Scenario((ThingPlan("pi", (FanPlan("fan0", 0, 3000, (Fault("melting", 0, 10),)),)),), 5, 20)
    with pytest.raises(ValueError, match=r"fanwatch.Tachometer refuses .* fans\.fan0\.faults\[0\]\.kind"):
        melting.deployment("pi", VERSIONS)
    for devices, minutes, scale, warmup in (
        (0, 20, 20, 5),
        (21, 20, 20, 5),
        (3, 2, 20, 0),
        (3, 20, 61, 5),
        (3, 8, 20, 5),
    ):
        with pytest.raises(ValueError, match="must be"):
            Scenario.fleet(devices=devices, minutes=minutes, time_scale=scale, warmup_minutes=warmup)


# --- the in-process run ---------------------------------------------------------------------------


def test_the_in_process_fleet_raises_the_edge_alerts_its_faults_should_and_none_on_healthy_fans() -> None:
    scenario = Scenario.fleet(devices=5, minutes=8, warmup_minutes=1)
    run = run_edge_in_process(scenario)
    story = edge_story(run.scenario, run.observations, run.where, run.wall_s)
    verdict = judge(story)
    by_edge = {(v.thing, v.fan, v.fault.kind) for v in verdict.faults if v.edge_s is not None}
    assert {
        ("demo-pi-001", "fan1", "stall"),
        ("demo-pi-001", "fan2", "bearing_wear"),
        ("demo-pi-002", "fan1", "overspeed"),
        ("demo-pi-004", "fan0", "overspeed"),
        ("demo-pi-005", "fan2", "stall"),
    } <= by_edge
    stall = next(
        v for v in verdict.faults if (v.thing, v.fan, v.fault.kind) == ("demo-pi-001", "fan1", "stall")
    )
    assert stall.edge_s is not None and 2 <= stall.edge_s <= 10  # 2 s without a pulse reads 0, then 3 s
    assert verdict.false_alarms_on_healthy(story) == []
    labels = {p.label for fan in story for p in fan.readings}
    assert {"normal", "stall", "bearing_wear", "overspeed", "glitch", "dropout", "hunting"} <= labels
    controlled = story.fans[("demo-pi-003", "fan0")]
    assert {p.target_rpm for p in controlled.readings} == {3000, 2200, 3600, 2600}  # it was commanded
    log = run.observations.things["demo-pi-001"]
    per_day = log.messages * 86_400 / run.observations.simulated_seconds("demo-pi-001")
    assert per_day < 86_400 * 3 / 20  # far below one message per reading


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


# --- judging a run, its summary, report and picture -----------------------------------------------

SMALL = Scenario.fleet(devices=1, minutes=10, warmup_minutes=2)  # fan0 healthy, fan1 stall, fan2 wear


def _story(**findings: list[tuple[Source, float]]) -> Story:
    """demo-pi-001's fans, readings every 10 s, with ``findings`` (fan -> (source, at)) raised."""
    story = Story.empty(SMALL, "here", 1.0)
    for fan in story:
        fan.readings = [Point(float(t), fan.plan.normal_rpm) for t in range(0, 600, 10)]
        fan.scores = [(float(t), 0.7) for t in range(0, 600, 10)]
        for source, at in findings.get(fan.plan.id, []):
            kind = "rcf" if source is Source.RCF else "stall"
            fan.findings.append(
                Finding(fan.thing, fan.plan.id, source, kind, at, 0.0, score=3.0, threshold=1.8)
            )
    return story


def test_each_fault_is_caught_by_what_found_it_in_its_window_and_the_rest_are_false_alarms() -> None:
    stall = SMALL.fan("demo-pi-001", "fan1").faults[0]
    wear = SMALL.fan("demo-pi-001", "fan2").faults[0]
    story = _story(
        fan0=[(Source.RCF, 100.0)],  # a healthy fan: a false alarm
        fan1=[
            (Source.EDGE, stall.start_s + 6),
            (Source.RCF, stall.start_s + 12),
            (Source.RCF, stall.end_s + AFTER_FAULT_S - 1),  # spinning up again: still the stall's doing
            (Source.RCF, stall.start_s - 30),  # before the fault: a false alarm on a faulty fan
        ],
        fan2=[],
    )
    verdict = judge(story)
    caught = {(v.fan, v.fault.kind): (v.caught, v.edge_s, v.rcf_s) for v in verdict.faults}
    assert caught == {
        ("fan1", "stall"): (Caught.BOTH, 6.0, 12.0),
        ("fan2", "bearing_wear"): (Caught.MISSED, None, None),
    }
    assert [(f.fan, f.at_s) for f in verdict.false_alarms] == [("fan0", 100.0), ("fan1", stall.start_s - 30)]
    assert [f.fan for f in verdict.false_alarms_on_healthy(story)] == ["fan0"]
    story.ledger = Ledger.of([("a", 1), ("a", 2), ("a", 3)], [("a", 1), ("a", 1), ("a", 2)])
    problems = failures(story, verdict)
    assert problems == [
        f"demo-pi-001/fan2: bearing_wear from {_clock(wear.start_s)} was missed "
        "(no edge alert, no RCF anomaly)",
        "demo-pi-001/fan0 is healthy but alarmed at 01:40: "
        "RCF anomaly at 0 rpm, score 3.00 over threshold 1.80",
        "the lake does not hold every reading exactly once: "
        "3 sent, 3 stored, 1 lost, 1 duplicated, 0 unexpected",
    ]
    text = summary(story, verdict)
    assert "1 LOST, 1 DUPLICATED" in text and "<- MISSED" in text
    assert "False alarms: 1 on 1 healthy fan, 1 on faulty fans outside their faults" in text


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def test_a_clean_run_has_no_failures_and_says_nothing_was_lost() -> None:
    stall = SMALL.fan("demo-pi-001", "fan1").faults[0]
    wear = SMALL.fan("demo-pi-001", "fan2").faults[0]
    story = _story(fan1=[(Source.EDGE, stall.start_s + 5)], fan2=[(Source.RCF, wear.start_s + 40)])
    rows = [("demo-pi-001", "fan0", "boot", n, n) for n in range(50)]
    story.ledger = Ledger.of(rows, list(reversed(rows)))
    verdict = judge(story)
    assert failures(story, verdict) == [] and story.ledger.exact
    assert "50 sent at the edge, 50 stored in the lake: nothing lost, nothing twice" in summary(
        story, verdict
    )


def test_the_picture_and_the_report_draw_the_schedule_and_every_fan(tmp_path: Path) -> None:
    stall = SMALL.fan("demo-pi-001", "fan1").faults[0]
    story = _story(fan1=[(Source.EDGE, stall.start_s + 5), (Source.RCF, stall.start_s + 9)])
    picture = plot(story, tmp_path / "fleet.png").read_bytes()
    assert picture.startswith(b"\x89PNG") and len(picture) > 20_000
    page = write_report(story, tmp_path / "report.html").read_text()
    body = page.split("</head>", 1)[1]  # after the inlined plotly bundle
    assert body.count("Plotly.newPlot(") == 1 + len(story.fans)  # the timeline, then one chart per fan
    assert f'"x0":{round(stall.start_s / 60, 4)}' in page  # the stall shaded where it was scheduled
    assert "demo-pi-001/fan0" in page and "fault caught" in page and "fault missed" in page
    assert body.count("</script>") == 1  # no data ends the charts' script early


def test_the_report_escapes_what_it_did_not_write(tmp_path: Path) -> None:
    story = _story()
    story.problems.append("<script>alert(1)</script> refused")
    page = write_report(story, tmp_path / "report.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
