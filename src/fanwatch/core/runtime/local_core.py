"""``LocalCore``: a stand-in for the Greengrass nucleus on one simulated thing.

It is the :class:`~fanwatch.core.ports.Nucleus` the IPC server serves: it issues each component its
own SVCUID, keeps every configuration in a :class:`~fanwatch.core.config.ConfigStore`, takes
``UpdateState`` reports and lists components. It runs the components' lifecycles
(:mod:`fanwatch.core.lifecycle`) and applies deployments: components whose version, build or
interpolated lifecycle changed restart; configuration-only changes reach subscribers through
``ConfigStore.set_tree`` without a restart; a component that goes BROKEN fails the deployment, which
rolls back to the previous set of components and configurations when its policy says ROLLBACK.

Like the nucleus, a deployment succeeds once every component is RUNNING or FINISHED; the nucleus
polls for that once a second, so a component that crashes within a second of starting fails its
deployment. The core makes that window explicit (``stable_seconds``) rather than leave it to timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from fanwatch.core.config import ConfigStore
from fanwatch.core.control import ControlServer
from fanwatch.core.deployment.artifacts import ArtifactError, install_artifacts
from fanwatch.core.deployment.configuration_update import stale_keys
from fanwatch.core.deployment.document import NUCLEUS, DeploymentDocument, DeploymentError, DeploymentResult
from fanwatch.core.deployment.interpolation import Interpolator
from fanwatch.core.deployment.plan import Plan, PlannedComponent, plan_deployment
from fanwatch.core.deployment.recipe import Lifecycle, RecipeError, current_platform
from fanwatch.core.deployment.store import ComponentStore
from fanwatch.core.ipc import IPCServer
from fanwatch.core.layout import CoreLayout
from fanwatch.core.lifecycle.service import Service, ServiceSpec
from fanwatch.core.lifecycle.states import HEALTHY
from fanwatch.core.mqtt.spooler import DEFAULT_MAX_SIZE_IN_BYTES
from fanwatch.core.ports import ComponentInfo, ComponentState, IoTCoreLink

__all__ = ["DEFAULT_REGION", "NUCLEUS_VERSION", "LocalCore", "nucleus_defaults"]

#: The nucleus version the local core stands in for (recipes' dependency requirements are checked on it).
NUCLEUS_VERSION: Final = "2.15.0"
DEFAULT_REGION: Final = "us-east-1"
_THING_NAME: Final = re.compile(r"^[A-Za-z0-9:_-]{1,128}$")


def nucleus_defaults(region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The parts of the aws.greengrass.Nucleus configuration the local core honours."""
    return {
        "awsRegion": region,
        "interpolateComponentConfiguration": False,
        "mqtt": {
            "spooler": {
                "storageType": "Memory",
                "maxSizeInBytes": DEFAULT_MAX_SIZE_IN_BYTES,
                "keepQos0WhenOffline": False,
            }
        },
    }


#: The thing whose core the running task belongs to (see ``LocalCore._open_core_log``).
_current_thing: ContextVar[str | None] = ContextVar("fanwatch_core_thing", default=None)


def _access_problems(access: Any, interpolates: bool) -> list[str]:
    """accessControl resources that can never match: a recipe variable the nucleus does not replace."""
    if interpolates or not isinstance(access, Mapping):
        return []
    found = sorted(
        {
            resource
            for policies in access.values()
            if isinstance(policies, Mapping)
            for policy in policies.values()
            if isinstance(policy, Mapping)
            for resource in policy.get("resources") or []
            if isinstance(resource, str) and "{iot:thingName}" in resource
        }
    )
    hint = "set interpolateComponentConfiguration to true in aws.greengrass.Nucleus's configuration"
    return [f"accessControl resource {r!r} never matches: {hint}" for r in found]


class _ThisCore(logging.Filter):
    def __init__(self, thing_name: str, logger_name: str) -> None:
        super().__init__()
        self._thing_name = thing_name
        self._logger_name = logger_name

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == self._logger_name or _current_thing.get() == self._thing_name


@dataclass(slots=True)
class _Running:
    """A component deployed on this core."""

    planned: PlannedComponent
    service: Service
    launch_key: str  # what its processes were started with; a change means a restart


