"""A fan's tachometer: a pulse source and an RPM estimator that together give timestamped readings."""

from __future__ import annotations

from fanwatch.edge.clock import Clock
from fanwatch.edge.tach.estimator import RpmEstimator
from fanwatch.edge.tach.source import PulseSource
from fanwatch.limits import DEFAULT_MAX_RPM
from fanwatch.telemetry import QualityFlag, Reading

__all__ = ["Tachometer"]


class Tachometer:
    """Reads one fan: ``read()`` drains the source up to now and returns the speed over the window.

    The source is listening from the moment this is built: ``read()`` returns None until a full window
    has passed (a stopped fan: until the stall timeout has), rather than a stall it never measured.
    """

    def __init__(
        self,
        source: PulseSource,
        *,
        clock: Clock,
        pulses_per_rev: int = 2,
        max_rpm: float = DEFAULT_MAX_RPM,
        window_s: float = 1.0,
        stall_timeout_s: float = 2.0,
        target_rpm: float | None = None,
    ) -> None:
        self.source = source
        self.clock = clock
        self.target_rpm = target_rpm
        self.estimator = RpmEstimator(
            pulses_per_rev=pulses_per_rev,
            max_rpm=max_rpm,
            window_s=window_s,
            stall_timeout_s=stall_timeout_s,
            started_at=clock.now(),
        )
        self.pulses_seen = 0

    def read(self) -> Reading | None:
        now = self.clock.now()
        edges = self.source.pulses(now)
        self.pulses_seen += len(edges)
        self.estimator.add(edges)
        est = self.estimator.read(now)
        if est is None:
            return None
        flags = est.flags | {QualityFlag.SIMULATED} if self.source.simulated else est.flags
        target = self.source.target_at(now)  # a speed-controlled fan's setpoint of the moment
        return Reading(
            ts=self.clock.utc(now),
            rpm=est.rpm,
            hz=est.hz,
            pulses=est.pulses,
            window_s=est.window_s,
            flags=flags,
            target_rpm=self.target_rpm if target is None else target,
            label=self.source.label_at(now),
        )

    def close(self) -> None:
        self.source.close()
