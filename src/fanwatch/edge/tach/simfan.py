"""A simulated fan that behaves like a physical one, so the tests and the demo drive the real pipeline.

The rotor follows its commanded speed through first-order inertia (separate spin-up and coast-down
time constants); a Hall sensor gives ``pulses_per_rev`` falling edges per revolution, each displaced
by interrupt-latency jitter and by mechanical jitter proportional to the pulse period. Faults change
the physics or the signal over a time span and label the readings taken while they act:

* ``stall``: the rotor is blocked and stops within a fraction of a second;
* ``bearing_wear``: the speed drifts down slowly and the mechanical jitter grows;
* ``dropout``: the tach signal goes missing in bursts while the rotor keeps turning;
* ``glitch``: electrical noise adds spurious short pulses;
* ``hunting``: the speed oscillates around the target (a control loop that hunts);
* ``overspeed``: the fan runs well above its target;
* ``stuck``: the controller's commands no longer reach the motor: the rotor keeps the speed commanded
  when the fault began (a speed-controlled fan that does not follow its next setpoint).

A speed-controlled fan is given ``setpoints``: (simulation seconds, rpm) at which its controller
commands a new target; the rotor follows through its inertia, faults act on the commanded speed, and
:meth:`SimulatedFan.target_at` tells the commanded speed (what a reading's ``target_rpm`` carries).

Everything random comes from generators seeded by ``seed`` and consumed in time order, so a run is
reproducible however its ``pulses`` calls are chunked, and runs as fast as the caller advances time.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = ["FAULT_KINDS", "Fault", "FaultKind", "SimulatedFan"]


class FaultKind(StrEnum):
    """What can go wrong with a simulated fan (the spelling in a recipe's ``faults`` and the demo's)."""

    STALL = "stall"  # the rotor is blocked and stops
    BEARING_WEAR = "bearing_wear"  # growing drag: the speed sags
    DROPOUT = "dropout"  # tach pulses go missing
    GLITCH = "glitch"  # spurious tach pulses
    HUNTING = "hunting"  # the speed swings around its target
    OVERSPEED = "overspeed"
    STUCK = "stuck"  # the rotor keeps the speed commanded when the fault began, whatever is commanded


FAULT_KINDS: Final = tuple(FaultKind)

_STEP_S: Final = 0.01  # integration grid: fixed, so results do not depend on how callers chunk time
_LOOKAHEAD_S: Final = 0.05  # edges are generated this far ahead so jitter never reorders them across calls
_STOP_REV_S: Final = 0.2 / 60.0  # below 0.2 RPM with no drive the rotor is at rest
_STALL_TAU_S: Final = 0.15  # a blocked rotor stops in well under a second
_HUNT_PERIOD_S: Final = 4.0


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault acting from ``start_s`` to ``end_s`` (simulation seconds) with a 0..1+ ``severity``."""

    kind: FaultKind
    start_s: float
    end_s: float = math.inf
    severity: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {', '.join(FAULT_KINDS)}")
        object.__setattr__(self, "kind", FaultKind(self.kind))  # a kind given as its string
        if not 0 <= self.start_s < self.end_s:
            raise ValueError(
                f"fault {self.kind}: need 0 <= start_s < end_s, got {self.start_s}, {self.end_s}"
            )
        if not 0 < self.severity <= 5:
            raise ValueError(f"fault {self.kind}: severity {self.severity} is out of range (0, 5]")

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


