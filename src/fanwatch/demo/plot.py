"""The picture of a demo run, ``fleet.png``: one small chart per fan, for a terminal or a ticket.

Each fan has its own chart (a row per device), so a healthy fan never hides under another at the same
speed: its speed as the lake stored it (steps: the filter sends a reading when the speed moved or the
heartbeat fell due; dashed, the setpoint of a speed-controlled fan) over a strip with the forest's
anomaly score. The fault schedule is shaded behind both, one colour per fault kind (named in the
legend at the top, never written over the data), in the simulated time the summary prints. Triangles
are edge alerts (down: raised, up: cleared), crosses RCF anomalies; dashed lines the device's alert
thresholds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fanwatch.demo.outcome import FanStory, Source, Story, Verdict, judge
from fanwatch.demo.palette import STATE_COLOURS, fan_state, fault_colour

__all__ = ["plot"]


def plot(story: Story, path: Path, *, verdict: Verdict | None = None) -> Path:
    """Write the PNG to ``path`` and return it."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    verdict = verdict or judge(story)
    things = story.scenario.things
    columns = max(len(t.fans) for t in things)
    figure = plt.figure(figsize=(5.2 * columns, 0.9 + 3.1 * len(things)), layout="constrained")
    grid = figure.add_gridspec(2 * len(things), columns, height_ratios=[3, 1] * len(things))
    span = story.scenario.seconds / 60
    first_rpm = None
    for row, thing in enumerate(things):
        for col, plan in enumerate(thing.fans):
            fan = story.fans[(thing.name, plan.id)]
            rpm_ax = figure.add_subplot(grid[2 * row, col], sharex=first_rpm)
            first_rpm = first_rpm or rpm_ax
            score_ax = figure.add_subplot(grid[2 * row + 1, col], sharex=first_rpm)
            _fan(rpm_ax, score_ax, fan, story, verdict, thing.thresholds)
            rpm_ax.set_xlim(0, span)
            rpm_ax.tick_params(labelbottom=False)
            if row == len(things) - 1:
                score_ax.set_xlabel("simulated minutes")
    kinds = sorted({f.kind for t in things for fan in t.fans for f in fan.faults})
    handles: list[Artist] = [Patch(color=fault_colour(k), alpha=0.35, label=f"fault: {k}") for k in kinds]
    handles += [
        Line2D([], [], ls="", marker="v", mec="black", color="#d62728", label="edge alert raised"),
        Line2D([], [], ls="", marker="^", mec="black", color="#2ca02c", label="edge alert cleared"),
        Line2D([], [], ls="", marker="x", color="black", mew=2, label="RCF anomaly"),
        Line2D([], [], color="#555", ls="--", lw=1, label="setpoint / alert thresholds"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=9)
    figure.suptitle(
        f"fanwatch demo {story.where}: every fan's speed (top) and anomaly score (beneath), "
        f"faults shaded as scheduled",
        fontsize=12,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _fan(
    rpm_ax: Any, score_ax: Any, fan: FanStory, story: Story, verdict: Verdict, thresholds: dict[str, float]
) -> None:
    state, why = fan_state(fan, verdict)
    colour = STATE_COLOURS[state]
    rpm_ax.set_title(f"{fan.label}: {state}", loc="left", fontsize=10, color=colour, fontweight="bold")
    for ax in (rpm_ax, score_ax):
        for fault in fan.plan.faults:
            end = fault.end_s if math.isfinite(fault.end_s) else story.scenario.seconds
            ax.axvspan(fault.start_s / 60, end / 60, color=fault_colour(fault.kind), alpha=0.2, lw=0)
        ax.grid(alpha=0.3)
    minutes = [p.at_s / 60 for p in fan.readings]
    rpm_ax.plot(minutes, [p.rpm for p in fan.readings], drawstyle="steps-post", lw=1.1, color="#1f77b4")
    if fan.plan.setpoints:
        targets = [p.target_rpm for p in fan.readings]
        rpm_ax.plot(minutes, targets, drawstyle="steps-post", lw=1, ls="--", color="#555")
    for value in thresholds.values():
        rpm_ax.axhline(value, color="#555", ls="--", lw=0.7)
    for finding in fan.findings:
        at = (finding.at_s / 60, finding.rpm)
        if finding.source is Source.RCF:
            rpm_ax.plot(*at, ls="", marker="x", ms=7, mew=2, color="black")
        else:
            raised = finding.raised
            rpm_ax.plot(
                *at,
                ls="",
                marker="v" if raised else "^",
                ms=8,
                mec="black",
                color="#d62728" if raised else "#2ca02c",
            )
    rpm_ax.set_ylim(-150, 1.15 * max(thresholds.values()))
    rpm_ax.set_ylabel("rpm", fontsize=8)
    rpm_ax.tick_params(labelsize=8)
    rpm_ax.text(0.01, 0.03, why, transform=rpm_ax.transAxes, fontsize=7, color="#333", va="bottom")
    if fan.scores:
        score_ax.plot([at / 60 for at, _ in fan.scores], [s for _, s in fan.scores], lw=0.8, color="#7f7f7f")
    if fan.thresholds:
        times, limits = [at / 60 for at, _ in fan.thresholds], [t for _, t in fan.thresholds]
        score_ax.plot(times, limits, lw=0.8, ls=":", color="#d62728")
    for finding in fan.findings:
        if finding.source is Source.RCF and finding.score is not None:
            score_ax.plot(finding.at_s / 60, finding.score, ls="", marker="x", ms=6, mew=2, color="black")
    score_ax.set_ylabel("score", fontsize=8)
    score_ax.tick_params(labelsize=8)
    if not fan.scores:
        score_ax.text(
            0.5, 0.5, "no scores in this run", transform=score_ax.transAxes, ha="center", fontsize=8
        )
    score_ax.set_ylim(bottom=0)
