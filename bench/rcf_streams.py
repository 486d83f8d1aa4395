"""Labeled synthetic streams for the RCF benchmark: a fan and a daily load curve, with anomalies.

Each generator is seeded and returns the values, a boolean label per point and the list of
injected events, so every library is scored against the same truth. A point is labeled when it
is anomalous itself or when it is still inside the shingle of an anomalous point (the detector
can only see an anomaly through the shingles that contain it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LabeledStream", "daily_load", "fan_rpm", "setpoint_fan", "steady_fleet"]


@dataclass
class LabeledStream:
    name: str
    values: np.ndarray  # (n, dimensions)
    labels: np.ndarray  # (n,) bool
    events: list[tuple[str, int, int]] = field(default_factory=list)  # kind, start, end (exclusive)

    def mark(self, kind: str, start: int, end: int, *, shingle: int) -> None:
        self.events.append((kind, start, end))
        self.labels[start : min(end + shingle - 1, len(self.labels))] = True


def fan_rpm(n: int = 20_000, *, seed: int = 1, shingle: int = 4) -> LabeledStream:
    """1 Hz tachometer readings of a fan at ~1500 RPM: thermal drift, a random walk, noise.

    Injected: single-reading spikes and dips, a stall (0 RPM, then a spin-up ramp), a permanent
    level shift from bearing wear (labeled for its first minute) and a 3-minute oscillation.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    rpm = 1500 + 25 * np.sin(2 * np.pi * t / 3600) + np.cumsum(rng.normal(0, 0.05, n)) + rng.normal(0, 5, n)
    stream = LabeledStream("fan RPM (1 Hz)", np.zeros((n, 1)), np.zeros(n, bool))
    stall, wear, wobble = int(0.40 * n), int(0.60 * n), int(0.80 * n)
    spikes = np.sort(rng.choice(np.arange(500, n - 10), 14, replace=False))
    spikes = spikes[(np.abs(spikes[:, None] - [stall, wear, wobble]) > 400).all(1)]
    spikes = np.concatenate([spikes, [stall - 150, stall + 250]])
    for at in spikes:
        rpm[at] += rng.choice([-1, 1]) * rng.uniform(120, 300)
        stream.mark("spike", at, at + 1, shingle=shingle)
    rpm[stall : stall + 45] = 0.0
    rpm[stall + 45 : stall + 55] *= np.linspace(0.1, 1.0, 10)
    stream.mark("stall", stall, stall + 55, shingle=shingle)
    rpm[wear:] -= 120 * np.minimum(1.0, (t[wear:] - wear) / 20)
    stream.mark("level shift", wear, wear + 60, shingle=shingle)
    rpm[wobble : wobble + 180] += 60 * np.sin(2 * np.pi * np.arange(180) / 8)
    stream.mark("oscillation", wobble, wobble + 180, shingle=shingle)
    stream.values[:, 0] = np.round(rpm)
    stream.events.sort(key=lambda e: e[1])
    return stream


def steady_fleet(fans: int, steps: int, *, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """4,000 s of a fan (to warm a template model on) and then ``steps`` seconds of ``fans`` fans
    running normally at its last level, as ``(steps, fans)``: a fleet at steady state."""
    warm = fan_rpm(4000, seed=seed).values
    level = warm[-200:, 0].mean()
    return warm, np.round(level + np.random.default_rng(seed + 1).normal(0, 5, (steps, fans)))


def daily_load(days: int = 12, *, seed: int = 2, shingle: int = 4) -> LabeledStream:
    """A per-minute load curve with a daily cycle (a different shape from the fan's).

    Injected: spikes, a short outage (0), a noisy hour and a 30-minute step up.
    """
    rng = np.random.default_rng(seed)
    n, day = days * 1440, 1440
    t = np.arange(n)
    phase = 2 * np.pi * (t % day) / day
    load = 50 - 25 * np.cos(phase) + 8 * np.sin(2 * phase) + rng.normal(0, 1.5, n)
    stream = LabeledStream("daily load curve (1/min)", np.zeros((n, 1)), np.zeros(n, bool))
    for at in rng.choice(np.arange(day, n - 10), 10, replace=False):
        load[at] += rng.choice([-1, 1]) * rng.uniform(15, 30)
        stream.mark("spike", at, at + 1, shingle=shingle)
    outage = int(0.45 * days) * day + 600
    load[outage : outage + 30] = 0.0
    stream.mark("outage", outage, outage + 30, shingle=shingle)
    noisy = int(0.65 * days) * day + 200
    load[noisy : noisy + 60] += rng.normal(0, 10, 60)
    stream.mark("noisy hour", noisy, noisy + 60, shingle=shingle)
    step = int(0.85 * days) * day + 660
    load[step : step + 30] += 20
    stream.mark("step", step, step + 30, shingle=shingle)
    stream.values[:, 0] = load
    stream.events.sort(key=lambda e: e[1])
    return stream


def setpoint_fan(
    n: int = 12_000, *, seed: int = 3, every: int = 600, stuck_change: int = 14, stuck_for: int = 120
) -> tuple[LabeledStream, np.ndarray]:
    """A speed-controlled fan: the target changes every ``every`` s among a few levels.

    The RPM follows the target with a first-order lag (time constant 3 s). One change (number
    ``stuck_change``) is a fault: the fan stays at its old speed for ``stuck_for`` s, and only those
    readings are labeled; every other alert is a false alarm. Returns the (rpm, target) stream and
    the times of the legitimate changes.
    """
    rng = np.random.default_rng(seed)
    levels = np.array([1200.0, 1500.0, 1800.0])
    targets = np.empty(n)
    changes = []
    current = 1500.0
    for start in range(0, n, every):
        if start:
            current = rng.choice(levels[levels != current])
            changes.append(start)
        targets[start : start + every] = current
    followed = targets.copy()
    fault = changes[stuck_change]
    followed[fault : fault + stuck_for] = targets[fault - 1]
    rpm = np.empty(n)
    speed = targets[0]
    for i in range(n):
        speed += (followed[i] - speed) / 3.0
        rpm[i] = speed
    rpm = np.round(rpm + rng.normal(0, 5, n))
    stream = LabeledStream("speed-controlled fan", np.stack([rpm, targets], 1), np.zeros(n, bool))
    stream.mark("stuck after a commanded change", fault, fault + stuck_for, shingle=1)
    return stream, np.array([c for c in changes if c != fault])
