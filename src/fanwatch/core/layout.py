"""Where a core keeps things under its root folder, laid out as the nucleus lays out its own.

``packages/artifacts/<component>/<version>/`` holds artifacts as delivered,
``packages/artifacts-unarchived/<component>/<version>/<zip name>/`` the unpacked ZIPs,
``packages/recipes/`` the recipes deployed, ``work/<component>/`` each component's working
directory and ``logs/`` one log per component next to ``greengrass.log``. The runtime state of this
stand-in (deployments, effective configuration, its sockets) lives under ``local/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fanwatch.errors import FanwatchError

__all__ = ["CoreLayout", "CoreRootInUse", "UnsafeSocketFolder", "root_lock", "short_socket_path"]

#: ``sun_path`` holds 108 bytes including the terminating NUL on Linux (104 on macOS).
MAX_SOCKET_PATH: Final = 100


def short_socket_path(wanted: Path) -> Path:
    """``wanted`` if it fits in a Unix socket address, else a short path under the temp folder.

    Socket paths are limited to ~107 bytes, and a core root under pytest's ``tmp_path`` or a deep home
    folder easily exceeds that; the fallback is derived from ``wanted`` so the same root always gets
    the same socket, and the real path is recorded in the core's state file for clients to find.
    """
    if len(os.fsencode(wanted)) <= MAX_SOCKET_PATH:
        return wanted
    digest = hashlib.sha256(os.fsencode(wanted)).hexdigest()[:16]
    folder = _private_folder(Path(tempfile.gettempdir()) / f"fw-{os.getuid()}")
    return folder / f"{digest}.{wanted.name}"


class UnsafeSocketFolder(FanwatchError, PermissionError):
    """The fallback socket folder exists but another user could reach or own it: refused, not fixed."""


def _private_folder(folder: Path) -> Path:
    """``folder``, created for this user alone (0700), or accepted only if it already is exactly that.

    The temp folder is shared by every local user, so the name can be taken first: a folder someone
    else created (or left open, or a symlink) is refused, never chmod-ed into use, as OpenSSH and
    systemd treat runtime folders. Otherwise its owner could swap the sockets and read SVCUIDs.
    """
    try:
        folder.mkdir(mode=0o700)
        folder.chmod(0o700)  # ours, just made: undo whatever the umask took away
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeSocketFolder(f"{folder} is not a folder (a symlink?): refusing to put sockets there")
    if info.st_uid != os.getuid():
        raise UnsafeSocketFolder(
            f"{folder} belongs to uid {info.st_uid}, not to this user (uid {os.getuid()}): refusing to put "
            "sockets there; remove it, or give the core a shorter root"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        raise UnsafeSocketFolder(
            f"{folder} has mode {stat.S_IMODE(info.st_mode):04o}, not 0700: refusing to put sockets there"
        )
    return folder


class CoreRootInUse(FanwatchError, RuntimeError):
    """Another core runs on this root folder already (it holds the root's lock)."""


@contextlib.contextmanager
def root_lock(root: Path) -> Iterator[None]:
    """Hold the lock of a core's root for as long as a core runs there: two cores on one root share
    the Disk spool and the state files, and every publish of one failed on the other's rows."""
    folder = root / "local"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "core.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CoreRootInUse(f"another core runs on {root} already: stop it first") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class CoreLayout:
    """Where a core keeps what under its root, in the nucleus' folder layout (packages, work, logs), so
    paths are named in one place."""

    root: Path

    def create(self) -> None:
        for folder in (self.artifacts, self.unarchived, self.recipes, self.work, self.logs, self.local):
            folder.mkdir(parents=True, exist_ok=True)
        # only the core's user may read its state, deployments and logs
        for folder in (self.root, self.local, self.logs):
            folder.chmod(0o700)

    @property
    def artifacts(self) -> Path:
        return self.root / "packages" / "artifacts"

    @property
    def unarchived(self) -> Path:
        return self.root / "packages" / "artifacts-unarchived"

    @property
    def recipes(self) -> Path:
        return self.root / "packages" / "recipes"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def local(self) -> Path:
        return self.root / "local"

    def artifact_path(self, component: str, version: str) -> Path:
        return self.artifacts / component / version

    def unarchived_path(self, component: str, version: str) -> Path:
        return self.unarchived / component / version

    def work_path(self, component: str) -> Path:
        return self.work / component

    def log_path(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @property
    def core_log(self) -> Path:
        return self.logs / "greengrass.log"

    @property
    def state_file(self) -> Path:
        """Where a running core says how to reach it (pid, sockets); removed when it stops."""
        return self.local / "core.json"

    @property
    def deployment_file(self) -> Path:
        """The last successful deployment and the configuration it left, restored on restart."""
        return self.local / "deployment.json"

    @property
    def ipc_socket(self) -> Path:
        return short_socket_path(self.root / "ipc.socket")

    @property
    def control_socket(self) -> Path:
        return short_socket_path(self.local / "control.socket")
