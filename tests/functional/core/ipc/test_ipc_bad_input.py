"""Bad input closes that one connection with a log line, and never the server.

A raw socket plays the misbehaving client; after each case a real client proves the server still serves.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from awsiot.greengrasscoreipc import model

from fanwatch.core.ipc import DEFAULT_MAX_FRAME_BYTES, IPCServer
from fanwatch.core.ipc import connection as connection_module
from fanwatch.core.ipc.eventstream import FrameDecoder, FrameError, Header, Message, encode
from fanwatch.core.ipc.local_pubsub import LocalMessage
from fanwatch.core.ipc.protocol import MessageFlag, MessageType, rpc_message
from fanwatch.core.ipc.server import DEFAULT_MAX_CONNECTIONS_PER_PEER

COMPONENT = "fanwatch.Tachometer"
CONFIG = {
    "pin": 17,
    "accessControl": {
        "aws.greengrass.ipc.pubsub": {
            "p": {"policyDescription": "t", "operations": ["*"], "resources": ["fanwatch/*"]}
        },
        "aws.greengrass.ipc.mqttproxy": {
            "p": {"policyDescription": "t", "operations": ["*"], "resources": ["fanwatch/#"]}
        },
    },
}
WAIT = 5.0


class RawClient:
    """A client that sends whatever bytes it is told to, and reports what came back."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.sock.connect(str(path))
        self.decoder = FrameDecoder(max_message_bytes=1 << 24)
        self.inbox: list[Message] = []

    def send(self, message: Message) -> None:
        self.sock.sendall(encode(message))

    def send_connect(self, token: str) -> None:
        payload = json.dumps({"authToken": token}).encode()
        version = Header.string(":version", "0.1.0")
        self.send(rpc_message(MessageType.CONNECT, headers=(version,), payload=payload))

    def connect(self, token: str) -> Message:
        self.send_connect(token)
        return self.next()

    def request(
        self, stream_id: int, operation: str, body: dict[str, Any], *, terminate: bool = False
    ) -> None:
        headers = (
            Header.string("operation", f"aws.greengrass#{operation}"),
            Header.string(":content-type", "application/json"),
            Header.string("service-model-type", f"aws.greengrass#{operation}Request"),
        )
        flags = MessageFlag.TERMINATE_STREAM if terminate else MessageFlag.NONE
        payload = json.dumps(body).encode()
        self.send(
            rpc_message(
                MessageType.APPLICATION_MESSAGE,
                stream_id=stream_id,
                flags=flags,
                headers=headers,
                payload=payload,
            )
        )

    def next(self) -> Message:
        while not self.inbox:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the server")
            self.inbox.extend(self.decoder.feed(data))
        return self.inbox.pop(0)

    def until_closed(self) -> list[Message]:
        """Everything the server sends before it closes the connection."""
        received = list(self.inbox)
        try:
            while data := self.sock.recv(65536):
                received.extend(self.decoder.feed(data))
        except ConnectionResetError:  # closed with our unread bytes still in its buffer
            pass
        return received

    def close(self) -> None:
        self.sock.close()


def kind(message: Message) -> int:
    return int(message.header(":message-type"))  # type: ignore[arg-type]


@pytest.fixture
def token(core: Any) -> str:
    return str(core.nucleus.add(COMPONENT, CONFIG))


@pytest.fixture
def raw(core: Any) -> Any:
    clients: list[RawClient] = []

    def open_raw() -> RawClient:
        clients.append(RawClient(core.socket_path))
        return clients[-1]

    yield open_raw
    for client in clients:
        client.close()


def assert_still_serving(core: Any, token: str) -> None:
    client = core.client(token)
    assert client.get_configuration(key_path=["pin"]).value == {"pin": 17}
    deadline = time.monotonic() + WAIT
    while core.server.connections != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert core.server.connections == 1, "only the healthy client is still connected"


