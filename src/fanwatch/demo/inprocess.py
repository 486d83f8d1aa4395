"""The demo without Greengrass cores: the same fleet and the same cloud, the components in one process.

``fanwatch demo --in-process`` is for a machine that cannot run the cores' Install step (it
pip-installs awsiotsdk into each component's venv) or should not start processes: each device's
``TachometerService`` and ``FilterService`` are wired through an
:class:`~fanwatch.edge.inprocess.InProcessNucleus` with the configuration its deployment would give
them, and stepped once a simulated second on one simulated clock. What the filters publish to IoT Core
goes straight into the embedded AWS stand-in's IoT rules engine (``rules.ingest``) and into the edge's
ledger: the same rules, streams, detector, notifier and lake as the real run. The steps are paced at
``timeScale`` (a step waits for the wall clock when it is ahead), and the stand-in runs on the same
simulated clock (:class:`FollowingClock`), so its batching windows, Firehose buffers and the
notifier's cooldown count the fans' seconds even when a busy machine cannot keep the pace.

What differs from the run on local cores, and nothing else:

* no Greengrass core (no IPC, no component processes, no Install step, no deployment) and no MQTT
  broker (no spooler, no QoS 1 redelivery);
* the clock is simulated and driven by the steps, so the readings, alerts and notification texts carry
  simulated time (the real run's carry the wall clock's), the filter keeps the recipe's timings (the
  real run divides them by the time scale), and the detector's ``SettleSeconds`` is not divided either.

:func:`run_edge_in_process` is the edge alone on that clock without pacing or cloud: what the
functional tests use to check the fleet in seconds.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from fanwatch.demo.ledger import EdgeLedger
from fanwatch.demo.observations import DemoRun, Observations
from fanwatch.demo.scenario import EDGE_FILTER, TACHOMETER, Scenario, effective_configuration
from fanwatch.demo.text import clock as mmss
from fanwatch.edge.clock import Clock, MonotonicClock, SimClock
from fanwatch.edge.inprocess import InProcessNucleus
from fanwatch.edge.run_filter import FilterService
from fanwatch.edge.run_tachometer import TachometerService

__all__ = ["run_edge_in_process", "run_in_process"]

Say = Callable[[str], None]
VERSION: Final = "in-process"  # what the device status names as the components' version
PROGRESS_EVERY_S: Final = 5.0
WHERE: Final = "in one process (no Greengrass core, no broker)"


class _Device:
    """One simulated Pi: its two services and what it has handed to "IoT Core" so far."""

    def __init__(self, scenario: Scenario, thing: str, clock: Clock) -> None:
        quiet = logging.getLogger("fanwatch.demo.components")  # the summary says what matters
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        self.nucleus = InProcessNucleus()
        merges = scenario.merges(thing)
        buses = {c: self.nucleus.bus(c, effective_configuration(c, merges[c])) for c in merges}
        self.edge = FilterService(buses[EDGE_FILTER], thing=thing, clock=clock, version=VERSION, logger=quiet)
        self.tach = TachometerService(
            buses[TACHOMETER], thing=thing, clock=clock, version=VERSION, logger=quiet
        )
        self.edge.start()  # subscribed before the first reading, as the deployment's start order allows
        self.tach.start()
        self.sent = 0

    def step(self) -> None:
        self.tach.step()
        self.edge.process(None)

    def new(self) -> list[tuple[str, bytes]]:
        """What the filter published to IoT Core since the last call."""
        fresh = self.nucleus.iot[self.sent :]
        self.sent += len(fresh)
        return fresh


def run_edge_in_process(scenario: Scenario) -> DemoRun:
    """Every thing of ``scenario`` on one simulated clock, as fast as the code runs, without the cloud."""
    scenario = dataclasses.replace(scenario, time_scale=1.0)
    started = time.perf_counter()
    clock = SimClock(start=datetime.now(UTC).replace(microsecond=0))
    devices = [_Device(scenario, t.name, clock) for t in scenario.things]
    interval = devices[0].tach.config.publish_interval_s
    while clock.now() < scenario.seconds:
        for device in devices:
            device.step()
        clock.advance(interval)
    observations = Observations(scale=1.0)
    for device in devices:
        device.edge.shutdown()  # as SIGTERM would: the filter publishes what it holds
        for topic, payload in device.new():
            observations.add(topic, payload)
    where = "in one process on a simulated clock (edge only)"
    return DemoRun(scenario, where, observations, time.perf_counter() - started)


class FollowingClock:
    """The stand-in's clock in the in-process run: the fans' simulated time, read-only.

    ``sleep`` waits wall time (``seconds / scale``): the stand-in's pollers must not advance the fans'
    clock. Once the fans have stopped, :meth:`run_free` lets simulated time go on at ``scale`` so that
    batching windows and buffers still close while the cloud finishes.
    """

    def __init__(self, fans: SimClock, scale: float) -> None:
        self._fans = fans
        self._scale = scale
        self._free_from: tuple[float, float] | None = None  # (simulated, monotonic) when it ran free

    def now(self) -> float:
        if self._free_from is None:
            return self._fans.now()
        simulated, wall = self._free_from
        return simulated + (time.monotonic() - wall) * self._scale

    def utc(self, t: float | None = None) -> datetime:
        return self._fans.utc(self.now() if t is None else t)

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        MonotonicClock().sleep(seconds / self._scale, stop)

    def run_free(self) -> None:
        self._free_from = (self._fans.now(), time.monotonic())


class _WallToSimulated:
    """Maps wall-clock instants (when SNS sent a notification) onto the fans' simulated time."""

    def __init__(self, fans: SimClock, scale: float) -> None:
        self._fans = fans
        self._scale = scale
        self._marks: list[tuple[datetime, datetime]] = []  # (wall UTC, simulated UTC), in order

    def mark(self) -> None:
        self._marks.append((datetime.now(UTC), self._fans.utc()))

    def __call__(self, wall: datetime) -> datetime:
        marks = self._marks
        if not marks:
            return wall
        i = bisect.bisect_right([w for w, _ in marks], wall)
        w, simulated = marks[max(0, i - 1)]
        if i == len(marks):  # after the fans stopped, simulated time ran free at the time scale
            return simulated + (wall - w) * self._scale
        return simulated  # within one step of it


