"""How ``fanwatch core deploy`` and ``fanwatch core status`` reach a running core: its control socket.

Each core listens on ``<root>/local/control.socket`` (or a short path under the temp folder when the
root is too deep for a Unix socket; the path in use is in ``<root>/local/core.json``). The socket is
owner-only: whoever can deploy to a core can run code as its user. A request is one line of JSON,
``{"op": "status"}``, ``{"op": "deploy", "document": {...}, "buildDirs": [...]}`` or ``{"op": "index",
"buildDirs": [...]}`` (read build folders, list the stored components); the answer is one
line, ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``. A malformed, oversized or
unknown request gets an error answer and never disturbs the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from fanwatch.core.ports import ControlledCore
from fanwatch.core.unixsocket import listen_private
from fanwatch.errors import FanwatchError

__all__ = ["MAX_REQUEST_BYTES", "ControlError", "ControlServer", "request"]

log = logging.getLogger(__name__)

#: A deployment document is at most a few KB; anything this large is not a request.
MAX_REQUEST_BYTES: Final = 1024 * 1024


class ControlError(FanwatchError):
    """The core could not be reached or refused the request."""


class ControlServer:
    """Serves one core's control requests on a Unix socket."""

    def __init__(self, core: ControlledCore, socket_path: Path) -> None:
        self.core = core
        self.socket_path = socket_path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(
            self._serve, sock=listen_private(self.socket_path), limit=MAX_REQUEST_BYTES
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                too_big = f"request larger than {MAX_REQUEST_BYTES} bytes"
                answer: dict[str, Any] = {"ok": False, "error": too_big}
            except asyncio.IncompleteReadError:
                return  # the client went away
            else:
                answer = await self._answer(line)
            writer.write(json.dumps(answer, default=str).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            log.warning("control: client went away: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            message = json.loads(line)
        except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, a huge integer, deep nesting
            return {"ok": False, "error": f"not a JSON request: {str(exc)[:200]}"}
        if not isinstance(message, Mapping):
            return {"ok": False, "error": "a request is a JSON object with an 'op'"}
        operation = message.get("op")
        try:
            if operation == "status":
                return {"ok": True, "result": self.core.status()}
            if operation in {"deploy", "index"}:
                build_dirs = message.get("buildDirs") or []
                if not isinstance(build_dirs, list) or not all(isinstance(d, str) for d in build_dirs):
                    return {"ok": False, "error": "buildDirs: expected a list of folder paths"}
                self.core.add_sources([Path(d) for d in build_dirs])
                if operation == "index":
                    return {"ok": True, "result": self.core.status()["store"]}
                result = await self.core.deploy(message.get("document"))
                return {"ok": True, "result": result.to_dict()}
        except Exception as exc:  # any failure is this request's, never the core's
            log.exception("control: %s failed", operation)
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": False, "error": f"unknown op {operation!r}; expected 'status', 'deploy' or 'index'"}


def request(socket_path: Path, message: Mapping[str, Any], *, timeout: float | None = 30.0) -> Any:
    """Send one request to a core and return its result (blocking; for the CLI)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout)
            client.connect(str(socket_path))
            client.sendall(json.dumps(message).encode() + b"\n")
            received = bytearray()
            while not received.endswith(b"\n"):
                chunk = client.recv(65536)
                if not chunk:
                    break
                received += chunk
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ControlError(f"no core is listening on {socket_path} ({exc.strerror})") from None
    except TimeoutError:
        raise ControlError(f"the core on {socket_path} did not answer within {timeout:g} s") from None
    try:
        answer = json.loads(received)
    except json.JSONDecodeError:
        raise ControlError(f"the core on {socket_path} closed the connection without an answer") from None
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error")))
    return answer.get("result")