def test_garbage_bytes_close_the_connection(
    core: Any, token: str, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = raw()
    with caplog.at_level(logging.WARNING):
        client.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.until_closed() == []
    assert "malformed frame: prelude CRC mismatch" in caplog.text
    assert_still_serving(core, token)


def test_a_wrong_message_crc_closes_the_connection(
    core: Any, token: str, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = raw()
    assert kind(client.connect(token)) == MessageType.CONNECT_ACK
    frame = bytearray(encode(rpc_message(MessageType.PING, payload=b"hello")))
    frame[-5] ^= 0xFF  # a payload byte: the prelude is intact, the message CRC is not
    with caplog.at_level(logging.WARNING):
        client.sock.sendall(bytes(frame))
        assert client.until_closed() == []
    assert f"closing the connection of {COMPONENT}: malformed frame: message CRC mismatch" in caplog.text
    assert_still_serving(core, token)


def test_an_oversized_message_is_refused_from_its_prelude(
    core: Any, token: str, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = raw()
    client.connect(token)
    total = DEFAULT_MAX_FRAME_BYTES + 1
    prelude = struct.pack(">II", total, 0)
    with caplog.at_level(logging.WARNING):
        client.sock.sendall(prelude + struct.pack(">I", zlib.crc32(prelude)))  # no body is ever sent
        assert client.until_closed() == []
    assert f"message of {total} bytes exceeds the {total - 1}-byte limit" in caplog.text
    assert_still_serving(core, token)


def test_a_publish_larger_than_the_frame_limit_closes_only_that_connection(
    core: Any, token: str, raw: Any
) -> None:
    client = raw()
    client.connect(token)
    body = {"topicName": "fanwatch/x", "qos": "1", "payload": "A" * DEFAULT_MAX_FRAME_BYTES}
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the server hangs up mid-send
        client.request(1, "PublishToIoTCore", body)
    assert client.until_closed() == []
    assert core.nucleus.iot.published == []
    assert_still_serving(core, token)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("before-connect", "A CONNECT message must be received"),
        ("second-connect", "only one CONNECT message is allowed"),
        ("skipped-stream", "incremented by more than 1"),
        ("unknown-old-stream", "lower than the last seen stream-id"),
        ("no-operation", "must contain an operation header value"),
        ("no-stream-id", "missing required fields"),
        ("connect-ack-on-stream", "only allowed for messages of type APPLICATION_MESSAGE"),
        ("application-message-on-stream-0", "an invalid value for message-type"),
    ],
)
def test_protocol_breaches_get_a_protocol_error_then_the_connection_closes(
    core: Any, token: str, raw: Any, caplog: pytest.LogCaptureFixture, script: str, expected: str
) -> None:
    client = raw()
    if script != "before-connect":
        client.connect(token)
    with caplog.at_level(logging.WARNING):
        if script in ("before-connect", "application-message-on-stream-0"):
            client.send(rpc_message(MessageType.APPLICATION_MESSAGE, payload=b"{}"))
        elif script == "second-connect":
            client.send_connect(token)
        elif script == "skipped-stream":
            client.request(2, "GetConfiguration", {})
        elif script == "unknown-old-stream":
            client.request(1, "GetConfiguration", {})
            client.next()  # the response ends stream 1
            client.send(rpc_message(MessageType.APPLICATION_MESSAGE, stream_id=1, payload=b"{}"))
        elif script == "no-operation":
            client.send(rpc_message(MessageType.APPLICATION_MESSAGE, stream_id=1, payload=b"{}"))
        elif script == "no-stream-id":
            client.send(Message((Header.int32(":message-type", 0), Header.int32(":message-flags", 0)), b"{}"))
        elif script == "connect-ack-on-stream":
            client.send(rpc_message(MessageType.CONNECT_ACK, stream_id=1))
        replies = client.until_closed()
    assert [kind(m) for m in replies] == [MessageType.PROTOCOL_ERROR]
    assert expected in json.loads(replies[0].payload)["message"]
    assert expected in caplog.text
    assert_still_serving(core, token)


def test_a_client_sending_server_message_types_gets_an_internal_error(
    core: Any, token: str, raw: Any
) -> None:
    client = raw()
    client.connect(token)
    client.send(rpc_message(MessageType.PROTOCOL_ERROR, payload=b"{}"))
    [reply] = client.until_closed()
    assert kind(reply) == MessageType.INTERNAL_ERROR
    assert json.loads(reply.payload)["error"] == "Unrecognized Message Type"
    assert_still_serving(core, token)


def test_ping_is_answered_with_the_callers_headers(core: Any, token: str, raw: Any) -> None:
    client = raw()
    client.connect(token)
    client.send(rpc_message(MessageType.PING, headers=(Header.string("x-probe", "42"),), payload=b"ping"))
    reply = client.next()
    assert kind(reply) == MessageType.PING_RESPONSE
    assert (reply.header("x-probe"), reply.payload) == ("42", b"ping")


def test_an_operation_outside_the_model_gets_the_unsupported_operation_error(
    core: Any, token: str, raw: Any
) -> None:
    client = raw()
    client.connect(token)
    client.request(1, "LaunchRockets", {})
    reply = client.next()
    assert kind(reply) == MessageType.APPLICATION_ERROR
    assert int(reply.header(":message-flags")) & MessageFlag.TERMINATE_STREAM  # type: ignore[arg-type]
    assert reply.header("service-model-type") is None
    assert json.loads(reply.payload) == {
        "error": "Unsupported Operation",
        "message": "aws.greengrass#LaunchRockets is an unsupported operation.",
    }
    client.request(2, "GetConfiguration", {"keyPath": ["pin"]})
    assert json.loads(client.next().payload) == {"componentName": COMPONENT, "value": {"pin": 17}}


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1, 2]", json.dumps({"topicName": "fanwatch/t", "qos": "1", "payload": "***"}).encode()],
)
def test_an_unreadable_request_gets_invalid_arguments_and_the_connection_stays(
    core: Any, token: str, raw: Any, payload: bytes
) -> None:
    client = raw()
    client.connect(token)
    headers = (Header.string("operation", "aws.greengrass#PublishToIoTCore"),)
    client.send(rpc_message(MessageType.APPLICATION_MESSAGE, stream_id=1, headers=headers, payload=payload))
    reply = client.next()
    assert kind(reply) == MessageType.APPLICATION_ERROR
    assert reply.header("service-model-type") == "aws.greengrass#InvalidArgumentsError"
    assert "not a valid aws.greengrass#PublishToIoTCoreRequest" in json.loads(reply.payload)["message"]
    client.request(2, "GetConfiguration", {"keyPath": ["pin"]})
    assert kind(client.next()) == MessageType.APPLICATION_MESSAGE


