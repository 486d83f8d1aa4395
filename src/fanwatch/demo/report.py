"""What the demo prints at the end, and whether the run showed what it promises.

The promise (issue 9): every injected fault is caught, by an edge alert or the cloud's forest; no
healthy fan alarms; and every reading the devices sent is in the lake exactly once. :func:`failures`
lists what broke it (the demo then exits 1); :func:`summary` is the text a person reads.
"""

from __future__ import annotations

import textwrap

from fanwatch.demo.outcome import Caught, Story, Verdict
from fanwatch.demo.text import clock, count, window

__all__ = ["failures", "summary"]


def failures(story: Story, verdict: Verdict) -> list[str]:
    """What the run should have shown and did not (empty: it showed everything)."""
    problems = list(story.problems)
    for thing in story.scenario.things:
        if not any(story.fans[(thing.name, f.id)].readings for f in thing.fans):
            problems.append(f"no telemetry arrived from {thing.name}")
    for v in verdict.missed:
        problems.append(
            f"{v.thing}/{v.fan}: {v.fault.kind} {window(v.fault.start_s, v.fault.end_s)} was missed "
            "(no edge alert, no RCF anomaly)"
        )
    for f in verdict.false_alarms_on_healthy(story):
        problems.append(f"{f.thing}/{f.fan} is healthy but alarmed at {clock(f.at_s)}: {f.describe()}")
    ledger = story.ledger
    if ledger is not None and not ledger.exact:
        problems.append(
            f"the lake does not hold every reading exactly once: {ledger.sent:,} sent, {ledger.stored:,} "
            f"stored, {ledger.lost} lost, {ledger.duplicated} duplicated, {ledger.unexpected} unexpected"
        )
    return problems


def summary(story: Story, verdict: Verdict) -> str:
    """The text the demo prints at the end: readings sent and stored, each injected fault and what caught
    it, false alarms, notifications, dead letters and where the outputs are."""
    scenario = story.scenario
    healthy = [fan for fan in story if fan.plan.healthy]
    lines = [
        f"fanwatch demo: {count(len(scenario.things), 'device')} with {len(story.fans)} simulated fans "
        f"{story.where}; {clock(scenario.seconds)} simulated (warm-up {clock(scenario.warmup_s)}) in "
        f"{story.wall_s:.0f} s of wall time (timeScale {scenario.time_scale:g})",
        "",
    ]
    ledger = story.ledger
    if ledger is None:
        lines.append(f"Readings: {story.readings:,} sent at the edge (this run has no lake)")
    else:
        verdict_text = (
            "nothing lost, nothing twice"
            if ledger.exact
            else f"{ledger.lost} LOST, {ledger.duplicated} DUPLICATED, {ledger.unexpected} unexpected"
        )
        lines.append(
            f"Readings: {ledger.sent:,} sent at the edge, {ledger.stored:,} stored in the lake: "
            f"{verdict_text} (by thing, fan, boot, sequence number and timestamp)"
        )
    lines += [
        "",
        "Injected faults (simulated mm:ss)                   caught by      edge alert  RCF anomaly",
    ]
    for v in verdict.faults:
        name = f"{v.thing}/{v.fan}"
        fault = f"{v.fault.kind} {window(v.fault.start_s, v.fault.end_s)}"
        marker = "  <- MISSED" if v.caught is Caught.MISSED else ""
        lines.append(
            f"  {name:18}{fault:33} {v.caught:13} {_after(v.edge_s):>11} {_after(v.rcf_s):>12}{marker}"
        )
    on_healthy = verdict.false_alarms_on_healthy(story)
    controlled = sum(bool(f.plan.setpoints) for f in healthy)
    lines.append("")
    lines.append(
        f"False alarms: {len(on_healthy)} on {count(len(healthy), 'healthy fan')}"
        + (f" ({controlled} speed-controlled, its setpoint changing)" if controlled else "")
        + f", {len(verdict.false_alarms) - len(on_healthy)} on faulty fans outside their faults"
    )
    lines += [f"  {clock(f.at_s)}  {f.thing}/{f.fan}: {f.describe()}" for f in verdict.false_alarms]
    notices = story.notices()
    lines += [
        "",
        f"Notifications: {len(notices)} delivered, {story.notices_suppressed} held back by the cooldown",
    ]
    for notice in notices:
        lines.append(f"  {clock(notice.at_s)}  {notice.severity:8} {notice.subject}")
        lines += textwrap.wrap(notice.text, 108, initial_indent=" " * 9, subsequent_indent=" " * 9)
    if story.dead_letters:
        lines += ["", f"Dead letters: {len(story.dead_letters)}"]
        lines += [f"  {reason}" for reason in story.dead_letters[:5]]
    if story.outputs:
        lines.append("")
        lines += [f"{what}: {where}" for what, where in story.outputs.items()]
    return "\n".join(lines)


def _after(seconds: float | None) -> str:
    return "-" if seconds is None else f"+{seconds:.0f} s"
