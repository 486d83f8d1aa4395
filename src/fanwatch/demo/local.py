"""The demo on fanwatch's local Greengrass cores: built, deployed and observed as a user would.

1. Build both components with the project's build (the command behind ``gdk component build``).
2. Start the embedded MQTT broker standing in for AWS IoT Core, subscribe to every thing's topics
   with paho-mqtt, start the embedded AWS stand-in (:mod:`fanwatch.demo.cloud`: its IoT rules engine
   subscribes to the broker) and one local core per thing, each with its own MQTT connection, whose
   every publish is counted in the edge's ledger (:mod:`fanwatch.demo.ledger`).
3. Send each thing its deployment document (also written to ``<out>/deployments/``); the components
   run their Install step (a venv with pinned awsiotsdk, only the first time), then Run.
4. Let the simulated fans run, printing a progress line every few seconds.
5. Stop every core: each component gets its Shutdown step and SIGTERM, the filter publishes what it
   holds, and each thing's connection delivers what its spooler still holds before it disconnects.
6. Let the cloud finish: every stream processed, Firehose's buffers written; read back the lake, the
   inbox and the dead letters.

Tests drive the same run with a ``during`` hook that gets the :class:`Pipeline` while the fans turn
(to restart the broker, make AWS refuse for a while, publish garbage).

Each run starts its cores afresh in ``<out>/cores/<thing>/`` but keeps their ``work/`` folders, where
the components' venvs live, so only the first run pays for the Install step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from fanwatch import build
from fanwatch.core.fleet import Fleet, LinkFactory
from fanwatch.core.layout import CoreLayout
from fanwatch.core.mqtt.amqtt_broker import AmqttBroker
from fanwatch.core.mqtt.broker import Observer
from fanwatch.core.mqtt.endpoint import Login
from fanwatch.core.mqtt.link import MqttIoTCoreLink
from fanwatch.demo.cloud import DemoCloud
from fanwatch.demo.ledger import EdgeLedger, LedgerLink
from fanwatch.demo.observations import DemoRun, Observations
from fanwatch.demo.observer import TOPICS, BrokerObserver
from fanwatch.demo.scenario import EDGE_FILTER, TACHOMETER, Scenario
from fanwatch.demo.text import clock, count
from fanwatch.edge.install import STAMP as INSTALLED_STAMP

__all__ = ["Pipeline", "run_on_local_cores"]

COMPONENTS: Final = (TACHOMETER, EDGE_FILTER)
PROGRESS_EVERY_S: Final = 5.0
#: How long a stopped core's connection may take to deliver what its spooler holds.
DRAIN_TIMEOUT_S: Final = 10.0

Say = Callable[[str], None]
_T = TypeVar("_T")


@dataclass(slots=True)
class Pipeline:
    """The running demo, for a ``during`` hook: the broker, the cloud, the fleet and what they saw."""

    scenario: Scenario
    broker: AmqttBroker
    cloud: DemoCloud
    fleet: Fleet
    observations: Observations
    ledger: EdgeLedger
    began: float  # time.monotonic() when the fans started turning

    @property
    def simulated_s(self) -> float:
        return (time.monotonic() - self.began) * self.scenario.time_scale

    async def until(self, simulated_s: float) -> None:
        """Wait until the fans have run ``simulated_s`` simulated seconds."""
        await asyncio.sleep(max(0.0, (simulated_s - self.simulated_s) / self.scenario.time_scale))


During = Callable[[Pipeline], Awaitable[None]]


async def run_on_local_cores(
    scenario: Scenario, out: Path, say: Say, stop: asyncio.Event, *, during: During | None = None
) -> DemoRun:
    """Run ``scenario`` on one local core per thing under ``out``; ``stop`` ends the run early."""
    started = time.monotonic()
    build_dir = out / "greengrass-build"
    for component in COMPONENTS:
        build.build(component, build_dir)
    say(f"built {' and '.join(COMPONENTS)} into {build_dir} (the command gdk component build runs)")
    things = [t.name for t in scenario.things]
    cores = out / "cores"
    first_run = [t for t in things if not _installed(cores / t)]
    for thing in things:
        _fresh(cores / thing)
    observations = Observations(scale=scenario.time_scale)
    ledger = EdgeLedger()
    run = DemoRun(scenario, f"on {count(len(things), 'local Greengrass core')}", observations, 0.0)
    run.ledger = ledger
    login = Login.from_environment()  # a shared machine's: others cannot read or forge the fleet's messages
    with (
        AmqttBroker(out / "broker", login=login) as broker,
        BrokerObserver(broker.host, broker.port, observations, login=login),
    ):
        say(
            f"MQTT broker (amqtt) on {broker.host}:{broker.port}; "
            f"subscribed to {', '.join(t for t, _ in TOPICS)}"
        )
        rules = broker.observer_endpoint(Observer.RULES)
        async with DemoCloud(scenario.time_scale, out, broker=rules) as cloud:
            assert cloud.aws is not None
            say(
                f"AWS stand-in on {cloud.aws.endpoint.url}: the stack's rules, streams, detector and "
                f"notifier, Firehose into the lake ({cloud.lake_dir}), all on the fans' clock; "
                f"parameters {', '.join(f'{k}={v:g}' for k, v in cloud.parameters.items())}"
            )
            links = _delivering(broker, ledger)
            async with Fleet(cores, things, links=links, build_dirs=[build_dir]) as fleet:
                failed = await _deploy(fleet, scenario, out / "deployments", first_run, say)
                run.problems += failed
                if not failed:
                    pipeline = Pipeline(
                        scenario, broker, cloud, fleet, observations, ledger, time.monotonic()
                    )
                    if await _run(pipeline, say, stop, during):
                        run.problems.append("the run was interrupted before its end")
                say(
                    "stopping the cores: Shutdown and SIGTERM to each component; "
                    "the filters flush what they hold"
                )
            await asyncio.to_thread(_settle_observer, observations)
            await cloud.conclude(run, say)
    run.wall_s = time.monotonic() - started
    return run


def _installed(core_root: Path) -> bool:
    """The components' Install step completed here before: it will find its venv ready and skip."""
    layout = CoreLayout(core_root)
    return all((layout.work_path(c) / "venv" / INSTALLED_STAMP).is_file() for c in COMPONENTS)


