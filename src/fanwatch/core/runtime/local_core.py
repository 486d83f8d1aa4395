"""``LocalCore``: a stand-in for the Greengrass nucleus on one simulated thing.

It is the :class:`~fanwatch.core.ports.Nucleus` the IPC server serves and the
:class:`~fanwatch.core.ports.ControlledCore` the control socket serves, and it puts together the parts
that each do one job: the :class:`~.supervisor.Supervisor` runs the components, the
:class:`~.deployer.Deployer` applies deployments and rolls them back, :class:`~.persistence.CoreFiles`
keeps what survives a restart, :class:`~.core_log.CoreLog` routes this core's log lines and
:func:`~.status.core_status` describes it all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fanwatch.core.config import ConfigStore
from fanwatch.core.control import ControlServer
from fanwatch.core.deployment.document import DeploymentResult
from fanwatch.core.deployment.recipe import current_platform
from fanwatch.core.deployment.store import ComponentStore
from fanwatch.core.ipc import IPCServer
from fanwatch.core.layout import CoreLayout
from fanwatch.core.ports import ComponentInfo, ComponentState, IoTCoreLink
from fanwatch.core.runtime.core_log import CoreLog
from fanwatch.core.runtime.deployer import Deployer
from fanwatch.core.runtime.nucleus import NUCLEUS_VERSION, nucleus_defaults
from fanwatch.core.runtime.persistence import CoreFiles
from fanwatch.core.runtime.status import core_status
from fanwatch.core.runtime.supervisor import Supervisor
from fanwatch.limits import DEFAULT_REGION, NUCLEUS_COMPONENT, THING_NAME_RULE, is_thing_name

__all__ = ["LocalCore"]


class LocalCore:
    """One simulated Greengrass core device: ``async with LocalCore("fan-001", root, iot=link) as core``.

    ``root`` is the core's own folder (laid out as the nucleus' root), ``iot`` its one connection to
    the broker standing in for IoT Core. ``store`` is where deployments find components (gdk build
    folders, see :meth:`add_sources`); ``region`` is what components read as ``AWS_REGION``;
    ``platform`` overrides the detected ``os``/``architecture`` that recipe manifests are matched on.
    A deployment succeeds once every component has been RUNNING or FINISHED for ``stable_seconds``
    and fails after ``deployment_timeout`` seconds.
    """

    def __init__(
        self,
        thing_name: str,
        root: str | os.PathLike[str],
        *,
        iot: IoTCoreLink,
        store: ComponentStore | None = None,
        region: str = DEFAULT_REGION,
        platform: Mapping[str, str] | None = None,
        stable_seconds: float = 1.0,
        deployment_timeout: float = 900.0,
    ) -> None:
        if not is_thing_name(thing_name):
            raise ValueError(f"{thing_name!r} is not a valid AWS IoT thing name ({THING_NAME_RULE})")
        self._thing_name = thing_name
        self.layout = CoreLayout(Path(root).absolute())
        self._iot = iot
        self._config = ConfigStore()
        self.store = store or ComponentStore()
        self.region = region
        self.platform = current_platform(platform)
        self.log = logging.getLogger(f"fanwatch.core.runtime.{thing_name}")
        self._files = CoreFiles(self.layout, self.log)
        self._core_log = CoreLog(thing_name, self.layout.core_log, self.log)
        self._supervisor = Supervisor(
            thing_name=thing_name,
            region=region,
            layout=self.layout,
            config=self._config,
            log=self.log,
            stable_seconds=stable_seconds,
            deployment_timeout=deployment_timeout,
        )
        self._deployer = Deployer(
            self._supervisor,
            store=self.store,
            config=self._config,
            layout=self.layout,
            files=self._files,
            core_log=self._core_log,
            log=self.log,
            platform=self.platform,
            region=region,
        )
        self._ipc: IPCServer | None = None
        self._control: ControlServer | None = None

    @property
    def stable_seconds(self) -> float:
        return self._supervisor.stable_seconds

    @property
    def deployment_timeout(self) -> float:
        return self._supervisor.deployment_timeout

    @property
    def last_result(self) -> DeploymentResult | None:
        """How the last deployment ended (None before the first)."""
        return self._deployer.last_result

    # -- the Nucleus seam -------------------------------------------------------------------------------

    @property
    def thing_name(self) -> str:
        return self._thing_name

    @property
    def config(self) -> ConfigStore:
        return self._config

    @property
    def iot(self) -> IoTCoreLink:
        return self._iot

    def component_for_token(self, token: str) -> str | None:
        return self._supervisor.component_for_token(token)

    def report_state(self, component: str, state: ComponentState) -> None:
        self._supervisor.report_state(component, state)

    def components(self) -> list[ComponentInfo]:
        supervisor = self._supervisor
        infos = [
            ComponentInfo(
                NUCLEUS_COMPONENT,
                NUCLEUS_VERSION,
                ComponentState.FINISHED,
                self._config.get(NUCLEUS_COMPONENT),
            )
        ]
        for name, running in sorted(supervisor.running.items()):
            infos.append(
                ComponentInfo(
                    name, running.planned.version, running.service.state, supervisor.configuration(name)
                )
            )
        return infos

    # -- starting and stopping --------------------------------------------------------------------------

    async def __aenter__(self) -> LocalCore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Create the root folder, serve IPC, and bring back what the last deployment left running."""
        self._supervisor.resume()
        self.layout.create()
        self._core_log.open()
        saved = self._files.load_deployment()
        self._config.set_tree(NUCLEUS_COMPONENT, saved.get("nucleus") or nucleus_defaults(self.region))
        self._ipc = IPCServer(self, self.layout.ipc_socket)
        await self._ipc.start()
        self._control = ControlServer(self, self.layout.control_socket)
        await self._control.start()
        self._files.announce(
            self.thing_name, ipc_socket=self._ipc.socket_path, control_socket=self._control.socket_path
        )
        self.log.info(
            "core %s started in %s (IPC socket %s)", self.thing_name, self.layout.root, self._ipc.socket_path
        )
        if saved.get("components"):
            await self._deployer.restore(saved)

    async def stop(self) -> None:
        """Stop every component (dependers first), save the configuration, stop serving IPC."""
        self._supervisor.stopping()  # a deployment waiting for its components gives up
        if self._control is not None:
            await self._control.close()
            self._control = None
        async with self._deployer.busy:
            if self._supervisor.running:
                self._deployer.save()
            await self._supervisor.stop_all()
            if self._ipc is not None:
                await self._ipc.close()
                self._ipc = None
        self._files.withdraw()
        self.log.info("core %s stopped", self.thing_name)
        self._core_log.close()

    # -- deployments and status ---------------------------------------------------------------------------

    async def deploy(self, document: object) -> DeploymentResult:
        """Apply a deployment (a :class:`~fanwatch.core.deployment.DeploymentDocument` or its JSON form)
        and wait until it succeeded, failed or rolled back."""
        return await self._deployer.deploy(document)

    def status(self) -> dict[str, Any]:
        """What ``fanwatch core status`` shows (see :mod:`~fanwatch.core.runtime.status`)."""
        return core_status(
            thing_name=self.thing_name,
            layout=self.layout,
            platform=self.platform,
            supervisor=self._supervisor,
            store=self.store,
            last_result=self.last_result,
        )

    def add_sources(self, folders: Sequence[Path]) -> None:
        """Index more gdk build folders (or re-read them after a rebuild)."""
        for folder in folders:
            self.store.add_build(folder)

    def token_for(self, component: str) -> str:
        """The SVCUID the core gave ``component`` (what its processes find in ``SVCUID``)."""
        return self._supervisor.token_for(component)
