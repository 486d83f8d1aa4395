"""``fanwatch demo``: simulated fans with faults through the real edge components, faster than real time.

Five simulated fans (one healthy, one that stalls, one with worn bearings, one with a noisy and
intermittent tach signal, one that hunts and then over-speeds) run through the real
``fanwatch.Tachometer`` and ``fanwatch.EdgeFilter`` services with their recipes' default
configuration, wired in-process (local pub/sub, configuration and IoT Core stand in for the nucleus),
on a simulated clock. Near the end the tachometer stops, so the filter reports the sensors lost, and
the filter is shut down as SIGTERM would, flushing what it holds. The demo prints what reached IoT Core.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fanwatch.build import COMPONENTS
from fanwatch.edge.clock import SimClock
from fanwatch.edge.inprocess import InProcessNucleus
from fanwatch.edge.run_filter import FilterService
from fanwatch.edge.run_tachometer import TachometerService
from fanwatch.telemetry import parse_alert, parse_status, parse_telemetry

__all__ = ["DemoResult", "add_arguments", "default_configuration", "run", "simulate"]

THING = "demo-pi-01"
TACHOMETER = "fanwatch.Tachometer"
EDGE_FILTER = "fanwatch.EdgeFilter"


def default_configuration(component: str) -> dict[str, Any]:
    """The component's ``DefaultConfiguration`` from its recipe in ``recipes/``."""
    import yaml

    recipe = yaml.safe_load(COMPONENTS[component].recipe.read_text())
    return dict(recipe["ComponentConfiguration"]["DefaultConfiguration"])


def demo_fans(minutes: float) -> dict[str, Any]:
    """The simulated fleet on one device; fault times scale with the run's length."""
    m = minutes * 60.0

    def fault(kind: str, start: float, end: float, severity: float = 1.0) -> dict[str, Any]:
        return {"kind": kind, "startSeconds": start * m, "endSeconds": end * m, "severity": severity}

    return {
        "fan-a": {"targetRpm": 3000, "seed": 1},
        "fan-b": {"targetRpm": 3000, "seed": 2, "faults": [fault("stall", 0.30, 0.45)]},
        "fan-c": {"targetRpm": 3000, "seed": 3, "faults": [fault("bearing_wear", 0.10, 1.0, 1.5)]},
        "fan-d": {
            "targetRpm": 3000,
            "seed": 4,
            "faults": [fault("glitch", 0.05, 0.40, 2.0), fault("dropout", 0.50, 0.70)],
        },
        "fan-e": {
            "targetRpm": 3000,
            "seed": 5,
            "faults": [fault("hunting", 0.15, 0.45), fault("overspeed", 0.60, 0.80)],
        },
    }


@dataclass
class DemoResult:
    simulated_s: float
    wall_s: float
    fans: list[str]
    telemetry: list[Any] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)
    statuses: list[Any] = field(default_factory=list)
    iot_messages: int = 0
    payload_bytes: int = 0
    raw_readings: int = 0

    @property
    def messages_per_day(self) -> float:
        return self.iot_messages * 86_400.0 / self.simulated_s


def simulate(
    *,
    minutes: float = 20.0,
    tach_overrides: Mapping[str, Any] | None = None,
    filter_overrides: Mapping[str, Any] | None = None,
    sensor_loss: bool = True,
) -> DemoResult:
    """Run the simulated device and collect what it sent to IoT Core."""
    clock = SimClock()
    nucleus = InProcessNucleus()
    tach_config = {**default_configuration(TACHOMETER), "backend": "simulated", "fans": demo_fans(minutes)}
    tach_config.update(tach_overrides or {})
    filter_config = {
        **default_configuration(EDGE_FILTER),
        "underSpeedRpm": 2400,
        "overSpeedRpm": 3800,
        "statusIntervalSeconds": 300,
    }
    filter_config.update(filter_overrides or {})
    quiet = logging.getLogger("fanwatch.demo.components")  # the report says what matters
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    tach = TachometerService(
        nucleus.bus(TACHOMETER, tach_config), thing=THING, clock=clock, version="demo", logger=quiet
    )
    edge = FilterService(
        nucleus.bus(EDGE_FILTER, filter_config), thing=THING, clock=clock, version="demo", logger=quiet
    )
    edge.start()
    tach.start()
    started = time.perf_counter()
    total = minutes * 60.0
    tach_stops = total - 60.0 if sensor_loss else total  # the last minute: the tachometer is gone
    while clock.now() < total:
        if clock.now() < tach_stops:
            tach.step()
        edge.process(None)
        clock.advance(tach.config.publish_interval_s)
    edge.shutdown()
    result = DemoResult(
        simulated_s=total, wall_s=time.perf_counter() - started, fans=[f.id for f in tach.config.fans]
    )
    result.raw_readings = tach.counters["readings"]
    for topic, payload in nucleus.iot:
        result.iot_messages += 1
        result.payload_bytes += len(payload)
        kind = topic.rsplit("/", 1)[-1]
        if kind == "telemetry":
            result.telemetry.append(parse_telemetry(payload, thing=THING))
        elif kind == "alerts":
            result.alerts.append(parse_alert(payload, thing=THING))
        else:
            result.statuses.append(parse_status(payload, thing=THING))
    return result


def report(result: DemoResult) -> str:
    speed = result.simulated_s / max(result.wall_s, 1e-9)
    lines = [
        f"fanwatch demo: {len(result.fans)} simulated fans on {THING}, {result.simulated_s / 60:.0f} min of "
        f"simulated time in {result.wall_s:.1f} s ({speed:,.0f}x real time)",
        "",
        f"{'fan':7}{'raw readings':>13}{'sent':>7}{'messages':>10}{'spikes':>8}{'glitch':>8}{'dropout':>9}",
    ]
    per_fan: dict[str, Counter[str]] = {f: Counter() for f in result.fans}
    for message in result.telemetry:
        c = per_fan[message.fan]
        c["messages"] += 1
        for r in message.readings:
            c["sent"] += 1
            c.update(flag for flag in r.flags if flag in {"spike", "glitch", "dropout"})
    raw_each = result.raw_readings // max(1, len(result.fans))
    for fan, c in per_fan.items():
        lines.append(
            f"{fan:7}{raw_each:>13}{c['sent']:>7}{c['messages']:>10}{c['spike']:>8}{c['glitch']:>8}{c['dropout']:>9}"
        )
    lines += ["", "Local alerts (also on fanwatch/<thing>/alerts in AWS IoT Core):"]
    for alert in result.alerts:
        at = alert.ts.strftime("%H:%M:%S")
        lines.append(f"  {at}  {alert.fan:6} {alert.kind:12} {alert.state:8} {alert.detail}")
    status = result.statuses[-1] if result.statuses else None
    lines += [
        "",
        f"To AWS IoT Core: {len(result.telemetry)} telemetry, {len(result.alerts)} alert and "
        f"{len(result.statuses)} status messages, {result.payload_bytes / 1024:.0f} KiB in all",
        f"At this rate: {result.messages_per_day:,.0f} messages per device per day "
        f"(one message per reading would be {86_400 * len(result.fans):,})",
    ]
    if status is not None:
        lines.append(f"Last device status: {json.dumps(dict(status.counters), sort_keys=True)}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=20.0, help="simulated minutes to run (default 20)")


def run(args: argparse.Namespace) -> int:
    if args.minutes < 3:
        print("fanwatch demo: --minutes must be at least 3")
        return 2
    print(report(simulate(minutes=args.minutes)))
    return 0
