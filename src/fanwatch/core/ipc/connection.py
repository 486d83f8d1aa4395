"""One client connection: the CONNECT handshake, then one stream per operation.

Routing follows aws-c-event-stream's server: nothing but CONNECT before the handshake, one CONNECT
only, new stream ids strictly consecutive and carrying an ``operation`` header, and only application
messages on streams. A protocol breach is answered with PROTOCOL_ERROR and the connection is closed; a
frame that cannot be decoded (bad CRC, impossible lengths, oversized) closes it at once. Either way only
this connection ends, with one log line saying why, and every subscription it held is undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any

from awsiot.eventstreamrpc import Shape
from awsiot.greengrasscoreipc.model import GreengrassCoreIPCError, ServiceError

from fanwatch.core.ipc.calls import Cleanup, Services
from fanwatch.core.ipc.eventstream import FrameDecoder, FrameError, Header, HeaderType, Message, encode
from fanwatch.core.ipc.operations import UnknownOperationError, perform
from fanwatch.core.ipc.protocol import (
    CONTENT_TYPE,
    CONTENT_TYPE_JSON,
    MODEL_TYPE,
    VERSION,
    VERSION_HEADER,
    Envelope,
    MessageFlag,
    MessageType,
    ProtocolViolation,
    rpc_message,
)
from fanwatch.core.ipc.refusals import Peer, RefusalLog
from fanwatch.core.ipc.shapes import is_streaming, model_name, to_json

__all__ = ["Connection"]

log = logging.getLogger("fanwatch.core.ipc")

_READ_CHUNK = 64 * 1024
#: How long a new connection may take to send CONNECT: the awsiotsdk client sends it at once. Without
#: a deadline, idle connections were held open until the core ran out of file descriptors.
CONNECT_DEADLINE_SECONDS = 10.0
_SETTLE_SECONDS = 5.0
_REFUSED_LINGER_SECONDS = 2.0
_JSON = Header.string(CONTENT_TYPE, CONTENT_TYPE_JSON)


class Stream:
    """One operation's stream; the :class:`~fanwatch.core.ipc.calls.Call` its handler sees."""

    def __init__(self, connection: Connection, stream_id: int, operation: str, component: str) -> None:
        self._connection = connection
        self.id = stream_id
        self.operation = operation
        self.component = component
        self.closed = False
        self._early_events: list[Shape] | None = []  # None once the response has gone out
        self._cleanups: list[Cleanup] = []

    @property
    def services(self) -> Services:
        return self._connection.services

    def emit(self, event: Shape) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the server has shut down
            self._connection.loop.call_soon_threadsafe(self._emit_now, event)

    def _emit_now(self, event: Shape) -> None:
        if self.closed:
            return
        if self._early_events is not None:
            self._early_events.append(event)
        else:
            self._connection.send_shape(self.id, event)

    def on_close(self, cleanup: Cleanup) -> None:
        if self.closed:
            self._connection.run_cleanup(cleanup, self)
        else:
            self._cleanups.append(cleanup)

    def respond(self, response: Shape) -> None:
        if self.closed:  # the client closed the stream while the operation ran
            return
        streaming = is_streaming(self.operation)
        self._connection.send_shape(self.id, response, terminate=not streaming)
        if not streaming:
            self._connection.end_stream(self)
            return
        early, self._early_events = self._early_events or [], None
        for event in early:
            self._emit_now(event)

    def fail(self, error: GreengrassCoreIPCError) -> None:
        if not self.closed:
            self._connection.send_shape(
                self.id, error, terminate=True, message_type=MessageType.APPLICATION_ERROR
            )
        self._connection.end_stream(self)

    def close(self) -> list[Cleanup]:
        """Mark the stream closed; returns the cleanups to run."""
        self.closed = True
        cleanups, self._cleanups = self._cleanups, []
        return cleanups


