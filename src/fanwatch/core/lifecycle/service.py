"""One component's lifecycle on a core: the nucleus' ``Lifecycle`` driving its steps.

It follows the nucleus' ``Lifecycle``/``GenericExternalService``: Bootstrap and Install run to the end
in state NEW; INSTALLED waits until every HARD dependency is RUNNING or FINISHED; STARTING runs Startup
(RUNNING once it exits 0) or spawns Run (RUNNING at once, FINISHED when it exits 0, optional timeout);
a component without either is FINISHED. Any failure is ERRORED, after which Recover runs and the
component starts again from where it failed (Install again, or Shutdown and a fresh start), until the
:class:`~fanwatch.core.lifecycle.states.StateMachine` says BROKEN. Stopping runs Shutdown, then
terminates what is left. The steps' processes are :class:`~fanwatch.core.lifecycle.process.StepRunner`'s
business; this module only decides what runs next.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fanwatch.core.deployment.recipe import Lifecycle
from fanwatch.core.lifecycle.process import ComponentLog, StepFailedError, StepRunner
from fanwatch.core.lifecycle.states import SETTLED, StateMachine
from fanwatch.core.ports import ComponentState

__all__ = ["BOOTSTRAP_RESTART_CODES", "Service", "ServiceSpec"]

#: exit codes with which a Bootstrap step asks for a nucleus (100) or device (101) restart
BOOTSTRAP_RESTART_CODES: Final = frozenset({100, 101})


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """Everything needed to run one component version (its lifecycle already interpolated)."""

    name: str
    version: str
    lifecycle: Lifecycle
    env: Mapping[str, str]  # the nucleus' environment for this component (SVCUID, socket, thing, region)
    work_dir: Path
    log_path: Path
    hard_dependencies: frozenset[str] = field(default_factory=frozenset)
    unresolved: tuple[str, ...] = ()  # recipe variables its lifecycle kept as written, and why


class Service:
    """A component's lifecycle, driven by one asyncio task on the core's event loop."""

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        on_state: Callable[[Service, ComponentState], None],
        dependencies_ready: Callable[[Service], bool],
    ) -> None:
        self.spec = spec
        self._on_state = on_state
        self._dependencies_ready = dependencies_ready
        self._machine = StateMachine()
        self._log = ComponentLog(spec.log_path, spec.name)
        self._steps = StepRunner(spec.lifecycle, env=spec.env, work_dir=spec.work_dir, log=self._log)
        self._poke = asyncio.Event()
        self._reported: ComponentState | None = None
        self._state_changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.status_reason = ""

    # -- what the core sees -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> ComponentState:
        return self._machine.state

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._drive(), name=f"lifecycle {self.name}")

    def poke(self) -> None:
        """Something changed (a dependency's state); look again. Safe from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._poke.set)

    def report(self, state: ComponentState) -> None:
        """The component's own ``UpdateState`` call; safe from any thread."""
        self._reported = state
        self.poke()

    async def wait_settled(self) -> ComponentState:
        """Until the component is RUNNING, FINISHED or BROKEN (what a deployment waits for)."""
        while self.state not in SETTLED:
            await self._state_changed.wait()
        return self.state

    async def stop(self) -> None:
        """Shutdown, terminate the processes, and end in FINISHED (a BROKEN component stays BROKEN and,
        having been shut down when it broke, runs nothing more)."""
        task, broken = self._task, self.state is ComponentState.BROKEN
        driving = task is not None and not task.done()
        if task is not None and driving:
            if not broken:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # a BROKEN component is finishing its own shutdown: let it
        if self._steps.has_processes or (driving and not broken and "shutdown" in self.spec.lifecycle.steps):
            if self.state is not ComponentState.BROKEN:
                self._set(ComponentState.STOPPING)
            await self._shutdown()
        if self.state is not ComponentState.BROKEN:
            self._set(ComponentState.FINISHED)
        self._steps.close()
        self._log.close()

    # -- state changes ------------------------------------------------------------------------------

    def _set(self, new: ComponentState, reason: str = "") -> None:
        current = self.state
        entered = self._machine.enter(new)
        if entered is None:
            return
        self.status_reason = reason
        self._log.write("lifecycle", f"{current} -> {entered}" + (f" ({reason})" if reason else ""))
        changed, self._state_changed = self._state_changed, asyncio.Event()
        changed.set()
        self._on_state(self, entered)

    # -- the driver -----------------------------------------------------------------------------------

    async def _drive(self) -> None:
        installed = False
        while self.state is not ComponentState.BROKEN:
            if not installed:
                installed = await self._install()
                if not installed:
                    continue
                self._set(ComponentState.INSTALLED)
            while not self._dependencies_ready(self):
                await self._wait_poke()
            self._set(ComponentState.STARTING)
            restart = await self._start_and_watch()
            if restart:
                self._set(ComponentState.STOPPING, "a HARD dependency is not running")
            elif self.state is not ComponentState.BROKEN:
                await self._steps.run_quietly("recover")
                self._set(ComponentState.STOPPING)
            await self._shutdown()
            if self.state is not ComponentState.BROKEN:
                self._set(ComponentState.INSTALLED)

    async def _install(self) -> bool:
        for step in ("bootstrap", "install"):
            try:
                code = await self._steps.run_to_end(step)
            except StepFailedError as exc:
                self._set(ComponentState.ERRORED, str(exc))
                break
            if step == "bootstrap" and code in BOOTSTRAP_RESTART_CODES:
                self._log.write("lifecycle", f"bootstrap asks for a restart (exit {code}); going on")
            elif code not in (0, None):
                self._set(ComponentState.ERRORED, f"{step} exited with {code}")
                break
        else:
            return True
        if self.state is not ComponentState.BROKEN:
            await self._steps.run_quietly("recover")
            self._set(ComponentState.NEW)
        return False

    async def _start_and_watch(self) -> bool:
        """Run Startup or Run and watch it until it errors (False) or must restart (True)."""
        steps = self.spec.lifecycle.steps
        name = "startup" if "startup" in steps else "run"
        step = steps.get(name)
        try:
            process = None if step is None else await self._steps.spawn(name, step)
        except StepFailedError as exc:
            self._set(ComponentState.ERRORED, str(exc))
            return False
        if process is None:
            self._set(ComponentState.FINISHED)
        elif name == "run":
            self._set(ComponentState.RUNNING)
        timeout = self._steps.timeout(name, step)
        loop = asyncio.get_running_loop()
        deadline = None if process is None or timeout is None else loop.time() + timeout
        exited = None if process is None else asyncio.create_task(process.wait())
        try:
            while True:
                outcome = self._take_report()
                if outcome is not None:
                    return outcome
                if exited is not None and exited.done():
                    code, exited, deadline = exited.result(), None, None
                    self._log.write("lifecycle", f"{name} exited with {code}")
                    if code != 0:
                        self._set(ComponentState.ERRORED, f"{name} exit code {code}")
                        return False
                    self._set(ComponentState.RUNNING if name == "startup" else ComponentState.FINISHED)
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    if name == "run" or self.state is ComponentState.STARTING:
                        self._set(ComponentState.ERRORED, f"{name} timed out after {timeout:g} s")
                        return False
                    deadline = remaining = None
                poke = asyncio.ensure_future(self._poke.wait())
                waits: set[asyncio.Future[Any]] = {poke} if exited is None else {poke, exited}
                await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                poke.cancel()
                self._poke.clear()
        finally:
            if exited is not None:
                exited.cancel()

    def _take_report(self) -> bool | None:
        """Act on an ``UpdateState`` call or a dependency change: True to restart, False when ERRORED."""
        reported, self._reported = self._reported, None
        if reported is not None and self._machine.accepts_report(reported):
            self._set(reported, "reported by the component")
            if reported is ComponentState.ERRORED:
                return False
        active = self.state in {ComponentState.STARTING, ComponentState.RUNNING}
        if active and not self._dependencies_ready(self):
            return True
        return None

    async def _wait_poke(self) -> None:
        await self._poke.wait()
        self._poke.clear()

    async def _shutdown(self) -> None:
        await self._steps.run_quietly("shutdown")
        await self._steps.terminate()
