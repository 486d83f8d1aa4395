"""The ``fanwatch.Tachometer`` component: reads each configured fan and publishes raw readings.

Every ``publishIntervalSeconds`` it publishes one telemetry message per fan (one reading, numbered per
boot) on local pub/sub ``fanwatch/raw/<fan>``, and every ``statusIntervalSeconds`` its own status on
``fanwatch/local/status`` for the edge filter to fold into the device status. Configuration changes
apply without a restart; one that cannot work (bad value, GPIO preflight failure) is refused and the
running configuration stays.

Run by the recipe as ``<venv>/bin/python -m fanwatch.edge.run_tachometer --artifacts <unpacked zip>``.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from fanwatch.edge.clock import Clock, MonotonicClock, ScaledClock
from fanwatch.edge.component import ConfigFollower, Inbox, run_component
from fanwatch.edge.config import FanConfig, TachConfig, parse_tach_config
from fanwatch.edge.ipc import EdgeBus
from fanwatch.edge.logs import log_event
from fanwatch.edge.tach import (
    CsvReplay,
    GpioPreflightError,
    GpioPulseSource,
    PulseSource,
    SimulatedFan,
    Tachometer,
)
from fanwatch.edge.tach.replay import ReplayError
from fanwatch.edge.topics import STATUS_TOPIC, raw_topic
from fanwatch.telemetry import Reading, Status, Telemetry, encode

__all__ = ["COMPONENT", "TachometerService", "main", "open_source"]

COMPONENT = "fanwatch.Tachometer"


def open_source(
    config: TachConfig, fan: FanConfig, clock: Clock, base_dir: Path | None = None
) -> PulseSource:
    """The configured backend for one fan (raises GpioPreflightError or ReplayError when it cannot open)."""
    if config.backend == "gpio":
        return GpioPulseSource(fan.pin)
    if config.backend == "replay":
        path = Path(fan.replay_file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return CsvReplay(path, pulses_per_rev=fan.pulses_per_rev, loop=config.replay_loop, t0=clock.now())
    return SimulatedFan(
        target_rpm=3000.0 if fan.target_rpm is None else fan.target_rpm,
        pulses_per_rev=fan.pulses_per_rev,
        faults=fan.faults,
        seed=fan.seed,
        setpoints=fan.setpoints,
        t0=clock.now(),
    )


class TachometerService:
    """The component's loop around :class:`~fanwatch.edge.tach.Tachometer` s, one per configured fan."""

    def __init__(
        self,
        bus: EdgeBus,
        *,
        thing: str,
        clock: Clock,
        version: str = "unknown",
        logger: logging.Logger | None = None,
        base_dir: Path | None = None,
    ) -> None:
        self.bus = bus
        self.thing = thing
        self.base_clock = clock
        self.clock: Clock = clock
        self.version = version
        self.log = logger or logging.getLogger(COMPONENT)
        self.base_dir = base_dir
        self.boot = uuid.uuid4().hex[:16]
        self.follower = ConfigFollower(bus, parse_tach_config, self.log)
        self.inbox = Inbox(16)
        self.counters: Counter[str] = Counter()
        self.tachs: dict[str, Tachometer] = {}
        self._seq: Counter[str] = Counter()
        self._started = clock.now()
        self._status_due = self._started
        self._last_reading: Reading | None = None

    @property
    def config(self) -> TachConfig:
        assert self.follower.current is not None, "start() first"
        return self.follower.current

    def start(self) -> None:
        """Load and apply the configuration (raises ValueError when it cannot run), then report RUNNING."""
        previous = self.follower.current
        if not self.follower.refresh() and self.follower.current is None:
            raise ValueError("the configuration was refused (see the log line above)")
        self._apply(previous)
        self.bus.on_configuration_update(lambda: self.inbox.put("config"))
        self.bus.report_state("RUNNING")
        log_event(self.log, logging.INFO, "started", version=self.version, thing=self.thing, boot=self.boot)

    def _apply(self, previous: TachConfig | None) -> None:
        """Open the backends of the current configuration; on failure go back to ``previous``."""
        config = self.config
        clock = self.base_clock if config.time_scale == 1 else ScaledClock(self.base_clock, config.time_scale)
        try:
            tachs = {
                fan.id: Tachometer(
                    open_source(config, fan, clock, self.base_dir),
                    clock=clock,
                    pulses_per_rev=fan.pulses_per_rev,
                    max_rpm=config.max_rpm,
                    window_s=config.window_s,
                    stall_timeout_s=config.stall_timeout_s,
                    target_rpm=fan.target_rpm,
                )
                for fan in config.fans
            }
        except (GpioPreflightError, ReplayError) as exc:
            log_event(self.log, logging.ERROR, "backend refused", backend=config.backend, problem=str(exc))
            self.follower.current = previous
            if previous is None:
                raise ValueError(str(exc)) from None
            return
        for tach in self.tachs.values():
            tach.close()
        self.tachs, self.clock = tachs, clock

    def step(self) -> None:
        """One publish cycle: apply a pending configuration change, read and publish every fan."""
        while self.inbox.get_nowait() is not None:
            previous = self.follower.current
            if self.follower.refresh():
                self._apply(previous)
        for fan_id, tach in self.tachs.items():
            reading = tach.read()
            if reading is None:  # just opened: nothing measured yet
                continue
            message = Telemetry(
                thing=self.thing,
                fan=fan_id,
                boot=self.boot,
                seq=self._seq[fan_id],
                sent=reading.ts,
                readings=(reading,),
            )
            self._seq[fan_id] += 1
            self.counters["readings"] += 1
            self._last_reading = reading
            self._publish(raw_topic(fan_id), encode(message))
        if self.base_clock.now() >= self._status_due:
            self._status_due = self.base_clock.now() + self.config.status_interval_s
            self._publish(STATUS_TOPIC, encode(self.status()))

    def _publish(self, topic: str, payload: bytes) -> None:
        try:
            self.bus.publish_local(topic, payload)
        except Exception as exc:  # an IPC error must not stop the readings
            self.counters["publish_errors"] += 1
            log_event(self.log, logging.ERROR, "local publish failed", topic=topic, error=repr(exc))

    def status(self) -> Status:
        return Status(
            thing=self.thing,
            boot=self.boot,
            ts=self.base_clock.utc(),
            uptime_s=self.base_clock.now() - self._started,
            components={COMPONENT: self.version},
            config_digest=self.config.digest,
            counters={**self.counters, "pulses": sum(t.pulses_seen for t in self.tachs.values())},
            last_reading=self._last_reading,
        )

    def run(self, stop: threading.Event) -> None:
        """Publish on a fixed grid (no drift from the time each cycle takes) until ``stop`` is set."""
        next_at = self.base_clock.now()
        try:
            while not stop.is_set():
                self.step()
                next_at += self.config.publish_interval_s
                self.base_clock.sleep(max(0.0, next_at - self.base_clock.now()), stop)
        finally:
            self.close()
            log_event(self.log, logging.INFO, "stopped", readings=self.counters["readings"])

    def close(self) -> None:
        for tach in self.tachs.values():
            tach.close()


def main(argv: Sequence[str] | None = None) -> int:
    """The Tachometer process as the recipe's Run starts it (IPC, signals and logs: ``run_component``)."""

    def make(
        bus: EdgeBus, thing: str, version: str, log: logging.Logger, artifacts: Path | None
    ) -> TachometerService:
        return TachometerService(
            bus, thing=thing, clock=MonotonicClock(), version=version, logger=log, base_dir=artifacts
        )

    return run_component(COMPONENT, __doc__.splitlines()[0], make, argv)


if __name__ == "__main__":
    sys.exit(main())
