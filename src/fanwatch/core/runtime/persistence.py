"""What a core keeps on disk between runs: the last deployment it applied, and that it is running.

``local/deployment.json`` holds the deployment document, each component's version, root flag and
effective configuration, the nucleus' configuration and the fingerprints of the builds installed, so
a restarted core brings back what ran (owner-only: configurations may hold secrets). It is written to
a temporary file and renamed, so a crash never leaves half of it. ``local/core.json`` says where a
running core's sockets are, for ``fanwatch core deploy`` and ``status``; it goes when the core stops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fanwatch.core.layout import CoreLayout

__all__ = ["CoreFiles"]


class CoreFiles:
    """Reads and writes the files this module describes, for one core (an unreadable deployment.json
    is logged and read as none)."""

    def __init__(self, layout: CoreLayout, log: logging.Logger) -> None:
        self._layout = layout
        self._log = log

    def load_deployment(self) -> dict[str, Any]:
        """The last deployment saved; empty when there is none or it cannot be read (then logged)."""
        path = self._layout.deployment_file
        try:
            saved = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError, RecursionError) as exc:  # a file too deep to read, too
            self._log.error("cannot read %s (%s): starting with no components", path, exc)
            return {}
        return saved if isinstance(saved, dict) else {}

    def save_deployment(self, saved: Mapping[str, Any]) -> None:
        temporary = self._layout.deployment_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(saved, indent=2, default=str))
        temporary.chmod(0o600)
        temporary.replace(self._layout.deployment_file)

    def announce(self, thing_name: str, *, ipc_socket: Path, control_socket: Path) -> None:
        """Write ``core.json``: this core runs, and where its sockets are."""
        state = {
            "thing": thing_name,
            "pid": os.getpid(),
            "root": str(self._layout.root),
            "ipcSocket": str(ipc_socket),
            "controlSocket": str(control_socket),
        }
        self._layout.state_file.write_text(json.dumps(state, indent=2))

    def withdraw(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._layout.state_file.unlink()
