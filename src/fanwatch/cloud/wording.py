"""What a notification says, in words a person on call reads at 3 a.m.

Which fan, on which device, what was seen, since when, and the speed: nothing here needs a dashboard
to be understood. Pure functions over events, so the wording is tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fanwatch.cloud.events import Anomaly, Event, severity_of
from fanwatch.telemetry import Alert, AlertKind, AlertState

__all__ = ["Suppressed", "describe", "subject", "summary"]

_ALERT_RAISED = {
    AlertKind.STALL: "has stalled",
    AlertKind.UNDER_SPEED: "is running too slowly",
    AlertKind.OVER_SPEED: "is running too fast",
    AlertKind.SENSOR_LOST: "has lost its tachometer signal",
    AlertKind.NOISY_SIGNAL: "has a noisy tachometer signal (check the wiring)",
}
_ALERT_CLEARED = {
    AlertKind.STALL: "is turning again",
    AlertKind.UNDER_SPEED: "is back up to speed",
    AlertKind.OVER_SPEED: "is back down to its normal speed",
    AlertKind.SENSOR_LOST: "has its tachometer signal back",
    AlertKind.NOISY_SIGNAL: "has a clean tachometer signal again",
}


@dataclass(frozen=True, slots=True)
class Suppressed:
    """Events held back by the cooldown: how many, from when to when, and the last one's speed."""

    count: int
    first: datetime
    last: datetime
    last_rpm: float


def _clock(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(start: datetime, end: datetime) -> str:
    seconds = max(0, round((end - start).total_seconds()))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _rpm(value: float) -> str:
    return f"{value:,.0f} RPM"


def _who(event: Event) -> str:
    return f"Fan {event.fan} on {event.thing}"


def subject(event: Event) -> str:
    """A one-line SNS subject (SNS allows 100 characters)."""
    if isinstance(event, Anomaly):
        what = "unusual speed pattern" if event.kind == "rcf" else "telemetry gap"
    else:
        what = f"{event.kind.replace('_', ' ')} {event.state}"
    return f"[{severity_of(event)}] fanwatch: {event.fan} on {event.thing}: {what}"[:100]


def describe(event: Event) -> str:
    """The body of a notification about one event."""
    if isinstance(event, Alert):
        return _describe_alert(event)
    if event.kind == "gap":
        return (
            f"{_who(event)}: {event.missing} telemetry message(s) never arrived before the one sent at "
            f"{_clock(event.ts)} (last reading scored at {_clock(event.since)}). The device kept "
            f"numbering its messages, so they were lost on the way, not skipped. Latest reading: "
            f"{_rpm(event.rpm)}."
        )
    usual = "" if event.typical_rpm is None else f"; it usually runs at about {_rpm(event.typical_rpm)}"
    lasting = (
        ""
        if event.since == event.ts
        else f", and has behaved unusually since {_clock(event.since)} ({_duration(event.since, event.ts)})"
    )
    return (
        f"{_who(event)} is behaving unusually: at {_clock(event.ts)} it read {_rpm(event.rpm)}"
        f"{usual}{lasting}. The anomaly detector scored it {event.score:.2f}, above this fan's "
        f"threshold of {event.threshold:.2f}."
    )


def _describe_alert(alert: Alert) -> str:
    detail = f" The device says: {alert.detail}" if alert.detail else ""
    if alert.state == AlertState.CLEARED:
        return (
            f"{_who(alert)} {_ALERT_CLEARED[alert.kind]}: {_rpm(alert.rpm)} at {_clock(alert.ts)}, "
            f"after {_duration(alert.since, alert.ts)} (since {_clock(alert.since)}).{detail}"
        )
    return (
        f"{_who(alert)} {_ALERT_RAISED[alert.kind]}: {_rpm(alert.rpm)} at {_clock(alert.ts)}, "
        f"since {_clock(alert.since)} ({_duration(alert.since, alert.ts)}).{detail}"
    )


def summary(event: Event, held: Suppressed, cooldown_s: float) -> str:
    """What the cooldown held back for ``event``'s fan and kind."""
    return (
        f"{held.count} more notification(s) like this for fan {event.fan} on {event.thing} were held "
        f"back between {_clock(held.first)} and {_clock(held.last)} (at most one is sent every "
        f"{_duration(held.first, held.first + timedelta(seconds=cooldown_s))}); the last of them read "
        f"{_rpm(held.last_rpm)}."
    )
