"""Owner-only listening Unix sockets: the IPC and control sockets hand out tokens and take deployments."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

__all__ = ["listen_private"]


def listen_private(path: Path) -> socket.socket:
    """Bind a Unix socket at ``path`` that only its owner can connect to.

    A socket left behind by a core that did not shut down is replaced; any other file is refused. The
    umask is narrowed only around ``bind()``, which never yields to the event loop, so no coroutine of
    another core creates its files under it (a umask held across an ``await`` did exactly that).
    """
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise FileExistsError(f"{path} exists and is not a socket: refusing to replace it")
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    return sock