def test_a_client_vanishing_mid_stream_is_unsubscribed_everywhere(
    core: Any, token: str, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = raw()
    client.connect(token)
    client.request(1, "SubscribeToTopic", {"topic": "fanwatch/raw"})
    client.request(2, "SubscribeToIoTCore", {"topicName": "fanwatch/commands", "qos": "0"})
    client.request(3, "SubscribeToConfigurationUpdate", {"keyPath": []})
    replies = [client.next() for _ in range(3)]
    assert all(kind(r) == MessageType.APPLICATION_MESSAGE for r in replies)
    [link_subscription] = core.nucleus.iot.subscriptions
    probe = LocalMessage("fanwatch/raw", json={"probe": 1})
    assert core.loop.call(lambda: core.server.pubsub.publish(probe, "probe")) == 1
    with caplog.at_level(logging.INFO):
        client.sock.shutdown(socket.SHUT_RDWR)
        client.close()
        assert link_subscription.closed.wait(WAIT)
    assert core.loop.call(lambda: core.server.pubsub.publish(probe, "probe")) == 0
    assert f"{COMPONENT} went away with 3 open stream(s)" in caplog.text
    core.nucleus.config.set_tree(COMPONENT, {**CONFIG, "extra": 4})  # nobody left to notify: no error
    assert_still_serving(core, token)


def test_a_publish_sent_just_before_the_client_vanished_still_goes_out(
    core: Any, token: str, raw: Any
) -> None:
    core.nucleus.iot.publish_delay = 0.2
    client = raw()
    client.connect(token)
    client.request(1, "PublishToIoTCore", {"topicName": "fanwatch/last", "qos": "1", "payload": "Ynll"})
    client.close()
    deadline = time.monotonic() + WAIT
    while not core.nucleus.iot.published and time.monotonic() < deadline:
        time.sleep(0.01)
    assert core.nucleus.iot.published == [("fanwatch/last", b"bye", 1, False)]


def test_a_client_that_does_not_read_is_dropped(
    nucleus: Any, loop_thread: Any, short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = nucleus.add(COMPONENT, CONFIG)
    server = IPCServer(nucleus, short_dir / "s", max_unsent_bytes=64 * 1024)
    loop_thread.run(server.start())
    try:
        client = RawClient(short_dir / "s")
        client.connect(token)
        client.request(1, "SubscribeToTopic", {"topic": "fanwatch/flood"})
        client.next()
        flood = LocalMessage("fanwatch/flood", binary=b"x" * 16384)
        with caplog.at_level(logging.WARNING):
            for _ in range(400):  # ~8.7 MB of events for a client that never reads
                loop_thread.call(lambda: server.pubsub.publish(flood, "flooder"))
                if "it is not reading" in caplog.text:
                    break
        assert "closing the connection of fanwatch.Tachometer: it is not reading" in caplog.text
        client.close()
    finally:
        loop_thread.run(server.close())


def test_socket_path_rules(nucleus: Any, loop_thread: Any, short_dir: Path) -> None:
    with pytest.raises(ValueError, match="Unix sockets allow at most 107"):
        IPCServer(nucleus, short_dir / ("x" * 120))
    squatter = short_dir / "file"
    squatter.write_text("not a socket")
    with pytest.raises(FileExistsError, match="is not a socket"):
        loop_thread.run(IPCServer(nucleus, squatter).start())
    stale = short_dir / "stale.socket"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(stale))  # a socket file left by a core that died
    leftover.close()
    server = IPCServer(nucleus, stale)
    loop_thread.run(server.start())
    assert stale.stat().st_mode & 0o777 == 0o600, "only the core's user may connect"
    loop_thread.run(server.close())
    assert not os.path.exists(stale)


def test_frames_from_the_server_always_decode(core: Any, token: str, raw: Any) -> None:
    """Whatever the server sends must pass our own strict decoder (CRCs, lengths, header types)."""
    client = raw()
    client.connect(token)
    client.request(1, "GetConfiguration", {})
    client.request(2, "GetThingShadow", {"thingName": "x"})
    for _ in range(2):
        try:
            client.next()
        except FrameError as exc:  # pragma: no cover - the assertion below explains
            pytest.fail(f"server sent a malformed frame: {exc}")
    with pytest.raises(model.ServiceError):
        core.client(token).get_thing_shadow(thing_name="x")


@pytest.mark.parametrize(
    ("version", "payload", "reason"),
    [
        ("9.9.9", None, "its protocol version is '9.9.9', not '0.1.0'"),
        ("0.1.0", b"{}", "its CONNECT payload has no authToken"),
        ("0.1.0", b"garbage", "its CONNECT payload has no authToken"),
    ],
)
def test_a_bad_connect_is_acknowledged_without_acceptance(
    core: Any,
    token: str,
    raw: Any,
    caplog: pytest.LogCaptureFixture,
    version: str,
    payload: bytes | None,
    reason: str,
) -> None:
    client = raw()
    body = payload if payload is not None else json.dumps({"authToken": token}).encode()
    with caplog.at_level(logging.WARNING):
        client.send(
            rpc_message(MessageType.CONNECT, headers=(Header.string(":version", version),), payload=body)
        )
        ack = client.next()
    assert kind(ack) == MessageType.CONNECT_ACK
    assert not int(ack.header(":message-flags")) & MessageFlag.CONNECTION_ACCEPTED  # type: ignore[arg-type]
    assert f"refused a connection: {reason}" in caplog.text
    client.close()
    assert_still_serving(core, token)


def test_a_connection_that_never_sends_connect_is_closed_at_the_deadline(
    core: Any, token: str, raw: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14: such connections stayed open for ever, until the core ran out of file descriptors."""
    monkeypatch.setattr(connection_module, "CONNECT_DEADLINE_SECONDS", 0.3, raising=False)
    caplog.set_level(logging.WARNING, "fanwatch.core.ipc")
    started = time.monotonic()
    assert raw().until_closed() == []
    assert time.monotonic() - started < WAIT / 2
    assert "no CONNECT within the deadline" in caplog.text
    assert_still_serving(core, token)


def test_connections_past_the_per_process_cap_are_closed_and_logged_once(
    core: Any, token: str, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14: 20,077 idle connections starved the core; every refusal was a log line."""
    caplog.set_level(logging.WARNING, "fanwatch.core.ipc")
    held = [raw() for _ in range(DEFAULT_MAX_CONNECTIONS_PER_PEER)]
    extra = [raw() for _ in range(10)]
    for client in extra:
        assert client.until_closed() == []
    lines = [r.getMessage() for r in caplog.records if "refused a connection" in r.getMessage()]
    assert len(lines) == 1 and f"holds {DEFAULT_MAX_CONNECTIONS_PER_PEER} connections already" in lines[0]
    assert core.server.refusals.total[next(iter(core.server.refusals.total))] == 10
    for client in held:
        client.close()
    assert_still_serving(core, token)


#: A process that opens ``argv[2]`` connections to ``argv[1]``, prints whether the server closed
#: each ("closed") or kept it ("open", still open after ``argv[3]`` seconds), and holds them until
#: its stdin closes.
_HOLDER = """
import select, socket, sys, time
held = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(int(sys.argv[2]))]
for s in held:
    s.connect(sys.argv[1])
closed, deadline = set(), time.monotonic() + float(sys.argv[3])
while len(closed) < len(held) and (left := deadline - time.monotonic()) > 0:
    closed.update(select.select([s for s in held if s not in closed], [], [], left)[0])
print(" ".join("closed" if s in closed else "open" for s in held), flush=True)
sys.stdin.read()
"""


def test_connections_past_the_total_cap_are_closed_whichever_process_opens_them(
    nucleus: Any, loop_thread: Any, short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14: many processes, each under the per-process cap, must not starve the core together."""
    caplog.set_level(logging.WARNING, "fanwatch.core.ipc")
    path = short_dir / "capped.socket"
    server = IPCServer(nucleus, path, max_connections=6, max_connections_per_peer=4)
    loop_thread.run(server.start())
    holders: list[subprocess.Popen[str]] = []

    def hold(count: int, wait: float) -> list[str]:
        holder = subprocess.Popen(
            [sys.executable, "-I", "-c", _HOLDER, str(path), str(count), str(wait)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout is not None
        return holder.stdout.readline().split()

    try:
        assert hold(3, 0.2) == ["open"] * 3
        assert hold(3, 0.2) == ["open"] * 3
        assert server.connections == 6
        assert hold(3, WAIT) == ["closed"] * 3  # a third process, within its own cap of 4
        assert server.connections == 6
        assert dict(server.refusals.total) == {"6 connections are open, the most this core serves": 3}
        lines = [r.getMessage() for r in caplog.records if "refused a connection" in r.getMessage()]
        assert len(lines) == 1 and f"pid {holders[2].pid} " in lines[0]
        holders[0].communicate("")  # one process lets go: the cap is a limit, not a ban
        deadline = time.monotonic() + WAIT
        while server.connections != 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hold(3, 0.2) == ["open"] * 3
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
        loop_thread.run(server.close())
