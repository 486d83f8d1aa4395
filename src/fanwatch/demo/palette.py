"""Colours and states the demo's report and pictures share, so a fault looks the same everywhere."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from fanwatch.demo.outcome import Caught, FanStory, Verdict

__all__ = ["FAULT_COLOURS", "STATE_COLOURS", "FanState", "fan_state", "fault_colour"]

#: One colour per fault kind (Tableau's palette, which stays distinct for most colour vision).
FAULT_COLOURS: Final = {
    "stall": "#d62728",
    "bearing_wear": "#8c564b",
    "hunting": "#9467bd",
    "overspeed": "#ff7f0e",
    "glitch": "#bcbd22",
    "dropout": "#17becf",
}


def fault_colour(kind: str) -> str:
    """The colour a fault kind is drawn in, the same on the report and the picture (grey for a kind without
    one)."""
    return FAULT_COLOURS.get(kind, "#999999")


class FanState(StrEnum):
    """A fan's tile in the fleet overview."""

    HEALTHY = "healthy"
    CAUGHT = "fault caught"
    MISSED = "fault missed"
    FALSE_ALARM = "false alarm"


STATE_COLOURS: Final = {
    FanState.HEALTHY: "#2ca02c",
    FanState.CAUGHT: "#ff7f0e",
    FanState.MISSED: "#7f0000",
    FanState.FALSE_ALARM: "#9467bd",
}


def fan_state(fan: FanStory, verdict: Verdict) -> tuple[FanState, str]:
    """The fan's state in the overview and one line that says why."""
    faults = [v for v in verdict.faults if (v.thing, v.fan) == fan.key]
    alarms = [f for f in verdict.false_alarms if (f.thing, f.fan) == fan.key]
    parts = []
    for v in faults:
        delays = ", ".join(
            f"{name} after {delay:.0f} s"
            for name, delay in (("edge", v.edge_s), ("RCF", v.rcf_s))
            if delay is not None
        )
        parts.append(f"{v.fault.kind}: {v.caught}" + (f" ({delays})" if delays else ""))
    if alarms:
        parts.append(f"{len(alarms)} false alarm{'s' if len(alarms) > 1 else ''}")
    if any(v.caught is Caught.MISSED for v in faults):
        state = FanState.MISSED
    elif alarms:
        state = FanState.FALSE_ALARM
    elif faults:
        state = FanState.CAUGHT
    else:
        state = FanState.HEALTHY
        changes = len(fan.plan.setpoints)
        parts.append("no alarm" + (f" through {changes} setpoint changes" if changes else ""))
    return state, "; ".join(parts)
