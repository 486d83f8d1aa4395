"""Local alerts with hysteresis: a condition must hold for a while to raise, and clear past a band.

A value that flaps around a threshold raises nothing until it stays beyond it for ``raise_after_s``,
and once raised clears only after it has stayed on the good side of the hysteresis band for
``clear_after_s``; values inside the band keep the current state. So a flapping fan costs one alert,
not one per reading.

``noisy_signal`` watches the tach signal rather than the speed: the estimator rejects spurious pulses
(``glitch``) and notices missing ones (``dropout``) and reads the speed right, so the speed alone
shows nothing wrong while the wiring is. The alert is raised when at least ``noisy_percent`` of the
readings of the last ``noisy_window_s`` carry one of those flags, and cleared below half of that.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, NotRequired, TypedDict, Unpack

from fanwatch.telemetry import AlertKind, AlertState, QualityFlag

#: The quality flags that say the tach signal itself is noisy (not the fan).
NOISY_FLAGS: Final = frozenset({QualityFlag.GLITCH, QualityFlag.DROPOUT})

__all__ = ["NOISY_FLAGS", "AlertSettings", "AlertTracker", "Hysteresis", "Transition"]

#: What a fan's readings show; ``sensor_lost`` is the edge filter's (no readings at all).
_SPEED_AND_SIGNAL: Final = (
    AlertKind.STALL,
    AlertKind.UNDER_SPEED,
    AlertKind.OVER_SPEED,
    AlertKind.NOISY_SIGNAL,
)


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert that was raised or cleared on this reading, and when its condition began."""

    kind: AlertKind
    state: AlertState
    since: float  # when the condition began (seconds, same timebase as the updates)


class Hysteresis:
    """One alert's state machine: call ``update`` with whether the value enters or leaves the condition."""

    def __init__(self, *, raise_after_s: float, clear_after_s: float) -> None:
        self.raise_after_s = raise_after_s
        self.clear_after_s = clear_after_s
        self.active = False
        self.began: float | None = None
        self._pending: float | None = None

    def update(self, t: float, *, entering: bool, leaving: bool) -> AlertState | None:
        moving = leaving if self.active else entering
        if not moving:
            self._pending = None
            return None
        if self._pending is None:
            self._pending = t
        if t - self._pending < (self.clear_after_s if self.active else self.raise_after_s):
            return None
        self.active = not self.active
        if self.active:
            self.began = self._pending
        self._pending = None
        return AlertState.RAISED if self.active else AlertState.CLEARED


class AlertSettings(TypedDict):
    """An :class:`AlertTracker`'s thresholds: the component configuration's ``alerts`` section."""

    stall_rpm: float
    under_speed_rpm: float
    over_speed_rpm: float
    hysteresis_percent: float
    raise_after_s: float
    clear_after_s: float
    noisy_percent: NotRequired[float]  # 0: the noisy-signal alert is off
    noisy_window_s: NotRequired[float]  # 60 s unless set


class AlertTracker:
    """Stall, under-speed, over-speed and a noisy signal of one fan, on each (spike-filtered) reading."""

    def __init__(self, **settings: Unpack[AlertSettings]) -> None:
        # Each kind's timings come from the settings, by reconfigure, like every later change.
        self._states = {kind: Hysteresis(raise_after_s=0.0, clear_after_s=0.0) for kind in _SPEED_AND_SIGNAL}
        self._recent: deque[tuple[float, bool]] = deque()  # (t, noisy) of the readings in the window
        self.reconfigure(**settings)

    def reconfigure(self, **settings: Unpack[AlertSettings]) -> None:
        """New thresholds; alerts already raised stay raised until they clear under the new ones."""
        self.stall_rpm = settings["stall_rpm"]
        self.under_speed_rpm = settings["under_speed_rpm"]
        self.over_speed_rpm = settings["over_speed_rpm"]
        self.band = settings["hysteresis_percent"] / 100.0
        self.noisy_share = settings.get("noisy_percent", 0.0) / 100.0
        self.noisy_window_s = settings.get("noisy_window_s", 60.0)
        for h in self._states.values():
            h.raise_after_s = settings["raise_after_s"]
            h.clear_after_s = settings["clear_after_s"]

    def active(self) -> list[AlertKind]:
        return [kind for kind, h in self._states.items() if h.active]

    def _noisy_share(self, t: float, noisy: bool) -> float | None:
        """The share of noisy readings over the window up to ``t`` (None until the window is half full)."""
        self._recent.append((t, noisy))
        while self._recent and self._recent[0][0] <= t - self.noisy_window_s:
            self._recent.popleft()
        if self._recent[-1][0] - self._recent[0][0] < self.noisy_window_s / 2:
            return None
        return sum(n for _, n in self._recent) / len(self._recent)

    def update(self, t: float, rpm: float, *, stalled: bool, noisy: bool = False) -> list[Transition]:
        """``noisy``: the reading carries one of :data:`NOISY_FLAGS`."""
        share = self._noisy_share(t, noisy)
        is_stall = stalled or rpm < self.stall_rpm
        checks = {
            AlertKind.STALL: (is_stall, not stalled and rpm >= self.stall_rpm * (1 + self.band)),
            # a stall is not also reported as under-speed; an under-speed that turns into a stall stays raised
            AlertKind.UNDER_SPEED: (
                bool(self.under_speed_rpm) and not is_stall and rpm < self.under_speed_rpm,
                not self.under_speed_rpm or rpm >= self.under_speed_rpm * (1 + self.band),
            ),
            AlertKind.OVER_SPEED: (
                bool(self.over_speed_rpm) and rpm > self.over_speed_rpm,
                not self.over_speed_rpm or rpm <= self.over_speed_rpm * (1 - self.band),
            ),
            # a stopped rotor gives no pulses to be noisy: a stall is not also a noisy signal
            AlertKind.NOISY_SIGNAL: (
                bool(self.noisy_share) and share is not None and not is_stall and share >= self.noisy_share,
                not self.noisy_share or (share is not None and share < self.noisy_share / 2),
            ),
        }
        out = []
        for kind, (entering, leaving) in checks.items():
            h = self._states[kind]
            state = h.update(t, entering=entering, leaving=leaving)
            if state is not None and h.began is not None:
                out.append(Transition(kind, state, h.began))
        return out
