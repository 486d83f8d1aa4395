"""The IPC server: a Unix domain socket that speaks Greengrass IPC to the core's components.

One asyncio task per connection; whatever a client sends, only its own connection can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from pathlib import Path
from types import TracebackType

from fanwatch.core.ipc.authz import Authorizer
from fanwatch.core.ipc.calls import Services
from fanwatch.core.ipc.connection import Connection
from fanwatch.core.ipc.local_pubsub import LocalPubSub
from fanwatch.core.ipc.refusals import RefusalLog, peer_of
from fanwatch.core.ports import Nucleus
from fanwatch.core.unixsocket import listen_private

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "MAX_SOCKET_PATH_BYTES", "IPCServer"]

log = logging.getLogger("fanwatch.core.ipc")

#: sun_path holds 108 bytes on Linux, the last one a NUL: a longer path cannot be bound at all.
MAX_SOCKET_PATH_BYTES = 107
#: Larger than any legal request: a 128 KB MQTT payload (IoT Core's limit) is ~171 KiB once base64'd.
DEFAULT_MAX_FRAME_BYTES = 256 * 1024
#: Bytes queued for a client that does not read before its connection is dropped.
DEFAULT_MAX_UNSENT_BYTES = 8 * 1024 * 1024
#: Connections one process may hold (a component needs one or two), and all of them together: far
#: below a process's usual 1,024 file descriptors, so the core keeps some for itself. Past either,
#: a new connection is closed at once (20,077 idle connections once starved the core of descriptors).
DEFAULT_MAX_CONNECTIONS_PER_PEER = 32
DEFAULT_MAX_CONNECTIONS = 256


class IPCServer:
    """Serves Greengrass IPC for one core on ``socket_path``.

    ``IPCServer(nucleus, "/tmp/gg-fan-001/ipc.socket")``; ``await server.start()`` ...
    ``await server.close()``, or ``async with``. The socket is created owner-only (0600).
    """

    def __init__(
        self,
        nucleus: Nucleus,
        socket_path: str | os.PathLike[str],
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_unsent_bytes: int = DEFAULT_MAX_UNSENT_BYTES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_connections_per_peer: int = DEFAULT_MAX_CONNECTIONS_PER_PEER,
        pubsub: LocalPubSub | None = None,
    ) -> None:
        self.socket_path = Path(socket_path)
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH_BYTES:
            raise ValueError(
                f"IPC socket path is {len(os.fsencode(self.socket_path))} bytes; Unix sockets allow at most "
                f"{MAX_SOCKET_PATH_BYTES}: use a shorter root folder: {self.socket_path}"
            )
        self.pubsub = pubsub or LocalPubSub()
        self._services = Services(
            nucleus=nucleus,
            authorizer=Authorizer(nucleus.config, thing_name=nucleus.thing_name),
            pubsub=self.pubsub,
        )
        self._max_frame_bytes = max_frame_bytes
        self._max_unsent_bytes = max_unsent_bytes
        self._max_connections = max_connections
        self._max_per_peer = max_connections_per_peer
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[Connection] = set()
        self._per_peer: Counter[int] = Counter()  # open connections by peer pid
        self.refusals = RefusalLog(log)

    @property
    def connections(self) -> int:
        """How many clients are connected right now."""
        return len(self._connections)

    async def start(self) -> None:
        path = self.socket_path
        self._server = await asyncio.start_unix_server(self._serve, sock=listen_private(path))
        log.info("IPC: serving %s on %s", self._services.nucleus.thing_name, path)

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await asyncio.gather(*(c.close() for c in list(self._connections)), return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        log.info("IPC: stopped serving on %s", self.socket_path)

    async def __aenter__(self) -> IPCServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_of(writer.get_extra_info("socket"))
        if len(self._connections) >= self._max_connections:
            refusal = f"{self._max_connections} connections are open, the most this core serves"
        elif self._per_peer[peer.pid] >= self._max_per_peer:
            refusal = f"it holds {self._max_per_peer} connections already, the most one process may"
        else:
            refusal = None
        if refusal is not None:
            self.refusals.note(refusal, peer)
            writer.transport.abort()
            return
        connection = Connection(
            reader,
            writer,
            self._services,
            max_frame_bytes=self._max_frame_bytes,
            max_unsent_bytes=self._max_unsent_bytes,
            peer=peer,
            refusals=self.refusals,
        )
        self._connections.add(connection)
        self._per_peer[peer.pid] += 1
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)
            self._per_peer[peer.pid] -= 1
            if not self._per_peer[peer.pid]:
                del self._per_peer[peer.pid]
