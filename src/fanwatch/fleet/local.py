"""A whole fleet on one machine: the Greengrass control plane and AWS stand-in, an MQTT broker standing
in for IoT Core, and one local core per thing, each with the agent that takes its deployments.

The things and thing groups are registered in the stand-in's IoT registry, as fleet provisioning
would register real Pis, and the artifacts bucket is created under the name the stack gives it. From
then on everything goes through the public APIs: ``fanwatch fleet publish/deploy/status/rollback``
(or gdk, or the AWS CLI) with ``AWS_ENDPOINT_URL`` set to :attr:`LocalFleet.url`::

    groups = {"fanwatch-fleet": Fleet.names(20), "fanwatch-canary": ["fan-001", "fan-002"]}
    async with LocalFleet(root, groups=groups) as fleet:
        os.environ.update(fleet.environment())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fanwatch.core.fleet import Fleet
from fanwatch.core.links import broker_links
from fanwatch.core.mqtt.amqtt_broker import AmqttBroker
from fanwatch.core.mqtt.endpoint import BrokerEndpoint, Login
from fanwatch.environment import TIME_SCALE_VARIABLE
from fanwatch.fleet.controlplane import LocalControlPlane
from fanwatch.fleet.device.agent import AgentClients, DeviceAgent
from fanwatch.fleet.names import artifacts_bucket
from fanwatch.fleet.timescale import TimeScale

__all__ = ["LocalFleet"]

log = logging.getLogger(__name__)


class LocalFleet:
    """The stand-ins and one core per thing of ``groups``, started and stopped together."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        groups: Mapping[str, Sequence[str]],
        region: str = "us-east-1",
        scale: TimeScale | None = None,
        status_interval: float = 300.0,
        poll_seconds: float = 0.5,
        stable_seconds: float = 1.0,
        platform: Mapping[str, str] | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.groups = {group: list(things) for group, things in groups.items()}
        self.things = sorted({thing for things in self.groups.values() for thing in things})
        if not self.things:
            raise ValueError("a local fleet needs at least one thing in a group")
        self.region = region
        self.scale = scale or TimeScale.from_env()
        self._status_interval = status_interval
        self._poll = poll_seconds
        self._stable = stable_seconds
        self._platform = platform
        self.plane = LocalControlPlane(region=region, scale=self.scale)
        self.broker = AmqttBroker(self.root / "broker", login=Login.from_environment())
        self.cores: Fleet | None = None
        self.agents: dict[str, DeviceAgent] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stack = contextlib.AsyncExitStack()

    @property
    def url(self) -> str:
        return self.plane.url

    @property
    def bucket(self) -> str:
        return artifacts_bucket(self.region, self.plane.account)

    @property
    def observer(self) -> BrokerEndpoint:
        """Where to read what the things publish (the role of IoT Core's broker)."""
        return self.broker.observer_endpoint()

    def environment(self) -> dict[str, str]:
        """What a shell needs to run fanwatch fleet, gdk or the AWS CLI against this fleet."""
        return {**self.plane.environment(), TIME_SCALE_VARIABLE: f"{self.scale.factor:g}"}

    async def __aenter__(self) -> LocalFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(self.plane.start)
            self._stack.callback(self.plane.stop)
            await asyncio.to_thread(self._register)
            await asyncio.to_thread(self.broker.start)
            self._stack.callback(self.broker.stop)
            links = await self._stack.enter_async_context(
                broker_links(self.observer.url, certs=None, root=self.root)
            )
            self.cores = Fleet(
                self.root, self.things, links=links, region=self.region, platform=self._platform,
                stable_seconds=self._stable,
            )  # fmt: skip
            await self.cores.start()
            self._stack.push_async_callback(self.cores.stop)
            clients = await asyncio.to_thread(self._clients)
            for thing, core in self.cores.cores.items():
                agent = DeviceAgent(
                    core,
                    clients,
                    scale=self.scale,
                    poll_seconds=self._poll,
                    status_interval=self._status_interval,
                )
                self.agents[thing] = agent
                self._tasks[thing] = asyncio.create_task(agent.run(), name=f"agent-{thing}")
            log.info("local fleet: %d things in %s, control plane %s", len(self.things), self.root, self.url)
        except BaseException:
            await self.stop()
            raise

    async def disconnect(self, thing: str) -> None:
        """The device loses the cloud: it takes no more jobs and reports nothing, its components run on."""
        task = self._tasks.pop(thing)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop(self) -> None:
        for thing in list(self._tasks):
            await self.disconnect(thing)
        stack, self._stack = self._stack, contextlib.AsyncExitStack()
        await stack.aclose()

    def _register(self) -> None:
        """Things, groups and the artifacts bucket, as provisioning and the stack leave them."""
        iot = self.plane.client("iot")
        existing = {
            t
            for page in iot.get_paginator("list_things").paginate()
            for t in (x["thingName"] for x in page["things"])
        }
        for thing in self.things:
            if thing not in existing:
                iot.create_thing(thingName=thing)
        for group, things in self.groups.items():
            with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
                iot.create_thing_group(thingGroupName=group)
            for thing in things:
                iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        s3 = self.plane.client("s3")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=self.bucket)

    def _clients(self) -> AgentClients:
        plane = self.plane
        return AgentClients(
            greengrass=plane.client("greengrassv2"),
            jobs=plane.client("iot-jobs-data"),
            iot_data=plane.client("iot-data"),
            iot=plane.client("iot"),
            s3=plane.client("s3"),
            region=self.region,
            account=plane.account,
        )

    def status(self) -> dict[str, Any]:
        return {} if self.cores is None else self.cores.status()
