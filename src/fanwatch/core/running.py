"""Finding the cores that ``fanwatch core run`` started under a root folder, waiting for them, stopping them.

``fanwatch core run ... &`` returns at once, and the next command (``deploy``, ``status``) often runs
before the cores are up: so those wait for them, up to a timeout. ``core run`` writes
``<root>/cores.json`` (its pid and things) once every core is up and removes it when it stops; cores
started another way (``Fleet`` in Python) are found by their own state files.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from fanwatch.core.control import ControlError, request
from fanwatch.core.layout import CoreLayout

__all__ = ["RUNNING_FILE", "clear_running", "find_cores", "stop_cores", "write_running"]

#: Written by ``fanwatch core run`` under its root once every core has started.
RUNNING_FILE: Final = "cores.json"
#: Seconds between looks while waiting.
POLL_S: Final = 0.5


def write_running(root: Path, things: Sequence[str]) -> None:
    """Announce, once every core is up, what ``fanwatch core run`` runs under ``root`` (its pid and the
    things), so ``deploy``, ``status`` and ``stop`` know which cores to wait for and which process to stop."""
    (root / RUNNING_FILE).write_text(json.dumps({"pid": os.getpid(), "things": list(things)}) + "\n")


def clear_running(root: Path) -> None:
    """Withdraw that announcement when ``fanwatch core run`` stops."""
    (root / RUNNING_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, gone but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _runs_fanwatch(pid: int) -> bool:
    """Whether ``pid`` is still a fanwatch process (not a pid the system has given to another)."""
    try:
        return b"fanwatch" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc (macOS): trust the pid
    except OSError:
        return False


def _announced(root: Path) -> tuple[int, list[str]] | None:
    """(pid, things) of a ``core run`` under ``root`` that is still alive, if any."""
    try:
        running = json.loads((root / RUNNING_FILE).read_text())
        pid, things = int(running["pid"]), [str(t) for t in running["things"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (pid, things) if _alive(pid) else None


def _state(folder: Path) -> dict[str, object] | None:
    try:
        state = json.loads(CoreLayout(folder).state_file.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _answering(control: Path) -> bool:
    try:
        request(control, {"op": "index", "buildDirs": []}, timeout=5)
    except ControlError:
        return False
    return True


def _look(root: Path, things: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    """(thing -> control socket of each core that answers, things still missing)."""
    announced = _announced(root)
    wanted = list(things) or (announced[1] if announced else [])
    folders = [root / t for t in wanted] or sorted(p for p in [root, *root.glob("*")] if p.is_dir())
    found: dict[str, Path] = {}
    missing: list[str] = []
    for folder in folders:
        state = _state(folder)
        control = Path(str(state["controlSocket"])) if state else None
        if control is not None and _answering(control):
            found[str(state["thing"]) if state else folder.name] = control
        elif wanted:
            missing.append(folder.name)
    return found, missing


def find_cores(
    root: Path,
    things: Sequence[str] = (),
    *,
    wait: float = 0.0,
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Path]:
    """thing -> control socket of the running cores under ``root`` (``things``, or every one), waiting
    up to ``wait`` seconds for them to come up; ``say`` hears one line when it starts waiting."""
    deadline = time.monotonic() + wait
    told = False
    while True:
        found, missing = _look(root, things)
        if found and not missing:
            return found
        if time.monotonic() >= deadline:
            break
        if not told:
            say(f"waiting up to {wait:.0f} s for the cores under {root} to start ...")
            told = True
        time.sleep(POLL_S)
    start = f"start them with 'fanwatch core run --root {root} --thing NAME ...'"
    if missing:
        raise ControlError(
            f"no core answers for {', '.join(missing)} under {root} after {wait:.0f} s: {start}"
        )
    raise ControlError(f"no running core under {root} after {wait:.0f} s: {start}")


def stop_cores(root: Path, *, timeout: float = 60.0, say: Callable[[str], None] = print) -> int:
    """SIGTERM the ``fanwatch core run`` processes of the cores under ``root``; wait until they are gone.

    Returns how many processes were stopped.
    """
    pids: set[int] = set()
    for folder in [root, *root.glob("*")]:
        state = _state(folder) or {}
        if isinstance(state.get("pid"), int):
            pids.add(int(str(state["pid"])))
    if (announced := _announced(root)) is not None:
        pids.add(announced[0])
    pids = {pid for pid in pids if _alive(pid) and _runs_fanwatch(pid) and pid != os.getpid()}
    if not pids:
        raise ControlError(f"no running core under {root}")
    for pid in sorted(pids):
        say(f"stopping the cores of process {pid} (SIGTERM)")
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            raise ControlError(f"process {', '.join(map(str, pids))} still running after {timeout:.0f} s")
        time.sleep(POLL_S)
    say(f"stopped: {root}")
    return len(pids)