class LocalCore:
    """One simulated Greengrass core device: ``async with LocalCore("fan-001", root, iot=link) as core``."""

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
        if not _THING_NAME.match(thing_name):
            raise ValueError(f"{thing_name!r} is not a valid AWS IoT thing name ([A-Za-z0-9:_-], 1 to 128)")
        self._thing_name = thing_name
        self.layout = CoreLayout(Path(root).absolute())
        self._iot = iot
        self._config = ConfigStore()
        self.store = store or ComponentStore()
        self.region = region
        self.platform = current_platform(platform)
        self.stable_seconds = stable_seconds
        self.deployment_timeout = deployment_timeout
        self.log = logging.getLogger(f"fanwatch.core.runtime.{thing_name}")
        self._running: dict[str, _Running] = {}
        self._tokens: dict[str, str] = {}  # SVCUID -> component
        self._installed: dict[str, str] = {}  # "name@version" -> fingerprint of the artifacts installed
        self._document: DeploymentDocument | None = None
        self.last_result: DeploymentResult | None = None
        self._deploying = asyncio.Lock()
        self._changed = asyncio.Event()
        self._ipc: IPCServer | None = None
        self._control: ControlServer | None = None
        self._stopping = False
        self._log_handler: logging.Handler | None = None

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
        component = self._tokens.get(token)
        return component if component in self._running else None

    def report_state(self, component: str, state: ComponentState) -> None:
        running = self._running.get(component)
        if running is None:
            raise KeyError(component)
        running.service.report(state)

    def components(self) -> list[ComponentInfo]:
        infos = [ComponentInfo(NUCLEUS, NUCLEUS_VERSION, ComponentState.FINISHED, self._config.get(NUCLEUS))]
        for name, running in sorted(self._running.items()):
            infos.append(
                ComponentInfo(name, running.planned.version, running.service.state, self._configuration(name))
            )
        return infos

    def _configuration(self, name: str) -> dict[str, Any]:
        try:
            value = self._config.get(name)
        except KeyError:
            return {}
        return value if isinstance(value, dict) else {}

    # -- starting and stopping --------------------------------------------------------------------------

    async def __aenter__(self) -> LocalCore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _open_core_log(self) -> None:
        """``logs/greengrass.log``: this core's lines from every part of the local core (IPC denials
        included). The parts log to shared module loggers; what this core's tasks log is told apart by
        a context variable that its servers' and components' tasks inherit."""
        _current_thing.set(self.thing_name)
        handler = logging.FileHandler(self.layout.core_log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
        handler.addFilter(_ThisCore(self.thing_name, self.log.name))
        handler.setLevel(logging.INFO)
        parent = logging.getLogger("fanwatch.core")
        if parent.getEffectiveLevel() > logging.INFO:
            parent.setLevel(logging.INFO)
        parent.addHandler(handler)
        self._log_handler = handler

    async def start(self) -> None:
        """Create the root folder, serve IPC, and bring back what the last deployment left running."""
        self._stopping = False
        self.layout.create()
        self._open_core_log()
        saved = self._load_saved()
        self._config.set_tree(NUCLEUS, saved.get("nucleus") or nucleus_defaults(self.region))
        self._ipc = IPCServer(self, self.layout.ipc_socket)
        await self._ipc.start()
        self._control = ControlServer(self, self.layout.control_socket)
        await self._control.start()
        self._write_state_file()
        self.log.info(
            "core %s started in %s (IPC socket %s)", self.thing_name, self.layout.root, self._ipc.socket_path
        )
        if saved.get("components"):
            await self._restore(saved)

    async def stop(self) -> None:
        """Stop every component (dependers first), save the configuration, stop serving IPC."""
        self._stopping = True  # a deployment waiting for its components gives up
        self._changed.set()
        if self._control is not None:
            await self._control.close()
            self._control = None
        async with self._deploying:
            if self._running:
                self._save()
            for name in reversed(list(self._running)):
                await self._running[name].service.stop()
            if self._ipc is not None:
                await self._ipc.close()
                self._ipc = None
        with contextlib.suppress(FileNotFoundError):
            self.layout.state_file.unlink()
        self.log.info("core %s stopped", self.thing_name)
        if self._log_handler is not None:
            logging.getLogger("fanwatch.core").removeHandler(self._log_handler)
            self._log_handler.close()

    def _write_state_file(self) -> None:
        assert self._ipc is not None and self._control is not None
        state = {
            "thing": self.thing_name,
            "pid": os.getpid(),
            "root": str(self.layout.root),
            "ipcSocket": str(self._ipc.socket_path),
            "controlSocket": str(self._control.socket_path),
        }
        self.layout.state_file.write_text(json.dumps(state, indent=2))

    # -- deployments ---------------------------------------------------------------------------------------

    async def deploy(self, document: object) -> DeploymentResult:
        """Apply a deployment (a :class:`DeploymentDocument` or its JSON form) and wait until it
        succeeded, failed or rolled back."""
        async with self._deploying:
            if not isinstance(document, DeploymentDocument):
                try:
                    document = DeploymentDocument.parse(document)
                except DeploymentError as exc:
                    return self._finish(DeploymentResult("unknown", "FAILED_NO_STATE_CHANGE", str(exc)))
            _current_thing.set(self.thing_name)  # the components it starts log into this core's log
            self.log.info("deployment %s: %s", document.deployment_id, json.dumps(document.to_dict()))
            try:
                # the build folders as they are now: a rebuild wins, as a local deployment's copy does
                self.store.refresh()
                plan = self._plan(document)
                launches = self._launches(plan)
            except (DeploymentError, RecipeError, OSError) as exc:
                return self._finish(
                    DeploymentResult(document.deployment_id, "FAILED_NO_STATE_CHANGE", str(exc))
                )
            previous = self._snapshot()
            problem = await self._apply(plan, launches)
            if problem is None:
                self._document = document
                self._save()
                return self._finish(
                    DeploymentResult(document.deployment_id, "SUCCESSFUL", states=self._states())
                )
            self.log.error("deployment %s failed: %s", document.deployment_id, problem)
            if document.failure_handling == "DO_NOTHING":
                status = "FAILED_ROLLBACK_NOT_REQUESTED"
                return self._finish(DeploymentResult(document.deployment_id, status, problem, self._states()))
            self.log.info("deployment %s: rolling back", document.deployment_id)
            rollback_problem = await self._apply(previous, self._launches(previous))
            if rollback_problem is None:
                self._save()
                status = "FAILED_ROLLBACK_COMPLETE"
            else:
                status = "FAILED_UNABLE_TO_ROLLBACK"
                problem = f"{problem}; rollback: {rollback_problem}"
            return self._finish(DeploymentResult(document.deployment_id, status, problem, self._states()))

    def _finish(self, result: DeploymentResult) -> DeploymentResult:
        self.last_result = result
        self.log.info("deployment %s: %s %s", result.deployment_id, result.status, result.detail)
        return result

    def _states(self) -> dict[str, str]:
        return {name: running.service.state.value for name, running in self._running.items()}

    def _plan(self, document: DeploymentDocument) -> Plan:
        configurations = {name: self._configuration(name) for name in [*self._running, NUCLEUS]}
        plan = plan_deployment(
            document,
            self.store,
            running={name: r.planned.stored for name, r in self._running.items()},
            configurations=configurations,
            platform=self.platform,
            nucleus_version=NUCLEUS_VERSION,
            nucleus_defaults=nucleus_defaults(self.region),
        )
        if not plan.nucleus_configuration.get("interpolateComponentConfiguration"):
            return plan
        # the nucleus puts system values ({iot:thingName}, paths) into configurations when asked to
        interpolator = self._interpolator(plan)
        components = {
            name: PlannedComponent(
                p.stored,
                p.manifest,
                interpolator.interpolate(p.configuration, name, set(p.dependencies), system_only=True),
                p.root,
            )
            for name, p in plan.components.items()
        }
        return Plan(plan.document, components, plan.nucleus_configuration)

    def _snapshot(self) -> Plan:
        """What runs now, with the configurations it has now: the plan a rollback applies."""
        components = {
            name: PlannedComponent(
                r.planned.stored, r.planned.manifest, self._configuration(name), r.planned.root
            )
            for name, r in self._running.items()
        }
        document = self._document or DeploymentDocument("initial", {})
        return Plan(document, components, self._config.get(NUCLEUS))

    def _interpolator(self, plan: Plan, problems: dict[str, list[str]] | None = None) -> Interpolator:
        def report(component: str, problem: str) -> None:
            self.log.error("%s: recipe variable not resolved: %s", component, problem)
            if problems is not None:
                problems.setdefault(component, []).append(problem)

        return Interpolator(
            layout=self.layout,
            thing_name=self.thing_name,
            versions={name: p.version for name, p in plan.components.items()},
            configurations={name: p.configuration for name, p in plan.components.items()},
            report=report,
        )

    def _launches(self, plan: Plan) -> dict[str, ServiceSpec]:
        """Every component's interpolated lifecycle and environment; DeploymentError if one is invalid."""
        problems: dict[str, list[str]] = {}
        interpolator = self._interpolator(plan, problems)
        specs: dict[str, ServiceSpec] = {}
        for name, planned in plan.components.items():
            raw = interpolator.interpolate(dict(planned.manifest.lifecycle), name, set(planned.dependencies))
            try:
                lifecycle = Lifecycle.from_mapping(raw, f"{name} {planned.version} Lifecycle")
            except RecipeError as exc:
                raise DeploymentError(str(exc)) from None
            specs[name] = ServiceSpec(
                name=name,
                version=planned.version,
                lifecycle=lifecycle,
                env=self._environment(name),
                work_dir=self.layout.work_path(name),
                log_path=self.layout.log_path(name),
                hard_dependencies=frozenset(d for d, kind in planned.dependencies.items() if kind == "HARD"),
                unresolved=tuple(problems.get(name, ())),
            )
        return specs

    def _environment(self, component: str) -> dict[str, str]:
        token = next((t for t, c in self._tokens.items() if c == component), None)
        if token is None:
            token = secrets.token_urlsafe(32)
            self._tokens[token] = component
        socket_path = str(self.layout.ipc_socket)
        return {
            "SVCUID": token,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": token,
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH": socket_path,
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": socket_path,
            "AWS_IOT_THING_NAME": self.thing_name,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "GG_ROOT_CA_PATH": "",
        }

    @staticmethod
    def _launch_key(planned: PlannedComponent, spec: ServiceSpec) -> str:
        data = [
            planned.version,
            planned.stored.fingerprint,
            repr(spec.lifecycle),
            sorted(spec.hard_dependencies),
        ]
        return hashlib.sha256(json.dumps(data, default=str).encode()).hexdigest()

    async def _apply(self, plan: Plan, launches: Mapping[str, ServiceSpec]) -> str | None:
        """Make the running set match ``plan``; the problem that made it fail, or None."""
        keys = {name: self._launch_key(plan.components[name], spec) for name, spec in launches.items()}
        for name in reversed(list(self._running)):
            current = self._running[name]
            keep = name in plan.components and keys[name] == current.launch_key
            if keep and current.service.state is not ComponentState.BROKEN:
                continue
            why = "changed" if name in plan.components else "removed"
            self.log.info("%s %s: stopping (%s)", name, current.planned.version, why)
            await current.service.stop()
            del self._running[name]
            if name not in plan.components:
                self._config.remove_component(name)
                self._tokens = {t: c for t, c in self._tokens.items() if c != name}
        self._config.set_tree(NUCLEUS, plan.nucleus_configuration)
        for name, planned in plan.components.items():
            self._config.set_tree(name, planned.configuration)
            running = self._running.get(name)
            if running is not None:
                self._running[name] = _Running(planned, running.service, running.launch_key)
                continue
            try:
                self._install(planned)
            except (ArtifactError, OSError) as exc:
                return f"{name} {planned.version}: {exc}"
            service = Service(
                launches[name], on_state=self._on_state, dependencies_ready=self._dependencies_ready
            )
            self._running[name] = _Running(planned, service, keys[name])
            self.log.info("%s %s: starting", name, planned.version)
            service.start()
        self._running = {name: self._running[name] for name in plan.components if name in self._running}
        return await self._wait_settled()

    def _install(self, planned: PlannedComponent) -> None:
        """Artifacts and the recipe into the core's own store, unless this exact build is already there."""
        stored = planned.stored
        key = f"{stored.name}@{stored.version}"
        if self._installed.get(key) != stored.fingerprint:
            install_artifacts(
                stored.name, stored.version, planned.manifest.artifacts, stored.artifacts, self.layout
            )
            recipe_file = self.layout.recipes / f"{stored.name}-{stored.version}.yaml"
            recipe_file.write_text(yaml.safe_dump(dict(stored.document), sort_keys=False))
            self._installed[key] = stored.fingerprint

    async def _wait_settled(self) -> str | None:
        if not self._running:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deployment_timeout
        stable_since: float | None = None
        while True:
            if self._stopping:
                return "the core is stopping"
            broken = [n for n, r in self._running.items() if r.service.state is ComponentState.BROKEN]
            if broken:
                reasons = "; ".join(f"{n}: {self._running[n].service.status_reason}" for n in broken)
                return f"BROKEN after deployment: {reasons} (see logs/<component>.log)"
            now = loop.time()
            if all(r.service.state in HEALTHY for r in self._running.values()):
                stable_since = now if stable_since is None else stable_since
                if now - stable_since >= self.stable_seconds:
                    return None
                wait = stable_since + self.stable_seconds - now
            else:
                stable_since = None
                wait = deadline - now
            if now >= deadline:
                waiting = {
                    n: r.service.state.value
                    for n, r in self._running.items()
                    if r.service.state not in HEALTHY
                }
                return f"timed out after {self.deployment_timeout:g} s waiting for {waiting}"
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(wait, deadline - now))

    def _on_state(self, service: Service, state: ComponentState) -> None:
        level = logging.WARNING if state in {ComponentState.ERRORED, ComponentState.BROKEN} else logging.INFO
        reason = f" ({service.status_reason})" if service.status_reason else ""
        self.log.log(level, "%s: %s%s", service.name, state.value, reason)
        self._changed.set()
        for running in self._running.values():
            if running.service is not service:
                running.service.poke()

    def _dependencies_ready(self, service: Service) -> bool:
        for dependency in service.spec.hard_dependencies:
            running = self._running.get(dependency)
            if running is None or running.service.state not in HEALTHY:
                return False
        return True

    # -- persistence ----------------------------------------------------------------------------------------

    def _save(self) -> None:
        saved = {
            "document": None if self._document is None else self._document.to_dict(),
            "components": {
                name: {
                    "version": r.planned.version,
                    "root": r.planned.root,
                    "configuration": self._configuration(name),
                }
                for name, r in self._running.items()
            },
            "nucleus": self._config.get(NUCLEUS),
            "installed": self._installed,
        }
        temporary = self.layout.deployment_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(saved, indent=2, default=str))
        temporary.chmod(0o600)
        temporary.replace(self.layout.deployment_file)

    def _load_saved(self) -> dict[str, Any]:
        try:
            saved = json.loads(self.layout.deployment_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            self.log.error(
                "cannot read %s (%s): starting with no components", self.layout.deployment_file, exc
            )
            return {}
        return saved if isinstance(saved, dict) else {}

    async def _restore(self, saved: Mapping[str, Any]) -> None:
        """Start again what ran when the core stopped, with the configuration it had and the artifacts
        it installed: a build folder rebuilt meanwhile waits for the next deployment."""
        try:
            self.store.add_installed(self.layout.recipes, self.layout.artifacts)
            self._installed = {str(k): str(v) for k, v in (saved.get("installed") or {}).items()}
            components: dict[str, PlannedComponent] = {}
            for name, entry in saved["components"].items():
                stored = self.store.get_installed(name, entry["version"])
                components[name] = PlannedComponent(
                    stored,
                    stored.recipe.manifest_for(self.platform),
                    entry.get("configuration") or {},
                    entry.get("root", True),
                )
            if saved.get("document"):
                self._document = DeploymentDocument.parse(saved["document"])
            plan = Plan(
                self._document or DeploymentDocument("restored", {}), components, self._config.get(NUCLEUS)
            )
            launches = self._launches(plan)
        except (LookupError, RecipeError, DeploymentError, TypeError, ValueError) as exc:
            self.log.error("cannot restore the last deployment: %s", exc)
            return
        async with self._deploying:
            problem = await self._apply(plan, launches)
        self.log.log(
            logging.ERROR if problem else logging.INFO,
            "restored %d components%s",
            len(components),
            f": {problem}" if problem else "",
        )

    # -- status -----------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``fanwatch core status`` shows: states, effective configuration and accessControl, the
        keys a version change left behind, and what will not work as the recipe's author meant."""
        interpolates = bool(self._configuration(NUCLEUS).get("interpolateComponentConfiguration"))
        components = []
        for name, running in self._running.items():
            configuration = self._configuration(name)
            access = copy.deepcopy(configuration.get("accessControl", {}))
            defaults = running.planned.stored.recipe.default_configuration
            stale = [
                {
                    "pointer": pointer,
                    "value": value,
                    "removeWith": {"configurationUpdate": {"reset": [pointer]}},
                }
                for pointer, value in stale_keys(configuration, defaults)
            ]
            components.append(
                {
                    "name": name,
                    "version": running.planned.version,
                    "state": running.service.state.value,
                    "reason": running.service.status_reason,
                    "root": running.planned.root,
                    "configuration": configuration,
                    "accessControl": access,
                    "staleKeys": stale,
                    "problems": [*running.service.spec.unresolved, *_access_problems(access, interpolates)],
                    "log": str(self.layout.log_path(name)),
                }
            )
        return {
            "thing": self.thing_name,
            "root": str(self.layout.root),
            "nucleus": {"version": NUCLEUS_VERSION, "configuration": self._config.get(NUCLEUS)},
            "platform": self.platform,
            "deployment": None if self.last_result is None else self.last_result.to_dict(),
            "components": components,
            "store": [{"name": c.name, "version": c.version} for c in self.store],
        }

    def add_sources(self, folders: Sequence[Path]) -> None:
        """Index more gdk build folders (or re-read them after a rebuild)."""
        for folder in folders:
            self.store.add_build(folder)
