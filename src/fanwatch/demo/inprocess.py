"""The demo without a Greengrass core: the same fleet through the same component services, in one process.

For a machine that cannot reach PyPI (the components' Install step pip-installs awsiotsdk) or for a
result in seconds: each thing's ``TachometerService`` and ``FilterService`` are wired through an
:class:`~fanwatch.edge.inprocess.InProcessNucleus` with the configuration the deployment would give
them, on a simulated clock that runs as fast as the code does. There is no IPC, no process, no
broker and no Install step; what the filters send to IoT Core is read with the wire contract as in
the real run. The clock being simulated, ``timeScale`` is 1 and the filter keeps its recipe's timings.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime

from fanwatch.demo.observations import DemoRun, Observations
from fanwatch.demo.scenario import EDGE_FILTER, TACHOMETER, Scenario, effective_configuration
from fanwatch.edge.clock import SimClock
from fanwatch.edge.inprocess import InProcessNucleus
from fanwatch.edge.run_filter import FilterService
from fanwatch.edge.run_tachometer import TachometerService

__all__ = ["run_in_process"]

VERSION = "in-process"  # what the device status names as the components' version


def run_in_process(scenario: Scenario) -> DemoRun:
    """Run every thing of ``scenario`` on one simulated clock and read what reached "IoT Core"."""
    scenario = dataclasses.replace(scenario, time_scale=1.0)
    started = time.perf_counter()
    clock = SimClock(start=datetime.now(UTC).replace(microsecond=0))
    quiet = logging.getLogger("fanwatch.demo.components")  # the report says what matters
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    devices = []
    for thing in scenario.things:
        nucleus = InProcessNucleus()
        merges = scenario.merges(thing.name)
        buses = {c: nucleus.bus(c, effective_configuration(c, merges[c])) for c in merges}
        edge = FilterService(buses[EDGE_FILTER], thing=thing.name, clock=clock, version=VERSION, logger=quiet)
        tach = TachometerService(
            buses[TACHOMETER], thing=thing.name, clock=clock, version=VERSION, logger=quiet
        )
        edge.start()  # subscribed before the first reading, as the deployment's start order allows
        tach.start()
        devices.append((nucleus, tach, edge))
    interval = devices[0][1].config.publish_interval_s
    while clock.now() < scenario.seconds:
        for _nucleus, tach, edge in devices:
            tach.step()
            edge.process(None)
        clock.advance(interval)
    observations = Observations(scale=1.0)
    for nucleus, _tach, edge in devices:
        edge.shutdown()  # as SIGTERM would: the filter publishes what it holds
        for topic, payload in nucleus.iot:
            observations.add(topic, payload)
    return DemoRun(
        scenario, "in one process (no Greengrass core)", observations, time.perf_counter() - started
    )
