"""Real brokers (amqtt, and mosquitto with mTLS where it is installed) and an inbox to count what arrives."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from fanwatch.core.mqtt import AmqttBroker, LocalBroker, MosquittoBroker

WAIT = 15.0  # seconds: generous, since a reconnect waits for awscrt's backoff


class Inbox:
    """A subscription handler that keeps (topic, payload) of every message; awscrt calls it on its threads."""

    def __init__(self) -> None:
        self._messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()

    def __call__(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self._messages.append((topic, payload))

    @property
    def messages(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self._messages)

    @property
    def payloads(self) -> list[bytes]:
        return [payload for _, payload in self.messages]

    async def wait_for(self, count: int, timeout: float = WAIT) -> list[tuple[str, bytes]]:
        """Wait until ``count`` messages have arrived; fail the test if they do not."""
        await _until(lambda: len(self.messages) >= count, f"{count} messages arrived", timeout)
        return self.messages


Until = Callable[[Callable[[], bool], str], Awaitable[None]]


async def _until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def until() -> Until:
    """``await until(lambda: link.online, "the link reconnected")``: poll, and fail the test on timeout."""
    return _until


@pytest.fixture
def inbox() -> Callable[[], Inbox]:
    """A factory of inboxes: ``received = inbox()`` is a subscription handler that counts."""
    return Inbox


def _mosquitto(directory: Path) -> MosquittoBroker:
    if MosquittoBroker.find_binary() is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto; CI installs it)")
    return MosquittoBroker(directory)


@pytest.fixture
def amqtt(tmp_path: Path) -> Iterator[AmqttBroker]:
    with AmqttBroker(tmp_path / "amqtt") as broker:
        yield broker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with _mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture(params=["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalBroker]:
    """Each broker in turn: the embedded one, and mosquitto with mTLS and the per-thing ACL."""
    running: LocalBroker = (
        AmqttBroker(tmp_path / "amqtt") if request.param == "amqtt" else _mosquitto(tmp_path / "mosquitto")
    )
    with running:
        yield running
