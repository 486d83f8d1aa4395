"""Refused connections, logged once per reason and then summarised, never once per event.

A flood of connections that are refused (too many, or silent past the CONNECT deadline) once
produced 945,000 log lines in 80 seconds; the log should say what happened, not become the attack.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Peer", "RefusalLog", "peer_of"]

_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True, slots=True)
class Peer:
    """The process at the other end of a Unix socket, as the kernel reports it (SO_PEERCRED)."""

    pid: int
    uid: int

    def __str__(self) -> str:
        return f"pid {self.pid} (uid {self.uid})"


def peer_of(transport_socket: Any) -> Peer:
    """The peer of an accepted Unix socket; pid and uid -1 where the kernel cannot say."""
    try:
        raw = transport_socket.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
        pid, uid, _ = _CREDENTIALS.unpack(raw)
    except (AttributeError, OSError, struct.error):
        return Peer(-1, -1)
    return Peer(pid, uid)


class RefusalLog:
    """Logs the first refusal of each kind at once, then at most one summary per ``every`` seconds."""

    def __init__(
        self, log: logging.Logger, *, every: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = log
        self._every = every
        self._clock = clock
        self._last: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()
        self.total: Counter[str] = Counter()

    def note(self, reason: str, peer: Peer) -> None:
        self.total[reason] += 1
        now = self._clock()
        last = self._last.get(reason)
        if last is None:
            self._last[reason] = now
            self._log.warning(
                "IPC: refused a connection of %s: %s (further ones are counted, logged at most every %.0f s)",
                peer,
                reason,
                self._every,
            )
            return
        self._unlogged[reason] += 1
        if now - last >= self._every:
            self._last[reason] = now
            count, self._unlogged[reason] = self._unlogged[reason], 0
            self._log.warning(
                "IPC: refused %d more connection(s) since: %s (the last of %s)", count, reason, peer
            )
