"""A real IPC server on a real Unix socket, serving an in-memory nucleus, for the real awsiotsdk client.

The nucleus here is a stand-in for the runtime's ``LocalCore`` and its IoT link records what the MQTT
link would carry; the tests drive them through the unchanged ``GreengrassCoreIPCClientV2``.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from awsiot.greengrasscoreipc import connect
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from fanwatch.core.config import ConfigStore
from fanwatch.core.ipc import IPCServer
from fanwatch.core.ports import ComponentInfo, ComponentState, MessageHandler

T = TypeVar("T")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT 3.1.1 filter matching, enough for the recording link."""
    want, have = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)


@dataclass
class RecordedSubscription:
    link: RecordingLink
    topic_filter: str
    qos: int
    handler: MessageHandler
    closed: threading.Event = field(default_factory=threading.Event)

    async def close(self) -> None:
        self.closed.set()
        self.link.subscriptions.remove(self)


class RecordingLink:
    """Stands in for the MQTT engineer's IoTCoreLink: records publishes, delivers on demand."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, int, bool]] = []
        self.subscriptions: list[RecordedSubscription] = []
        self.fail_with: Exception | None = None
        self.publish_delay = 0.0

    async def publish(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        await asyncio.sleep(self.publish_delay)
        self.published.append((topic, payload, qos, retain))

    async def subscribe(self, topic_filter: str, qos: int, handler: MessageHandler) -> RecordedSubscription:
        subscription = RecordedSubscription(self, topic_filter, qos, handler)
        self.subscriptions.append(subscription)
        return subscription

    def deliver(self, topic: str, payload: bytes) -> int:
        """A message from IoT Core, handed over from this (non-loop) thread as the real link may."""
        matching = [s for s in list(self.subscriptions) if topic_matches(s.topic_filter, topic)]
        for subscription in matching:
            subscription.handler(topic, payload)
        return len(matching)


class InMemoryNucleus:
    """The Nucleus seam, in memory: components with tokens, configuration and states."""

    def __init__(self, thing_name: str = "fan-001") -> None:
        self.thing_name = thing_name
        self.config = ConfigStore()
        self.iot = RecordingLink()
        self.states: dict[str, ComponentState] = {}
        self.reported: list[tuple[str, ComponentState]] = []
        self._tokens: dict[str, str] = {}
        self._versions: dict[str, str] = {}

    def add(self, name: str, configuration: dict[str, Any], *, version: str = "1.0.0") -> str:
        """Deploy a component (RUNNING) and return the SVCUID issued to it."""
        token = secrets.token_urlsafe(24)
        self._tokens[token] = name
        self._versions[name] = version
        self.states[name] = ComponentState.RUNNING
        self.config.set_tree(name, configuration)
        return token

    def component_for_token(self, token: str) -> str | None:
        return self._tokens.get(token)

    def report_state(self, component: str, state: ComponentState) -> None:
        if component not in self.states:
            raise KeyError(component)
        self.states[component] = state
        self.reported.append((component, state))

    def components(self) -> list[ComponentInfo]:
        return [
            ComponentInfo(name, self._versions[name], state, self.config.get(name))
            for name, state in sorted(self.states.items())
        ]


class LoopThread:
    """An asyncio loop in a thread: the server lives there while the blocking client runs in the test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ipc-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Awaitable[T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)  # type: ignore[arg-type]

    def call(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        async def in_loop() -> T:
            return function()

        return self.run(in_loop(), timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class Core:
    nucleus: InMemoryNucleus
    server: IPCServer
    loop: LoopThread
    socket_path: Path
    clients: list[GreengrassCoreIPCClientV2] = field(default_factory=list)

    def client(self, token: str) -> GreengrassCoreIPCClientV2:
        """The real awsiotsdk client, connected as the component that holds ``token``."""
        client = GreengrassCoreIPCClientV2(client=connect(ipc_socket=str(self.socket_path), authtoken=token))
        self.clients.append(client)
        return client


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # A Unix socket path must fit in 107 bytes; pytest's tmp_path can be longer, so use a short /tmp dir.
    path = Path(tempfile.mkdtemp(prefix="fw-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture
def nucleus() -> InMemoryNucleus:
    return InMemoryNucleus()


@pytest.fixture
def core(nucleus: InMemoryNucleus, loop_thread: LoopThread, short_dir: Path) -> Iterator[Core]:
    socket_path = short_dir / "ipc.socket"
    server = IPCServer(nucleus, socket_path)
    loop_thread.run(server.start())
    running = Core(nucleus, server, loop_thread, socket_path)
    yield running
    for client in running.clients:
        client.close()
    loop_thread.run(server.close())
