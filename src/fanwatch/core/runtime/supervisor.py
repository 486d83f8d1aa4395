"""The components running on one core: started, stopped and restarted to match a plan, and watched
until they settle.

Applying a plan stops (dependers first) every component that the plan removes or whose launch
changed (version, build, interpolated lifecycle, HARD dependencies), writes every configuration
(a configuration-only change reaches subscribers without a restart), installs and starts what is new,
then waits. Like the nucleus, a plan has worked once every component is RUNNING or FINISHED; the
nucleus polls for that once a second, so a component that crashes within a second of starting fails
its deployment. The supervisor makes that window explicit (``stable_seconds``) rather than leave it to
timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from fanwatch.core.config import ConfigStore
from fanwatch.core.deployment.artifacts import ArtifactError, check_artifacts, install_artifacts
from fanwatch.core.deployment.document import DeploymentDocument, DeploymentError
from fanwatch.core.deployment.interpolation import Interpolator
from fanwatch.core.deployment.plan import Plan, PlannedComponent
from fanwatch.core.deployment.recipe import DependencyType, Lifecycle, RecipeError
from fanwatch.core.layout import CoreLayout
from fanwatch.core.lifecycle.service import Service, ServiceSpec
from fanwatch.core.lifecycle.states import HEALTHY
from fanwatch.core.ports import ComponentState
from fanwatch.core.runtime.nucleus import component_environment
from fanwatch.limits import NUCLEUS_COMPONENT

__all__ = ["RunningComponent", "Supervisor"]


@dataclass(slots=True)
class RunningComponent:
    """A component deployed on this core."""

    planned: PlannedComponent
    service: Service
    launch_key: str  # what its processes were started with; a change means a restart


class Supervisor:
    """Runs a core's components; ``running`` is in start order (dependencies first)."""

    def __init__(
        self,
        *,
        thing_name: str,
        region: str,
        layout: CoreLayout,
        config: ConfigStore,
        log: logging.Logger,
        stable_seconds: float,
        deployment_timeout: float,
    ) -> None:
        self._thing_name = thing_name
        self._region = region
        self._layout = layout
        self._config = config
        self._log = log
        self.stable_seconds = stable_seconds
        self.deployment_timeout = deployment_timeout
        self.running: dict[str, RunningComponent] = {}
        self.installed: dict[str, str] = {}  # "name@version" -> fingerprint of the artifacts installed
        self._tokens: dict[str, str] = {}  # SVCUID -> component
        self._changed = asyncio.Event()
        self._stopping = False

    # -- what the IPC server asks ---------------------------------------------------------------------

    def component_for_token(self, token: str) -> str | None:
        component = self._tokens.get(token)
        return component if component in self.running else None

    def token_for(self, component: str) -> str:
        """The component's SVCUID, issued on first use and kept while it stays deployed."""
        token = next((t for t, c in self._tokens.items() if c == component), None)
        if token is None:
            token = secrets.token_urlsafe(32)
            self._tokens[token] = component
        return token

    def report_state(self, component: str, state: ComponentState) -> None:
        running = self.running.get(component)
        if running is None:
            raise KeyError(component)
        running.service.report(state)

    def configuration(self, name: str) -> dict[str, Any]:
        """A component's effective configuration (empty when it has none)."""
        try:
            value = self._config.get(name)
        except KeyError:
            return {}
        return value if isinstance(value, dict) else {}

    def states(self) -> dict[str, str]:
        return {name: running.service.state.value for name, running in self.running.items()}

    # -- plans ----------------------------------------------------------------------------------------

    def interpolator(self, plan: Plan, problems: dict[str, list[str]] | None = None) -> Interpolator:
        """Recipe variables for ``plan``'s components; what cannot be resolved is logged (and kept in
        ``problems``)."""

        def report(component: str, problem: str) -> None:
            self._log.error("%s: recipe variable not resolved: %s", component, problem)
            if problems is not None:
                problems.setdefault(component, []).append(problem)

        return Interpolator(
            layout=self._layout,
            thing_name=self._thing_name,
            versions={name: p.version for name, p in plan.components.items()},
            configurations={name: p.configuration for name, p in plan.components.items()},
            report=report,
        )

    def launches(self, plan: Plan) -> dict[str, ServiceSpec]:
        """Every component's interpolated lifecycle and environment; DeploymentError if one is invalid."""
        problems: dict[str, list[str]] = {}
        interpolator = self.interpolator(plan, problems)
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
                env=component_environment(
                    token=self.token_for(name),
                    ipc_socket=self._layout.ipc_socket,
                    thing_name=self._thing_name,
                    region=self._region,
                ),
                work_dir=self._layout.work_path(name),
                log_path=self._layout.log_path(name),
                hard_dependencies=frozenset(
                    d for d, kind in planned.dependencies.items() if kind == DependencyType.HARD
                ),
                unresolved=tuple(problems.get(name, ())),
            )
        return specs

    def snapshot(self, document: DeploymentDocument | None) -> Plan:
        """What runs now, with the configurations it has now: the plan a rollback applies."""
        components = {
            name: PlannedComponent(
                r.planned.stored, r.planned.manifest, self.configuration(name), r.planned.root
            )
            for name, r in self.running.items()
        }
        return Plan(
            document or DeploymentDocument("initial", {}), components, self._config.get(NUCLEUS_COMPONENT)
        )

    @staticmethod
    def _launch_key(planned: PlannedComponent, spec: ServiceSpec) -> str:
        data = [
            planned.version,
            planned.stored.fingerprint,
            repr(spec.lifecycle),
            sorted(spec.hard_dependencies),
        ]
        return hashlib.sha256(json.dumps(data, default=str).encode()).hexdigest()

    async def apply(self, plan: Plan, launches: Mapping[str, ServiceSpec]) -> str | None:
        """Make the running set match ``plan``; the problem that made it fail, or None."""
        keys = {name: self._launch_key(plan.components[name], spec) for name, spec in launches.items()}
        for name in reversed(list(self.running)):
            current = self.running[name]
            keep = name in plan.components and keys[name] == current.launch_key
            if keep and current.service.state is not ComponentState.BROKEN:
                continue
            why = "changed" if name in plan.components else "removed"
            self._log.info("%s %s: stopping (%s)", name, current.planned.version, why)
            await current.service.stop()
            del self.running[name]
            if name not in plan.components:
                self._config.remove_component(name)
                self._tokens = {t: c for t, c in self._tokens.items() if c != name}
        self._config.set_tree(NUCLEUS_COMPONENT, plan.nucleus_configuration)
        for name, planned in plan.components.items():
            self._config.set_tree(name, planned.configuration)
            running = self.running.get(name)
            if running is not None:
                self.running[name] = RunningComponent(planned, running.service, running.launch_key)
                continue
            try:
                self._install(planned)
            except (ArtifactError, OSError) as exc:
                return f"{name} {planned.version}: {exc}"
            service = Service(
                launches[name], on_state=self._on_state, dependencies_ready=self._dependencies_ready
            )
            self.running[name] = RunningComponent(planned, service, keys[name])
            self._log.info("%s %s: starting", name, planned.version)
            service.start()
        self.running = {name: self.running[name] for name in plan.components if name in self.running}
        return await self._wait_settled()

    def check_install(self, planned: PlannedComponent) -> None:
        """What installing ``planned`` would refuse (ArtifactError), found before anything changes."""
        stored = planned.stored
        if self.installed.get(f"{stored.name}@{stored.version}") != stored.fingerprint:
            check_artifacts(
                stored.name, stored.version, planned.manifest.artifacts, stored.artifacts, self._layout
            )

    def _install(self, planned: PlannedComponent) -> None:
        """Artifacts and the recipe into the core's own store, unless this exact build is already there."""
        stored = planned.stored
        key = f"{stored.name}@{stored.version}"
        if self.installed.get(key) != stored.fingerprint:
            install_artifacts(
                stored.name, stored.version, planned.manifest.artifacts, stored.artifacts, self._layout
            )
            recipe_file = self._layout.recipes / f"{stored.name}-{stored.version}.yaml"
            recipe_file.write_text(yaml.safe_dump(dict(stored.document), sort_keys=False))
            self.installed[key] = stored.fingerprint

    async def _wait_settled(self) -> str | None:
        if not self.running:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deployment_timeout
        stable_since: float | None = None
        while True:
            if self._stopping:
                return "the core is stopping"
            broken = [n for n, r in self.running.items() if r.service.state is ComponentState.BROKEN]
            if broken:
                reasons = "; ".join(f"{n}: {self.running[n].service.status_reason}" for n in broken)
                return f"BROKEN after deployment: {reasons} (see logs/<component>.log)"
            now = loop.time()
            if all(r.service.state in HEALTHY for r in self.running.values()):
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
                    for n, r in self.running.items()
                    if r.service.state not in HEALTHY
                }
                return f"timed out after {self.deployment_timeout:g} s waiting for {waiting}"
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(wait, deadline - now))

    def _on_state(self, service: Service, state: ComponentState) -> None:
        level = logging.WARNING if state in {ComponentState.ERRORED, ComponentState.BROKEN} else logging.INFO
        reason = f" ({service.status_reason})" if service.status_reason else ""
        self._log.log(level, "%s: %s%s", service.name, state.value, reason)
        self._changed.set()
        for running in self.running.values():
            if running.service is not service:
                running.service.poke()

    def _dependencies_ready(self, service: Service) -> bool:
        for dependency in service.spec.hard_dependencies:
            running = self.running.get(dependency)
            if running is None or running.service.state not in HEALTHY:
                return False
        return True

    # -- stopping -------------------------------------------------------------------------------------

    def resume(self) -> None:
        """The core (re)starts: plans may be applied again."""
        self._stopping = False

    def stopping(self) -> None:
        """The core is stopping: a plan waiting for its components gives up."""
        self._stopping = True
        self._changed.set()

    async def stop_all(self) -> None:
        """Stop every component, dependers first."""
        for name in reversed(list(self.running)):
            await self.running[name].service.stop()
