"""A local MQTT broker standing in for AWS IoT Core, run as a child process one can stop and start again.

A separate process is what survives an outage test cleanly: stopping it closes every client socket
at once, as a broker or network going away does, and starting it again on the same port gives the
clients something to reconnect to. Each broker writes its log to ``<directory>/<name>.log``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from fanwatch.core.mqtt.endpoint import BrokerEndpoint
from fanwatch.errors import FanwatchError

__all__ = ["OBSERVER", "BrokerError", "LocalBroker", "Observer", "free_port"]


class Observer(StrEnum):
    """Read-only identities on every thing's topics (the cloud side's); never a valid thing name.

    Each reader has its own: mosquitto makes a certificate's identity the client id, and two clients
    under one client id knock each other off the broker in turn.
    """

    DEFAULT = "fanwatch.observer"  # a person's or a test's look at the topics
    RULES = "fanwatch.rules-engine"  # the stand-in's IoT rules engine
    DEMO = "fanwatch.demo-observer"  # the demo's record of what the fleet published


OBSERVER = Observer.DEFAULT


class BrokerError(FanwatchError, RuntimeError):
    """A broker that is not installed, would not start (its log's last lines say why) or is not running."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now, so the broker can keep it across restarts."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


_RUNNING: set[LocalBroker] = set()  # strong references: a broker nobody holds still gets stopped


@atexit.register
def _stop_leftovers() -> None:
    """Never leave a broker behind when the process that started it exits without stopping it."""
    for broker in list(_RUNNING):
        broker.stop()


class LocalBroker(ABC):
    """``with AmqttBroker(folder) as broker: ...broker.endpoint_for("fan-001")``; stop() and start() again."""

    name: ClassVar[str]
    #: A line in the log that says the broker accepts connections.
    ready_line: ClassVar[re.Pattern[str]]

    def __init__(self, directory: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self.log_file = self.directory / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def _command(self) -> list[str]:
        """The command line that runs the broker in the foreground."""

    @abstractmethod
    def endpoint_for(self, thing_name: str) -> BrokerEndpoint:
        """How ``thing_name``'s core reaches this broker (with its own certificate where there is mTLS)."""

    @abstractmethod
    def observer_endpoint(self, observer: Observer = Observer.DEFAULT) -> BrokerEndpoint:
        """``observer``'s identity, which may read every thing's topics (what the cloud side sees)."""

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections; BrokerError if it does not."""
        if self.running:
            raise BrokerError(f"{self.name} is already running on {self.host}:{self.port}")
        with self.log_file.open("ab") as log:
            offset = log.tell()
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.PIPE,  # the amqtt child exits when this closes (its parent died)
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is for the parent, which stops us
            )
        _RUNNING.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_line.search(self._log_since(offset)):
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        tail = "\n".join(self._log_since(offset).splitlines()[-15:])
        raise BrokerError(f"{self.name} did not start on {self.host}:{self.port}; its log ends:\n{tail}")

    def _log_since(self, offset: int) -> str:
        with self.log_file.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM, SIGKILL after ``timeout``): every client sees its connection drop."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.send_signal(signal.SIGCONT)  # a frozen broker must run to see SIGTERM
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdin:
            with contextlib.suppress(OSError):
                process.stdin.close()

    def freeze(self) -> None:
        """Stop the broker answering (SIGSTOP) while its connections stay open: a hung broker, or a
        network that silently drops everything, which no socket error reveals."""
        if self._process is None or not self.running:
            raise BrokerError(f"{self.name} is not running")
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen broker go on (SIGCONT): it answers what it received meanwhile."""
        if self._process is not None and self.running:
            self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would: nothing more is acknowledged."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