async def run_in_process(scenario: Scenario, out: Path, say: Say, stop: asyncio.Event) -> DemoRun:
    """The fleet and the cloud in this process, paced at ``timeScale``; ``stop`` ends the run early."""
    from fanwatch.demo.cloud import DemoCloud

    started = time.monotonic()
    steps = dataclasses.replace(scenario, time_scale=1.0)  # the components' own view: a simulated clock
    fans = SimClock(start=datetime.now(UTC).replace(microsecond=0))
    following = FollowingClock(fans, scenario.time_scale)
    wall_to_simulated = _WallToSimulated(fans, scenario.time_scale)
    observations = Observations(scale=1.0)
    ledger = EdgeLedger()
    run = DemoRun(scenario, WHERE, observations, 0.0)
    run.ledger = ledger
    run.wall_to_stamps = wall_to_simulated
    cloud = DemoCloud(scenario.time_scale, out, broker=None, clock=following, stamped_in_simulated_time=True)
    async with cloud:
        aws = cloud.aws
        assert aws is not None and aws.rules is not None
        rules = aws.rules
        say(
            f"AWS stand-in on {aws.endpoint.url}: the stack's rules, streams, detector and notifier, "
            f"Firehose into the lake ({cloud.lake_dir}); the devices' messages go straight to its rules"
        )
        devices = [_Device(steps, t.name, fans) for t in scenario.things]

        def deliver(device: _Device) -> None:
            for topic, payload in device.new():
                ledger.add(topic, payload, 1 if topic.endswith("/telemetry") else 0)
                observations.add(topic, payload)
                rules.ingest(topic, payload, client_id=topic.split("/")[1])

        halt = threading.Event()
        stop_watch = asyncio.get_running_loop().create_task(stop.wait())
        stop_watch.add_done_callback(lambda _t: halt.set())

        def turn() -> None:
            """Step every device once a simulated second, waiting for the wall clock when ahead."""
            interval = devices[0].tach.config.publish_interval_s
            begun = time.monotonic()
            while fans.now() < scenario.seconds and not halt.is_set():
                for device in devices:
                    device.step()
                    deliver(device)
                fans.advance(interval)
                wall_to_simulated.mark()
                ahead = fans.now() / scenario.time_scale - (time.monotonic() - begun)
                if ahead > 0:
                    halt.wait(ahead)
            for device in devices:
                device.edge.shutdown()  # as SIGTERM would: the filter publishes what it holds
                deliver(device)
            following.run_free()

        say(f"{len(devices)} devices turning their fans in this process, paced at {scenario.time_scale:g}x")
        work = asyncio.ensure_future(asyncio.to_thread(turn))
        while not work.done():
            await asyncio.wait({work}, timeout=PROGRESS_EVERY_S)
            if not work.done():
                progress = cloud.progress()
                say(
                    f"simulated {mmss(fans.now())} of {mmss(scenario.seconds)} · readings: "
                    f"{ledger.readings:,} sent, {progress['scored']:,} scored, {progress['lake']:,} in the "
                    f"lake · alerts and anomalies: {progress['events']} · notifications: "
                    f"{progress['notifications']}"
                )
        await work
        stop_watch.cancel()
        if stop.is_set():
            run.problems.append("the run was interrupted before its end")
        await cloud.conclude(run, say)
    run.wall_s = time.monotonic() - started
    return run
