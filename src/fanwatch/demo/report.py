"""What the demo prints at the end, and whether the run showed what it was meant to show.

The fault behind each alert comes from the data itself: a simulated fan labels every reading with the
fault acting on it, and the filter always sends the reading that raised or cleared an alert, so the
label of the fan's reading at the alert's time names its cause (``normal`` would be a false alarm).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from fanwatch.demo.observations import DemoRun, ThingLog, Timeline
from fanwatch.demo.scenario import FanPlan
from fanwatch.demo.text import clock, count, window
from fanwatch.telemetry import Alert

__all__ = ["alert_causes", "missing", "report"]

_FLAGS = ("stalled", "glitch", "dropout", "spike")


def alert_causes(log: ThingLog) -> dict[tuple[str, str, int], str]:
    """(fan, boot, seq) of each alert -> the fault label of the reading that triggered it; a cleared
    alert takes the cause of the raise it ends."""
    labels: dict[tuple[str, object], str] = {}
    for message in log.telemetry:
        for reading in message.readings:
            labels[(message.fan, reading.ts)] = reading.label or "unlabelled"
    causes: dict[tuple[str, str, int], str] = {}
    raised: dict[tuple[str, str], str] = {}
    for alert in sorted(log.alerts, key=lambda a: (a.ts, a.seq)):
        key = (alert.fan, alert.boot, alert.seq)
        if alert.state == "raised":
            cause = labels.get((alert.fan, alert.ts)) or _label_before(log, alert)
            raised[(alert.fan, alert.kind)] = cause
        else:
            cause = raised.pop((alert.fan, alert.kind), _label_before(log, alert))
        causes[key] = cause
    return causes


def _label_before(log: ThingLog, alert: Alert) -> str:
    """The label of the fan's last reading at or before the alert (a sensor_lost alert has no reading)."""
    before = [r for m in log.telemetry if m.fan == alert.fan for r in m.readings if r.ts <= alert.ts]
    if not before:
        return "unknown"
    return max(before, key=lambda r: r.ts).label or "unlabelled"


def missing(run: DemoRun) -> list[str]:
    """What the run should have shown and did not (empty: it showed everything)."""
    problems = list(run.problems)
    things = dict(iter(run.observations))
    for plan in run.scenario.things:
        if not (plan.name in things and things[plan.name].telemetry):
            problems.append(f"no telemetry arrived from {plan.name}")
    for thing, fan, fault in run.scenario.stalls():
        log = things.get(thing, ThingLog())
        causes = alert_causes(log)
        caught = [
            a
            for a in log.alerts
            if (a.fan, a.kind, a.state) == (fan, "stall", "raised")
            and causes[(a.fan, a.boot, a.seq)] == "stall"
        ]
        if not caught:
            when = window(fault.start_s, fault.end_s)
            problems.append(f"no stall alert from {thing} {fan}, whose fan stalled at {when} simulated")
    return problems


def report(run: DemoRun) -> str:
    scenario, observations = run.scenario, run.observations
    fans = sum(len(t.fans) for t in scenario.things)
    lines = [
        f"fanwatch demo: {count(len(scenario.things), 'thing')} with {fans} simulated fans {run.where}; "
        f"{clock(scenario.seconds)} simulated (mm:ss) planned at timeScale {scenario.time_scale:g}, "
        f"{run.wall_s:.0f} s of wall time",
    ]
    for plan in scenario.things:
        log = observations.things.get(plan.name)
        timeline = observations.timeline(plan.name)
        lines.append("")
        if log is None or timeline is None:
            lines.append(f"{plan.name}: nothing arrived")
            continue
        lines += _thing(plan.name, plan.fans, log, timeline, observations.simulated_seconds(plan.name))
    unexpected = sorted(set(observations.things) - {t.name for t in scenario.things})
    total = sum(log.messages for _, log in observations)
    duplicates = sum(log.duplicates for _, log in observations)
    lines += [
        "",
        f"Fleet: {total} messages on the broker, {duplicates} duplicates dropped (QoS 1 redeliveries)",
    ]
    if unexpected:
        lines.append(f"  also from things the demo did not start: {', '.join(unexpected)}")
    if observations.refused:
        lines.append(f"  {len(observations.refused)} refused by the wire contract, e.g.:")
        lines += [f"    {r.topic}: {r.reason}" for r in observations.refused[:3]]
    return "\n".join(lines)


def _thing(
    name: str, plans: Sequence[FanPlan], log: ThingLog, timeline: Timeline, simulated: float
) -> list[str]:
    readings_per_day = 86_400 * len(plans)
    per_day = f"{log.messages * 86_400 / simulated:,.0f}" if simulated > 0 else "n/a"
    lines = [
        f"{name}: {clock(simulated)} simulated · {len(log.telemetry)} telemetry, {len(log.alerts)} alert and "
        f"{len(log.statuses)} status messages · {per_day} messages per device per day at these settings "
        f"(one per reading: {readings_per_day:,})",
        f"  {'fan':6}{'injected faults (simulated mm:ss)':44}{'readings':>9}{'messages':>9}  flags",
    ]
    for plan in plans:
        sent = [r for m in log.telemetry if m.fan == plan.id for r in m.readings]
        flags = Counter(flag for r in sent for flag in r.flags if flag in _FLAGS)
        faults = ", ".join(
            f"{f.kind} {window(f.start_s, f.end_s)}" + (f" ×{f.severity:g}" if f.severity != 1 else "")
            for f in plan.faults
        )
        messages = sum(m.fan == plan.id for m in log.telemetry)
        flag_text = ", ".join(f"{n} {flag}" for flag, n in sorted(flags.items())) or "-"
        lines.append(f"  {plan.id:6}{faults or 'none':44}{len(sent):>9}{messages:>9}  {flag_text}")
    causes = alert_causes(log)
    if log.alerts:
        lines.append("  alerts (simulated time, fault that caused them):")
    for alert in sorted(log.alerts, key=lambda a: a.ts):
        cause = causes[(alert.fan, alert.boot, alert.seq)]
        why = "no injected fault: a false alarm" if cause == "normal" else f"fault: {cause}"
        at = clock(timeline.at(alert.ts))
        lines.append(f"    {at}  {alert.fan:6}{alert.kind:12}{alert.state:8} {alert.detail}  <- {why}")
    return lines