class Connection:
    """Serves one accepted socket until the client leaves or breaks the protocol."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        services: Services,
        *,
        max_frame_bytes: int,
        max_unsent_bytes: int,
        peer: Peer,
        refusals: RefusalLog,
    ) -> None:
        self.peer = peer
        self.refusals = refusals
        self._reader = reader
        self._writer = writer
        self.services = services
        self.loop = asyncio.get_running_loop()
        self._decoder = FrameDecoder(max_message_bytes=max_frame_bytes)
        self._max_unsent_bytes = max_unsent_bytes
        self.component: str | None = None
        self._connect_seen = False
        self._latest_stream_id = 0
        self._streams: dict[int, Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed = False
        self._refused = False

    @property
    def who(self) -> str:
        return self.component or "an unauthenticated client"

    async def serve(self) -> None:
        deadline = self.loop.time() + CONNECT_DEADLINE_SECONDS  # read at run time: tests shorten it
        try:
            while not self._closing:
                if self._connect_seen:
                    chunk = await self._reader.read(_READ_CHUNK)
                else:
                    try:
                        async with asyncio.timeout_at(deadline):
                            chunk = await self._reader.read(_READ_CHUNK)
                    except TimeoutError:
                        self.refusals.note("no CONNECT within the deadline", self.peer)
                        break
                if not chunk:
                    break
                for message in self._decoder.feed(chunk):
                    self._receive(message)
                    if self._closing:
                        break
        except FrameError as exc:
            log.warning("IPC: closing the connection of %s: malformed frame: %s", self.who, exc)
        except OSError as exc:
            log.info("IPC: the connection of %s failed: %s", self.who, exc)
        except Exception:
            log.exception("IPC: internal error on the connection of %s: closing it", self.who)
        finally:
            await self.close()

    async def close(self) -> None:
        """End every stream (running its cleanups) and close the socket; idempotent."""
        if self._closed:
            return
        self._closed = self._closing = True
        if self._streams:
            names = ", ".join(sorted({s.operation.split("#")[-1] for s in self._streams.values()}))
            log.info(
                "IPC: %s went away with %d open stream(s) (%s): unsubscribing",
                self.who,
                len(self._streams),
                names,
            )
        elif self.component:
            log.info("IPC: %s disconnected", self.component)
        for stream in list(self._streams.values()):
            self.end_stream(stream)
        if self._refused:
            await self._await_client_hangup()
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
        await self._settle_tasks()

    async def _await_client_hangup(self) -> None:
        """Give a refused client the time to read its CONNECT_ACK and hang up itself: closing at once
        races the ACK, and the client would report a closed socket instead of access denied."""
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(_REFUSED_LINGER_SECONDS):
                while await self._reader.read(_READ_CHUNK):
                    pass  # whatever a refused client still sends is ignored

    async def _settle_tasks(self) -> None:
        """Let operations in flight finish (a publish the client sent before leaving still goes out),
        but not forever."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=_SETTLE_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("IPC: cancelled %d operation(s) of %s still running at close", len(pending), self.who)
            await asyncio.gather(*pending, return_exceptions=True)

    def abort(self) -> None:
        """Drop the connection without flushing (the client is not reading)."""
        self._closing = True
        self._writer.transport.abort()

    # -- receiving -------------------------------------------------------------------------------

    def _receive(self, message: Message) -> None:
        try:
            envelope = Envelope.open(message)
            if not self._connect_seen and envelope.type != MessageType.CONNECT:
                raise ProtocolViolation(ProtocolViolation.CONNECT_FIRST)
            if envelope.stream_id > 0:
                self._on_stream_message(envelope)
            else:
                self._on_connection_message(envelope)
        except ProtocolViolation as violation:
            log.warning(
                "IPC: closing the connection of %s: protocol error: %s%s",
                self.who,
                violation.message,
                f" ({violation.detail})" if violation.detail else "",
            )
            self._send(rpc_message(MessageType.PROTOCOL_ERROR, headers=(_JSON,), payload=violation.payload()))
            self._closing = True

    def _on_connection_message(self, envelope: Envelope) -> None:
        kind = envelope.type
        if not MessageType.PING <= kind <= MessageType.INTERNAL_ERROR:
            raise ProtocolViolation(ProtocolViolation.BAD_MESSAGE_TYPE, f"message type {kind} on stream 0")
        if kind == MessageType.CONNECT:
            if self._connect_seen:
                raise ProtocolViolation(ProtocolViolation.CONNECT_FIRST, "a second CONNECT")
            self._connect_seen = True
            self._handshake(envelope.message)
        elif kind == MessageType.PING:
            echoed = tuple(h for h in envelope.message.headers if not h.name.startswith(":"))
            self._send(
                rpc_message(MessageType.PING_RESPONSE, headers=echoed, payload=envelope.message.payload)
            )
        elif kind != MessageType.PING_RESPONSE:  # CONNECT_ACK or an error, which clients do not send
            log.warning("IPC: closing the connection of %s: it sent message type %d", self.who, kind)
            text = f" message type value: {kind} is not recognized as a valid request path."
            payload = json.dumps({"error": "Unrecognized Message Type", "message": text}).encode()
            self._send(rpc_message(MessageType.INTERNAL_ERROR, headers=(_JSON,), payload=payload))
            self._closing = True

    def _handshake(self, message: Message) -> None:
        component = None
        version = message.header(VERSION_HEADER, HeaderType.STRING)
        if version != VERSION:
            reason = f"its protocol version is {version!r}, not {VERSION!r}"
        else:
            token = _auth_token(message.payload)
            if not token:
                reason = "its CONNECT payload has no authToken"
            else:
                component = self.services.nucleus.component_for_token(token)
                reason = "its authToken (SVCUID) belongs to no component"
        if component is None:
            log.warning("IPC: refused a connection: %s", reason)
            self._send(rpc_message(MessageType.CONNECT_ACK))
            self._closing = self._refused = True
            return
        self.component = component
        log.info("IPC: %s connected", component)
        self._send(rpc_message(MessageType.CONNECT_ACK, flags=MessageFlag.CONNECTION_ACCEPTED))

    def _on_stream_message(self, envelope: Envelope) -> None:
        if envelope.type > MessageType.APPLICATION_ERROR:
            raise ProtocolViolation(ProtocolViolation.STREAM_MESSAGE_TYPE, f"type {envelope.type}")
        stream_id = envelope.stream_id
        if stream_id <= self._latest_stream_id:
            stream = self._streams.get(stream_id)
            if stream is None:
                if not envelope.terminates:  # a TERMINATE crossing ours is normal; anything else is not
                    raise ProtocolViolation(ProtocolViolation.OLD_STREAM, f"stream {stream_id} is not open")
            elif envelope.terminates:
                self.end_stream(stream)
            return  # none of the served operations takes events from the client
        if stream_id != self._latest_stream_id + 1:
            raise ProtocolViolation(
                ProtocolViolation.SKIPPED_STREAM, f"stream {stream_id} after {self._latest_stream_id}"
            )
        operation = envelope.operation
        if not operation:
            raise ProtocolViolation(ProtocolViolation.NO_OPERATION)
        self._latest_stream_id = stream_id
        if envelope.terminates:
            log.debug("IPC: %s sent %s with TERMINATE_STREAM: not run", self.who, operation)
            return
        assert self.component is not None  # the handshake succeeded, or the connection is closing
        stream = self._streams[stream_id] = Stream(self, stream_id, operation, self.component)
        self._track(self._run(stream, envelope.message.payload))

    async def _run(self, stream: Stream, payload: bytes) -> None:
        try:
            response = await perform(stream, stream.operation, payload)
        except UnknownOperationError as unknown:
            log.info("IPC: %s called %s, which is no Greengrass operation", self.who, stream.operation)
            self._send(
                rpc_message(
                    MessageType.APPLICATION_ERROR,
                    stream_id=stream.id,
                    flags=MessageFlag.TERMINATE_STREAM,
                    headers=(_JSON,),
                    payload=unknown.payload(),
                )
            )
            self.end_stream(stream)
        except GreengrassCoreIPCError as error:
            log.info("IPC: %s %s: %s: %s", self.who, stream.operation, model_name(error), error.message)
            stream.fail(error)
        except Exception as exc:
            log.exception("IPC: %s from %s failed", stream.operation, self.who)
            stream.fail(ServiceError(message=str(exc)))
        else:
            stream.respond(response)

    # -- sending and ending ----------------------------------------------------------------------

    def send_shape(
        self,
        stream_id: int,
        shape: Shape,
        *,
        terminate: bool = False,
        message_type: MessageType = MessageType.APPLICATION_MESSAGE,
    ) -> None:
        headers = (_JSON, Header.string(MODEL_TYPE, model_name(shape)))
        flags = MessageFlag.TERMINATE_STREAM if terminate else MessageFlag.NONE
        self._send(
            rpc_message(
                message_type, stream_id=stream_id, flags=flags, headers=headers, payload=to_json(shape)
            )
        )

    def _send(self, message: Message) -> None:
        if self._writer.is_closing():
            return
        self._writer.write(encode(message))
        unsent = self._writer.transport.get_write_buffer_size()
        if unsent > self._max_unsent_bytes:
            log.warning(
                "IPC: closing the connection of %s: it is not reading (%d bytes unsent)", self.who, unsent
            )
            self.abort()

    def end_stream(self, stream: Stream) -> None:
        if self._streams.get(stream.id) is stream:
            del self._streams[stream.id]
        for cleanup in stream.close():
            self.run_cleanup(cleanup, stream)

    def run_cleanup(self, cleanup: Cleanup, stream: Stream) -> None:
        try:
            result = cleanup()
        except Exception:
            log.exception("IPC: undoing %s for %s failed", stream.operation, self.who)
            return
        if inspect.isawaitable(result):
            self._track(_logged(result, f"undoing {stream.operation} for {self.who}"))

    def _track(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _logged(awaitable: Awaitable[None], what: str) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("IPC: %s failed", what)


def _auth_token(payload: bytes) -> str | None:
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, or nested past the decoder's recursion limit
        return None
    token = document.get("authToken") if isinstance(document, dict) else None
    return token if isinstance(token, str) and token else None
