"""A component's lifecycle steps as processes: started, logged, timed out and stopped as the nucleus'
``ShellRunner`` does it, with no idea of the states they move the component through.

Every step runs under ``sh -c`` in the component's work folder, in its own process group, with the
core's environment, the component's (SVCUID, socket, thing, region) and the recipe's Setenv; its output
goes line by line into ``logs/<component>.log``. A step that must finish (Bootstrap, Install, Shutdown,
Recover, Startup) has a default timeout; stopping sends SIGTERM to each step's process group and
SIGKILL after 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

from fanwatch.core.deployment.recipe import Lifecycle, Step
from fanwatch.errors import FanwatchError

__all__ = [
    "DEFAULT_TIMEOUTS",
    "TERMINATE_GRACE_SECONDS",
    "ComponentLog",
    "StepFailedError",
    "StepRunner",
]

DEFAULT_TIMEOUTS: Final = {
    "bootstrap": 120.0,
    "install": 120.0,
    "startup": 120.0,
    "shutdown": 15.0,
    "recover": 60.0,
}
TERMINATE_GRACE_SECONDS: Final = 5.0

_SKIPIF: Final = re.compile(r"(exists|onpath) +(.+)")


class StepFailedError(FanwatchError):
    """A step could not start, had an invalid Skipif or timed out."""


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


class ComponentLog:
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


class StepRunner:
    """Runs one component version's lifecycle steps and remembers the process groups it started."""

    def __init__(
        self, lifecycle: Lifecycle, *, env: Mapping[str, str], work_dir: Path, log: ComponentLog
    ) -> None:
        self.lifecycle = lifecycle
        self._env = env
        self._work_dir = work_dir
        self._log = log
        self._groups: set[int] = set()  # process group ids of every step started
        self._readers: set[asyncio.Task[None]] = set()

    @property
    def has_processes(self) -> bool:
        """Whether a step it started may still run."""
        return bool(self._groups)

    def timeout(self, name: str, step: Step | None) -> float | None:
        """The step's own timeout, or the nucleus' default for that step (None: no limit)."""
        return step.timeout if step is not None and step.timeout else DEFAULT_TIMEOUTS.get(name)

    def _environment(self, step: Step) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self._env)
        env.update(self.lifecycle.setenv)
        env.update(step.setenv)
        return env

    def _skipped(self, name: str, step: Step) -> bool:
        if step.skipif is None:
            return False
        expression = step.skipif.strip()
        negate = expression.startswith("!")
        match = _SKIPIF.fullmatch(expression.lstrip("!").strip())
        if not match:
            raise StepFailedError(
                f"{name}: invalid Skipif {step.skipif!r} (use 'exists PATH' or 'onpath NAME')"
            )
        kind, argument = match.groups()
        if kind == "onpath":
            hit = shutil.which(argument.strip()) is not None
        else:
            hit = Path(argument.strip()).expanduser().exists()
        if hit != negate:
            self._log.write("lifecycle", f"{name} skipped ({step.skipif})")
            return True
        return False

    async def spawn(self, name: str, step: Step) -> asyncio.subprocess.Process | None:
        """Start a step; None when its Skipif says to skip it."""
        if self._skipped(name, step):
            return None
        if step.requires_privilege:
            self._log.write("lifecycle", f"{name} RequiresPrivilege: runs as this user here", "WARN")
        self._work_dir.mkdir(parents=True, exist_ok=True)
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
                cwd=self._work_dir,
                env=self._environment(step),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_write,
                stderr=err_write,
                start_new_session=True,  # its own process group, so stopping reaches its children
            )
        except OSError as exc:
            os.close(out_read)
            os.close(err_read)
            raise StepFailedError(f"{name} could not start: {exc}") from None
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

    async def run_to_end(self, name: str) -> int | None:
        """Run a step that must finish (install, shutdown, ...); its exit code, or None if absent."""
        step = self.lifecycle.steps.get(name)
        if step is None:
            return None
        process = await self.spawn(name, step)
        if process is None:
            return None
        timeout = self.timeout(name, step)
        try:
            code = await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            self._log.write("lifecycle", f"{name} timed out after {timeout:g} s", "ERROR")
            await self._signal_group(process.pid)
            raise StepFailedError(f"{name} timed out after {timeout:g} s") from None
        self._groups.discard(process.pid)
        self._log.write("lifecycle", f"{name} exited with {code}")
        return code

    async def run_quietly(self, name: str) -> None:
        """Run a best-effort step (Recover, Shutdown): a failure is logged, not acted on."""
        try:
            code = await self.run_to_end(name)
        except StepFailedError as exc:
            self._log.write("lifecycle", str(exc), "ERROR")
        else:
            if code not in (0, None):
                self._log.write("lifecycle", f"{name} exited with {code}", "WARN")

    async def terminate(self) -> None:
        """Stop every process group a step started."""
        groups, self._groups = list(self._groups), set()
        await asyncio.gather(*(self._signal_group(group) for group in groups))

    def close(self) -> None:
        """Stop copying output (after :meth:`terminate`)."""
        for reader in list(self._readers):
            reader.cancel()

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