class SimulatedFan:
    """A fan with a tachometer, simulated on the caller's clock (``pulses(until)`` advances it).

    ``target_rpm`` is the speed commanded from the start (``setpoints`` change it later: (seconds after
    ``t0``, rpm) pairs); ``pulses_per_rev`` the Hall sensor's edges per revolution (2 on most PC fans).
    The rotor approaches a higher command with time constant ``spin_up_s`` and a lower one with
    ``coast_down_s``; it starts at ``start_rpm`` (default: already at ``target_rpm``). Each edge is
    displaced by ``jitter_s`` seconds of interrupt latency (standard deviation) and by
    ``period_jitter`` times the pulse period of mechanical jitter. ``faults`` act over their time spans,
    counted from ``t0``, the clock reading at which the simulation starts; ``seed`` makes a run
    reproducible.
    """

    simulated = True

    def __init__(
        self,
        *,
        target_rpm: float = 3000.0,
        pulses_per_rev: int = 2,
        spin_up_s: float = 1.5,
        coast_down_s: float = 4.0,
        jitter_s: float = 30e-6,
        period_jitter: float = 0.002,
        faults: Iterable[Fault] = (),
        seed: int = 0,
        start_rpm: float | None = None,
        t0: float = 0.0,
        setpoints: Iterable[tuple[float, float]] = (),
    ) -> None:
        if pulses_per_rev < 1:
            raise ValueError("pulses_per_rev must be at least 1")
        if target_rpm < 0 or spin_up_s <= 0 or coast_down_s <= 0 or jitter_s < 0 or period_jitter < 0:
            raise ValueError(
                "target_rpm, jitter and time constants must be non-negative (time constants > 0)"
            )
        self.target_rpm = float(target_rpm)
        self.pulses_per_rev = pulses_per_rev
        self.spin_up_s = spin_up_s
        self.coast_down_s = coast_down_s
        self.jitter_s = jitter_s
        self.period_jitter = period_jitter
        self.faults = tuple(faults)
        # per kind, looked up several times per 10 ms step: kinds without a fault cost a dict lookup
        self._faults_of = {kind: tuple(f for f in self.faults if f.kind == kind) for kind in FAULT_KINDS}
        self.setpoints = tuple(sorted((float(at), float(rpm)) for at, rpm in setpoints))
        if any(at < 0 or rpm < 0 for at, rpm in self.setpoints):
            raise ValueError("setpoints need a time >= 0 and an rpm >= 0")
        self._setpoint_times = [at for at, _ in self.setpoints]
        self._t0 = t0
        self._t = t0  # simulated up to here (monotonic clock seconds)
        self._rev_s = (target_rpm if start_rpm is None else start_rpm) / 60.0
        self._phase = 0.0  # pulses since start, fractional
        self._jitter_rng = random.Random(f"{seed}:jitter")
        self._dropout_rng = random.Random(f"{seed}:dropout")
        self._glitch_rng = random.Random(f"{seed}:glitch")
        self._gap_start = t0  # the current (or next) dropout burst
        self._gap_until = t0
        self._next_glitch: float | None = None
        self._pending: list[float] = []  # generated edges not yet handed out, sorted
        self._emitted_to = t0

    # --- physics ----------------------------------------------------------------------------

    def _elapsed(self, t: float) -> float:
        return t - self._t0

    def target_at(self, t: float) -> float | None:
        """What a speed-controlled fan's controller commands at ``t`` (the last setpoint reached, else
        ``target_rpm``); None for a fan without setpoints, which runs at ``target_rpm`` uncontrolled."""
        if not self.setpoints:
            return None
        return self._command(t)

    def _command(self, t: float) -> float:
        i = bisect.bisect_right(self._setpoint_times, self._elapsed(t))
        return self.setpoints[i - 1][1] if i else self.target_rpm

    def _commanded_rev_s(self, t: float) -> float:
        """The speed the motor drives towards at ``t``, after speed-changing faults."""
        s = self._elapsed(t)
        stuck = self._active(FaultKind.STUCK, t)
        rpm = self._command(t if stuck is None else self._t0 + stuck.start_s)
        for f in self.faults:
            if not f.active(s):
                continue
            if f.kind == FaultKind.BEARING_WEAR:  # about 3 % per minute of extra drag at severity 1
                rpm *= max(0.2, 1.0 - 0.0005 * f.severity * (s - f.start_s))
            elif f.kind == FaultKind.HUNTING:
                rpm *= 1.0 + 0.15 * f.severity * math.sin(2 * math.pi * (s - f.start_s) / _HUNT_PERIOD_S)
            elif f.kind == FaultKind.OVERSPEED:
                rpm *= 1.0 + 0.4 * f.severity
        return rpm / 60.0

    def _active(self, kind: FaultKind, t: float) -> Fault | None:
        s = t - self._t0
        for f in self._faults_of[kind]:
            if f.start_s <= s < f.end_s:
                return f
        return None

    def _period_jitter(self, t: float) -> float:
        wear = self._active(FaultKind.BEARING_WEAR, t)
        if wear is None:
            return self.period_jitter
        return self.period_jitter + 2e-5 * wear.severity * (self._elapsed(t) - wear.start_s)  # +0.12 %/min

    def _step(self, t: float, dt: float) -> tuple[float, float]:
        """Advance the rotor by ``dt`` from ``t``; returns (speed at start, speed at end) in rev/s."""
        start = self._rev_s
        if self._active(FaultKind.STALL, t) is not None:
            end = start * math.exp(-dt / _STALL_TAU_S)
        else:
            cmd = self._commanded_rev_s(t)
            tau = self.spin_up_s if cmd >= start else self.coast_down_s
            end = cmd + (start - cmd) * math.exp(-dt / tau)
        if end < _STOP_REV_S and (self._active(FaultKind.STALL, t) or self._commanded_rev_s(t) < _STOP_REV_S):
            end = 0.0
        self._rev_s = end
        return start, end

    # --- the signal ---------------------------------------------------------------------------

    def _in_dropout(self, t: float) -> bool:
        fault = self._active(FaultKind.DROPOUT, t)
        if fault is None:
            return False
        while t >= self._gap_until:  # draw the burst schedule in time order
            begin = max(self._gap_until, self._t0 + fault.start_s)
            self._gap_start = begin + self._dropout_rng.expovariate(fault.severity / 3.0)
            self._gap_until = self._gap_start + self._dropout_rng.uniform(0.1, 0.6 + 0.6 * fault.severity)
        return t >= self._gap_start

    def _glitches(self, t0: float, t1: float) -> list[float]:
        fault = self._active(FaultKind.GLITCH, t0)
        if fault is None:
            self._next_glitch = None
            return []
        rate = 3.0 * fault.severity  # spurious edges per second
        if self._next_glitch is None:
            self._next_glitch = t0 + self._glitch_rng.expovariate(rate)
        out = []
        while self._next_glitch < t1:
            out.append(self._next_glitch)
            self._next_glitch += self._glitch_rng.expovariate(rate)
        return out

    def _advance(self, until: float) -> None:
        while self._t + _STEP_S <= until + 1e-12:
            t, dt = self._t, _STEP_S
            v0, v1 = self._step(t, dt)
            pulses_before = self._phase
            self._phase += 0.5 * (v0 + v1) * dt * self.pulses_per_rev
            k = math.floor(pulses_before) + 1
            while k <= self._phase:
                frac = (k - pulses_before) / (self._phase - pulses_before)
                edge = t + frac * dt
                if not self._in_dropout(edge):
                    self._add_edge(edge, v0 + (v1 - v0) * frac)
                k += 1
            for g in self._glitches(t, t + dt):
                bisect.insort(self._pending, g)
            self._t = t + dt

    def _add_edge(self, ideal: float, rev_s: float) -> None:
        period = 1.0 / (rev_s * self.pulses_per_rev)
        sigma = math.hypot(self.jitter_s, self._period_jitter(ideal) * period)
        bound = min(0.4 * period, _LOOKAHEAD_S)
        offset = max(-bound, min(bound, self._jitter_rng.gauss(0.0, sigma))) if sigma > 0 else 0.0
        bisect.insort(self._pending, ideal + offset)

    # --- PulseSource ----------------------------------------------------------------------------

    def pulses(self, until: float) -> Sequence[float]:
        if until < self._emitted_to:
            return []
        self._advance(until + _LOOKAHEAD_S)
        cut = bisect.bisect_right(self._pending, until)
        out, self._pending = self._pending[:cut], self._pending[cut:]
        self._emitted_to = until
        return out

    def label_at(self, t: float) -> str:
        """The ground truth at ``t``: the first active fault's kind, or ``normal``."""
        s = self._elapsed(t)
        return next((f.kind for f in self.faults if f.active(s)), "normal")

    @property
    def rpm(self) -> float:
        """The rotor's true speed at the newest simulated instant."""
        return self._rev_s * 60.0

    def close(self) -> None:
        self._pending.clear()
