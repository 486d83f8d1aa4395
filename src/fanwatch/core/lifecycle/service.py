"""One component's lifecycle on a core: its processes, its states and its log.

It follows the nucleus' ``Lifecycle``/``GenericExternalService``: Bootstrap and Install run to the end
(default timeout 120 s) in state NEW; INSTALLED waits until every HARD dependency is RUNNING or
FINISHED; STARTING runs Startup (RUNNING once it exits 0, default timeout 120 s) or spawns Run
(RUNNING at once, FINISHED when it exits 0, optional timeout); a component without either is FINISHED.
Any failure is ERRORED, after which Recover runs and the component starts again from where it failed
(Install again, or Shutdown and a fresh start). Three consecutive errors from the same state make it
BROKEN (``MAXIMUM_CONTINUAL_ERROR``: the first attempt and two restarts); an error more than an hour
after the previous one starts the count again. A report of any other state while in a state clears
that state's count, which is why a component calling ``UpdateState(RUNNING)`` after each start never
goes BROKEN.
Stopping runs Shutdown (default timeout 15 s), then SIGTERM to each step's process group and SIGKILL
after 5 s. Every step runs under ``sh -c`` in the component's work folder, with the core's environment
and the recipe's Setenv; its output goes line by line into ``logs/<component>.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from fanwatch.core.deployment.recipe import Lifecycle, Step
from fanwatch.core.ports import ComponentState

__all__ = ["Service", "ServiceSpec"]

DEFAULT_TIMEOUTS: Final = {
    "bootstrap": 120.0,
    "install": 120.0,
    "startup": 120.0,
    "shutdown": 15.0,
    "recover": 60.0,
}
MAXIMUM_CONTINUAL_ERROR: Final = 3
ERROR_RESET_SECONDS: Final = 3600.0
TERMINATE_GRACE_SECONDS: Final = 5.0
#: exit codes with which a Bootstrap step asks for a nucleus (100) or device (101) restart
BOOTSTRAP_RESTART_CODES: Final = frozenset({100, 101})

_SKIPIF: Final = re.compile(r"^(exists|onpath) +(.+)$")
_COUNTED: Final = frozenset({ComponentState.NEW, ComponentState.STARTING, ComponentState.RUNNING})
_SETTLED: Final = frozenset({ComponentState.RUNNING, ComponentState.FINISHED, ComponentState.BROKEN})
#: what a component may report of itself with UpdateState, by its current state
_REPORTABLE: Final = {
    ComponentState.STARTING: (ComponentState.RUNNING, ComponentState.ERRORED),
    ComponentState.RUNNING: (ComponentState.RUNNING, ComponentState.ERRORED),
}


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


def _group_alive(group: int) -> bool:
    """Whether any process of the group still runs. Zombies do not count: an orphaned child waits to
    be reaped by PID 1, which in a container may take its time."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat_file in proc.glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            return True
    return False


