"""The picture of a demo run: every fan's speed over simulated time, one panel per thing.

Lines are the readings that reached the broker, drawn as steps because the filter's deadband only
sends a reading when the speed moved (or the heartbeat fell due). Shaded spans are where the fan's
readings carried a fault label, i.e. where a fault was acting on it; triangles are alerts, pointing
down when raised and up when cleared; dashed lines are the alert thresholds the demo deployed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fanwatch.demo.observations import DemoRun, Observations, Timeline
from fanwatch.demo.scenario import THRESHOLDS, FanPlan, ThingPlan
from fanwatch.demo.text import clock, count
from fanwatch.telemetry import Reading

__all__ = ["fault_spans", "plot"]


def fault_spans(readings: Sequence[Reading], timeline: Timeline) -> list[tuple[str, float, float]]:
    """(label, start, end) in simulated seconds for each run of readings with the same fault label; a
    span ends at the next reading that carries another label."""
    spans: list[tuple[str, float, float]] = []
    current: tuple[str, float] | None = None
    for reading in readings:
        t = timeline.at(reading.ts)
        label = reading.label or "normal"
        if current is not None and label != current[0]:
            spans.append((current[0], current[1], t))
            current = None
        if current is None and label != "normal":
            current = (label, t)
    if current is not None and readings:
        spans.append((current[0], current[1], timeline.at(readings[-1].ts)))
    return spans


def _legend(fan: FanPlan) -> str:
    return f"{fan.id}: " + (", ".join(dict.fromkeys(f.kind for f in fan.faults)) or "healthy")


def plot(run: DemoRun, path: Path) -> Path:
    """Write the PNG to ``path`` and return it."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    things = run.scenario.things
    figure, axes = plt.subplots(
        len(things),
        1,
        figsize=(13, 1.0 + 3.0 * len(things)),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, plan in zip(axes[:, 0], things, strict=True):
        _panel(ax, plan, run.observations)
    axes[-1, 0].set_xlabel("simulated minutes since the thing's first reading")
    figure.suptitle(
        f"fanwatch demo {run.where}: fan speed as the fleet sent it to IoT Core "
        f"(shaded: a fault acting on that fan; triangles: alerts)",
        fontsize=11,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _panel(ax: Any, plan: ThingPlan, observations: Observations) -> None:
    """One thing: its fans' speed, fault spans, alerts and the alert thresholds."""
    from matplotlib.lines import Line2D

    log, timeline = observations.things.get(plan.name), observations.timeline(plan.name)
    if log is None or timeline is None:
        ax.set_title(f"{plan.name}: nothing arrived", loc="left")
        return
    raised = sum(a.state == "raised" for a in log.alerts)
    ax.set_title(
        f"{plan.name}: {clock(observations.simulated_seconds(plan.name))} simulated, "
        f"{count(log.messages, 'message')}, {count(raised, 'alert')} raised",
        loc="left",
    )
    colors = {fan.id: f"C{i}" for i, fan in enumerate(plan.fans)}
    for fan in plan.fans:
        readings = sorted(
            (r for m in log.telemetry if m.fan == fan.id for r in m.readings), key=lambda r: r.ts
        )
        minutes = [timeline.at(r.ts) / 60 for r in readings]
        rpm = [r.rpm for r in readings]
        ax.plot(minutes, rpm, drawstyle="steps-post", lw=1.2, color=colors[fan.id], label=_legend(fan))
        for label, start, end in fault_spans(readings, timeline):
            ax.axvspan(start / 60, end / 60, color=colors[fan.id], alpha=0.13, lw=0)
            ax.annotate(
                f"{fan.id} {label}",
                (start / 60, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -10),
                textcoords="offset points",
                fontsize=7,
                color=colors[fan.id],
            )
    for alert in log.alerts:
        at = (timeline.at(alert.ts) / 60, alert.rpm)
        marker = "v" if alert.state == "raised" else "^"
        ax.plot(*at, ls="", ms=8, mec="black", marker=marker, color=colors.get(alert.fan, "grey"))
        if alert.state == "raised":
            ax.annotate(alert.kind, at, xytext=(5, 5), textcoords="offset points", fontsize=7)
    for name, threshold in THRESHOLDS.items():
        ax.axhline(threshold, color="grey", ls="--", lw=0.8)
        ax.annotate(
            name,
            (1.0, threshold),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            fontsize=7,
            color="grey",
        )
    ax.set_ylabel("rpm")
    ax.set_ylim(-150, None)
    ax.grid(alpha=0.3)
    markers = [
        Line2D([], [], ls="", marker=m, mec="black", color="white", label=f"alert {state}")
        for m, state in (("v", "raised"), ("^", "cleared"))
    ]
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=[*handles, *markers], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
