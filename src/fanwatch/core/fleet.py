"""Several simulated Greengrass core devices on one machine: one :class:`LocalCore` per thing.

Each core has its own root folder (``<root>/<thing>``), IPC and control sockets, component processes
and its own connection to the broker standing in for IoT Core, with the thing name as client id::

    async with Fleet(root, Fleet.names(3), links=connect_to_broker, build_dirs=[build]) as fleet:
        results = await fleet.deploy(document)            # every thing, concurrently
        canary = await fleet.deploy(document, things=["fan-001"])

``links(thing, core_root)`` returns an async context manager that yields that thing's
:class:`~fanwatch.core.ports.IoTCoreLink`: the fleet enters it before the core starts and leaves it
after the core stopped, so a thing's MQTT connection lives exactly as long as its core.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from fanwatch.core.deployment.document import DeploymentDocument, DeploymentError, DeploymentResult
from fanwatch.core.deployment.store import ComponentStore
from fanwatch.core.layout import root_lock
from fanwatch.core.ports import IoTCoreLink
from fanwatch.core.runtime import LocalCore
from fanwatch.limits import DEFAULT_REGION

__all__ = ["Fleet", "LinkFactory"]

#: (thing name, core root folder) -> an async context manager yielding that thing's IoT Core link
LinkFactory = Callable[[str, Path], AbstractAsyncContextManager[IoTCoreLink]]


class Fleet:
    """One local core per thing, started and stopped together."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        things: Sequence[str],
        *,
        links: LinkFactory,
        build_dirs: Sequence[Path] = (),
        region: str = DEFAULT_REGION,
        platform: Mapping[str, str] | None = None,
        stable_seconds: float = 1.0,
    ) -> None:
        if not things:
            raise ValueError("a fleet needs at least one thing")
        if len(set(things)) != len(things):
            raise ValueError(f"thing names must be unique: {sorted(things)}")
        self.root = Path(root).absolute()
        self._links = links
        self._build_dirs = [Path(d) for d in build_dirs]
        self._settings: dict[str, Any] = {
            "region": region,
            "platform": platform,
            "stable_seconds": stable_seconds,
        }
        self.things = list(things)
        self.cores: dict[str, LocalCore] = {}
        self._stacks: dict[str, contextlib.AsyncExitStack] = {}  # per thing: lock, link, core

    @staticmethod
    def names(count: int, prefix: str = "fan-") -> list[str]:
        """``fan-001``, ``fan-002``, ...: thing names for a fleet of ``count``."""
        if count < 1:
            raise ValueError("a fleet needs at least one thing")
        return [f"{prefix}{n:03d}" for n in range(1, count + 1)]

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect every thing and start its core (bringing back what it ran before)."""
        try:
            for thing in self.things:
                root = self.root / thing
                stack = self._stacks[thing] = contextlib.AsyncExitStack()
                stack.enter_context(root_lock(root))  # before the link opens the root's Disk spool
                link = await stack.enter_async_context(self._links(thing, root))
                store = ComponentStore()
                for folder in self._build_dirs:
                    store.add_build(folder)
                core = LocalCore(thing, root, iot=link, store=store, **self._settings)
                self.cores[thing] = core
                stack.push_async_callback(core.stop)  # before its link closes
            await asyncio.gather(*(core.start() for core in self.cores.values()))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every core, each then closing its link, all at once: one after another, stopping a
        fleet while the broker was down took the sum of every link's wait."""
        stacks, self._stacks = self._stacks, {}
        results = await asyncio.gather(*(stack.aclose() for stack in stacks.values()), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def deploy(
        self, document: object, *, things: Sequence[str] | None = None
    ) -> dict[str, DeploymentResult]:
        """Deploy to ``things`` (default: all) concurrently, as one deployment (one id)."""
        targets = list(things) if things is not None else self.things
        unknown = [t for t in targets if t not in self.cores]
        if unknown:
            raise KeyError(f"not in this fleet: {unknown}")
        with contextlib.suppress(DeploymentError):  # an invalid document: each core reports it
            document = DeploymentDocument.parse(document)
        results = await asyncio.gather(*(self.cores[t].deploy(document) for t in targets))
        return dict(zip(targets, results, strict=True))

    def status(self) -> dict[str, dict[str, Any]]:
        return {thing: core.status() for thing, core in self.cores.items()}