class _Log:
    """The component's own log file, one line per event or line of output."""

    def __init__(self, path: Path, component: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._component = component
        self._file: IO[str] = path.open("a", encoding="utf-8", errors="replace")
        path.chmod(0o600)

    def write(self, source: str, message: str, level: str = "INFO") -> None:
        if self._file.closed:
            return
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._file.write(f"{stamp} [{level}] ({source}) {self._component}: {message}\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class _StepFailed(Exception):
    pass


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
        self._state = ComponentState.NEW
        self._errors: dict[ComponentState, list[float]] = {}
        self._log = _Log(spec.log_path, spec.name)
        self._groups: set[int] = set()  # process group ids of every step started
        self._readers: set[asyncio.Task[None]] = set()
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
        return self._state

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
        while self._state not in _SETTLED:
            await self._state_changed.wait()
        return self._state

    async def stop(self) -> None:
        """Shutdown, terminate the processes, and end in FINISHED (a BROKEN component stays BROKEN and,
        having been shut down when it broke, runs nothing more)."""
        task, broken = self._task, self._state is ComponentState.BROKEN
        driving = task is not None and not task.done()
        if task is not None and driving:
            if not broken:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # a BROKEN component is finishing its own shutdown: let it
        if self._groups or (driving and not broken and "shutdown" in self.spec.lifecycle.steps):
            if self._state is not ComponentState.BROKEN:
                self._set(ComponentState.STOPPING)
            await self._shutdown()
        if self._state is not ComponentState.BROKEN:
            self._set(ComponentState.FINISHED)
        for reader in list(self._readers):
            reader.cancel()
        self._log.close()

    # -- state changes ------------------------------------------------------------------------------

    def _set(self, new: ComponentState, reason: str = "") -> None:
        current = self._state
        if new is ComponentState.ERRORED and current in _COUNTED:
            now = time.monotonic()
            history = self._errors.setdefault(current, [])
            if history and now - history[-1] >= ERROR_RESET_SECONDS:
                history.clear()
            history.append(now)
            if len(history) >= MAXIMUM_CONTINUAL_ERROR:
                new = ComponentState.BROKEN
        else:
            self._errors.pop(current, None)
        if new is current:
            return
        self._state = new
        self.status_reason = reason
        self._log.write("lifecycle", f"{current} -> {new}" + (f" ({reason})" if reason else ""))
        changed, self._state_changed = self._state_changed, asyncio.Event()
        changed.set()
        self._on_state(self, new)

    # -- the driver -----------------------------------------------------------------------------------

    async def _drive(self) -> None:
        installed = False
        while self._state is not ComponentState.BROKEN:
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
            elif self._state is not ComponentState.BROKEN:
                await self._run_quietly("recover")
                self._set(ComponentState.STOPPING)
            await self._shutdown()
            if self._state is not ComponentState.BROKEN:
                self._set(ComponentState.INSTALLED)

    async def _install(self) -> bool:
        for step in ("bootstrap", "install"):
            try:
                code = await self._run_to_end(step)
            except _StepFailed as exc:
                self._set(ComponentState.ERRORED, str(exc))
                break
            if step == "bootstrap" and code in BOOTSTRAP_RESTART_CODES:
                self._log.write("lifecycle", f"bootstrap asks for a restart (exit {code}); going on")
            elif code not in (0, None):
                self._set(ComponentState.ERRORED, f"{step} exited with {code}")
                break
        else:
            return True
        if self._state is not ComponentState.BROKEN:
            await self._run_quietly("recover")
            self._set(ComponentState.NEW)
        return False

    async def _start_and_watch(self) -> bool:
        """Run Startup or Run and watch it until it errors (False) or must restart (True)."""
        steps = self.spec.lifecycle.steps
        name = "startup" if "startup" in steps else "run"
        step = steps.get(name)
        try:
            process = None if step is None else await self._spawn(name, step)
        except _StepFailed as exc:
            self._set(ComponentState.ERRORED, str(exc))
            return False
        if process is None:
            self._set(ComponentState.FINISHED)
        elif name == "run":
            self._set(ComponentState.RUNNING)
        timeout = step.timeout if step is not None and step.timeout else DEFAULT_TIMEOUTS.get(name)
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
                    if name == "run" or self._state is ComponentState.STARTING:
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
        if reported is not None and reported in _REPORTABLE.get(self._state, ()):
            self._set(reported, "reported by the component")
            if reported is ComponentState.ERRORED:
                return False
        active = self._state in {ComponentState.STARTING, ComponentState.RUNNING}
        if active and not self._dependencies_ready(self):
            return True
        return None

    async def _wait_poke(self) -> None:
        await self._poke.wait()
        self._poke.clear()

    # -- processes ------------------------------------------------------------------------------------

    def _environment(self, step: Step) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.spec.env)
        env.update(self.spec.lifecycle.setenv)
        env.update(step.setenv)
        return env

    def _skipped(self, name: str, step: Step) -> bool:
        if step.skipif is None:
            return False
        expression = step.skipif.strip()
        negate = expression.startswith("!")
        match = _SKIPIF.match(expression.lstrip("!").strip())
        if not match:
            raise _StepFailed(f"{name}: invalid Skipif {step.skipif!r} (use 'exists PATH' or 'onpath NAME')")
        kind, argument = match.groups()
        if kind == "onpath":
            hit = shutil.which(argument.strip()) is not None
        else:
            hit = Path(argument.strip()).expanduser().exists()
        if hit != negate:
            self._log.write("lifecycle", f"{name} skipped ({step.skipif})")
            return True
        return False

    async def _spawn(self, name: str, step: Step) -> asyncio.subprocess.Process | None:
        if self._skipped(name, step):
            return None
        if step.requires_privilege:
            self._log.write("lifecycle", f"{name} RequiresPrivilege: runs as this user here", "WARN")
        self.spec.work_dir.mkdir(parents=True, exist_ok=True)
        self._log.write("lifecycle", f"{name} starting: {step.script}")
        # Our own pipes rather than asyncio's: on Python 3.11 Process.wait() also waits for its pipes
        # to close, which never happens while a daemon started by a Startup step holds them.
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                step.script,
                cwd=self.spec.work_dir,
                env=self._environment(step),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_write,
                stderr=err_write,
                start_new_session=True,  # its own process group, so stopping reaches its children
            )
        except OSError as exc:
            os.close(out_read)
            os.close(err_read)
            raise _StepFailed(f"{name} could not start: {exc}") from None
        finally:
            os.close(out_write)
            os.close(err_write)
        self._groups.add(process.pid)
        for fd, label, level in ((out_read, "stdout", "INFO"), (err_read, "stderr", "WARN")):
            reader = asyncio.create_task(self._copy_output(fd, f"{name}.{label}", level))
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)
        return process

    async def _copy_output(self, fd: int, source: str, level: str) -> None:
        stream = asyncio.StreamReader()
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(fd, "rb", buffering=0)
        )
        pending = b""
        try:
            while chunk := await stream.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._log.write(source, line.decode("utf-8", "replace").rstrip("\r"), level)
                if len(pending) > 65536:  # a very long line: write what we have rather than hold it
                    self._log.write(source, pending.decode("utf-8", "replace"), level)
                    pending = b""
            if pending:
                self._log.write(source, pending.decode("utf-8", "replace"), level)
        finally:
            transport.close()

    async def _run_to_end(self, name: str) -> int | None:
        """Run a step that must finish (install, shutdown, ...); its exit code, or None if absent."""
        step = self.spec.lifecycle.steps.get(name)
        if step is None:
            return None
        process = await self._spawn(name, step)
        if process is None:
            return None
        timeout = step.timeout or DEFAULT_TIMEOUTS.get(name)
        try:
            code = await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            self._log.write("lifecycle", f"{name} timed out after {timeout:g} s", "ERROR")
            await self._signal_group(process.pid)
            raise _StepFailed(f"{name} timed out after {timeout:g} s") from None
        self._groups.discard(process.pid)
        self._log.write("lifecycle", f"{name} exited with {code}")
        return code

    async def _run_quietly(self, name: str) -> None:
        """Run a best-effort step (Recover): a failure is logged, not acted on."""
        try:
            code = await self._run_to_end(name)
        except _StepFailed as exc:
            self._log.write("lifecycle", str(exc), "ERROR")
        else:
            if code not in (0, None):
                self._log.write("lifecycle", f"{name} exited with {code}", "WARN")

    async def _shutdown(self) -> None:
        await self._run_quietly("shutdown")
        await self._terminate()

    async def _terminate(self) -> None:
        groups, self._groups = list(self._groups), set()
        await asyncio.gather(*(self._signal_group(group) for group in groups))

    async def _signal_group(self, group: int) -> None:
        """SIGTERM the step's process group, SIGKILL it after the grace period."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + TERMINATE_GRACE_SECONDS
        while time.monotonic() < deadline:
            if not _group_alive(group):
                return
            await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        self._log.write("lifecycle", f"process group {group} ignored SIGTERM; killed", "WARN")