def _fresh(core_root: Path) -> None:
    """Forget what the core ran last time (deployments, logs, packages) but keep ``work/``."""
    layout = CoreLayout(core_root)
    for folder in (layout.local, layout.logs, layout.artifacts.parent):
        shutil.rmtree(folder, ignore_errors=True)


def _delivering(broker: AmqttBroker, ledger: EdgeLedger) -> LinkFactory:
    """Each thing's MQTT connection, counting what its core publishes; once its core has stopped, it
    delivers what is spooled, then closes."""

    @contextlib.asynccontextmanager
    async def link(thing: str, _core_root: Path) -> AsyncIterator[LedgerLink]:
        async with MqttIoTCoreLink(thing, broker.endpoint_for(thing)) as connected:
            try:
                yield LedgerLink(connected, ledger)
            finally:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(connected.flush(), DRAIN_TIMEOUT_S)

    return link


def _settle_observer(observations: Observations, quiet_s: float = 0.5, limit_s: float = 5.0) -> None:
    """What the broker acknowledged to the things may still be on its way to the subscriber."""
    deadline = time.monotonic() + limit_s
    seen = observations.count
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        if observations.count == seen:
            return
        seen = observations.count


async def _deploy(
    fleet: Fleet, scenario: Scenario, folder: Path, first_run: Sequence[str], say: Say
) -> list[str]:
    """Send every thing its deployment; the problems of those that did not succeed."""
    any_core = next(iter(fleet.cores.values()))
    versions = {}
    for component in COMPONENTS:
        stored = any_core.store.latest(component)
        assert stored is not None, f"{component} was just built"
        versions[component] = stored.version  # what gdk component publish would number NEXT_PATCH
    folder.mkdir(parents=True, exist_ok=True)
    documents = {}
    for thing in fleet.things:
        documents[thing] = scenario.deployment(thing, versions)
        (folder / f"{thing}.json").write_text(json.dumps(documents[thing], indent=2) + "\n")
    install = (
        f"first run on {', '.join(first_run)}: each component's Install step creates a venv and "
        "pip-installs awsiotsdk and awscrt, about half a minute, once"
        if first_run
        else "Install steps find their venvs ready"
    )
    components = ", ".join(f"{c} {v}" for c, v in versions.items())
    say(f"deploying {components} to {count(len(fleet.things), 'thing')} ({install})")

    def progress() -> str:
        states = Counter(c["state"] for s in fleet.status().values() for c in s["components"])
        now = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        return f"deploying: components {now or 'not started'}" + (
            " (Install: venv + pip install, first run only)" if first_run else ""
        )

    deployments = asyncio.gather(*(fleet.deploy(documents[t], things=[t]) for t in fleet.things))
    results = [r for done in await _with_progress(deployments, progress, say) for r in done.items()]
    failed = []
    for thing, result in results:
        if result.succeeded:
            continue
        where = f"logs in {fleet.cores[thing].layout.logs}"
        if "install" in result.detail.lower():  # most often: no way to PyPI
            where += "; without PyPI, fanwatch demo --in-process runs the same fleet"
        failed.append(f"deployment to {thing}: {result.status}: {result.detail} ({where})")
    if not failed:
        say(f"deployment SUCCESSFUL on every thing ({folder}/<thing>.json); the fans are turning")
    return failed


async def _run(pipeline: Pipeline, say: Say, stop: asyncio.Event, during: During | None) -> bool:
    """Let the fans run for the scenario's length (and ``during`` alongside), with a progress line;
    True if ``stop`` ended it early."""
    scenario = pipeline.scenario
    total = clock(scenario.seconds)
    things = pipeline.fleet.things

    def progress() -> str:
        seen = pipeline.observations.snapshot()
        publishing = sum(seen.get(t, (0, 0, 0))[0] > 0 for t in things)
        cloud = pipeline.cloud.progress()
        return (
            f"simulated {clock(pipeline.simulated_s)} of {total} · {publishing}/{len(things)} devices "
            f"publishing · readings: {pipeline.ledger.readings:,} sent, {cloud['scored']:,} scored, "
            f"{cloud['lake']:,} in the lake · alerts and anomalies: {cloud['events']} · "
            f"notifications: {cloud['notifications']}"
        )

    hook = asyncio.ensure_future(during(pipeline)) if during is not None else None
    try:
        with contextlib.suppress(TimeoutError):
            await _with_progress(asyncio.wait_for(stop.wait(), scenario.wall_seconds), progress, say)
    finally:
        if hook is not None:
            if not hook.done():
                hook.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hook  # a hook that failed fails the run
    return stop.is_set()


async def _with_progress(work: Awaitable[_T], line: Callable[[], str], say: Say) -> _T:
    """Await ``work``, saying ``line()`` every few seconds until it is done."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=PROGRESS_EVERY_S)
        if done:
            return task.result()
        say(line())
