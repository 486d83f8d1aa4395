"""The seams between the local core's parts.

The IPC server (``fanwatch.core.ipc``) serves components; it needs a :class:`Nucleus` that knows
the components, their tokens, configuration and states, and an :class:`IoTCoreLink` that carries
MQTT to the broker standing in for AWS IoT Core. The runtime (``fanwatch.core.runtime``) provides
the nucleus; ``fanwatch.core.mqtt`` provides the link. The control socket (``fanwatch.core.control``)
serves a :class:`ControlledCore`, which the runtime's ``LocalCore`` also is: the runtime starts the
control server, so the server must not know the runtime. Each side is tested against the other's real
implementation, never against a mock of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from fanwatch.errors import FanwatchError

if TYPE_CHECKING:
    from pathlib import Path

    from fanwatch.core.config import ConfigStore
    from fanwatch.core.deployment.document import DeploymentResult

__all__ = [
    "ComponentInfo",
    "ComponentState",
    "ControlledCore",
    "IoTCoreLink",
    "MessageHandler",
    "Nucleus",
    "OfflineError",
    "SpoolFullError",
    "Subscription",
]


class ComponentState(StrEnum):
    """Lifecycle states, as ``greengrass-cli component list`` prints them."""

    NEW = "NEW"
    INSTALLED = "INSTALLED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    FINISHED = "FINISHED"
    ERRORED = "ERRORED"
    BROKEN = "BROKEN"


@dataclass(frozen=True, slots=True)
class ComponentInfo:
    """What the IPC server and the CLI are told of a component: version, state and configuration."""

    name: str
    version: str
    state: ComponentState
    configuration: Mapping[str, Any] = field(default_factory=dict)


class Nucleus(Protocol):
    """What the IPC server asks of the core it serves."""

    @property
    def thing_name(self) -> str: ...

    @property
    def config(self) -> ConfigStore:
        """Every component's configuration; ``accessControl`` is read from it, as the nucleus does."""
        ...

    @property
    def iot(self) -> IoTCoreLink: ...

    def component_for_token(self, token: str) -> str | None:
        """The component a SVCUID token was issued to, or None for a token nobody holds."""
        ...

    def report_state(self, component: str, state: ComponentState) -> None:
        """A component's own UpdateState call (RUNNING or ERRORED)."""
        ...

    def components(self) -> Sequence[ComponentInfo]: ...


#: Receives (topic, payload) of a message from IoT Core; may be called from any thread.
MessageHandler = Callable[[str, bytes], None]


class Subscription(Protocol):
    """A subscription a caller holds; closing it stops the messages."""

    def close(self) -> Awaitable[None]: ...


class SpoolFullError(FanwatchError):
    """The spooler had no room even after evicting the oldest messages."""


class OfflineError(FanwatchError):
    """A QoS 0 message while offline and ``keepQos0WhenOffline`` is false: dropped, as the nucleus does."""


class IoTCoreLink(Protocol):
    """The core's single MQTT connection to IoT Core, with the nucleus' spooler in front of it."""

    async def publish(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        """Return once the message is in the spooler (not on PUBACK), or raise SpoolFullError/OfflineError."""
        ...

    async def subscribe(self, topic_filter: str, qos: int, handler: MessageHandler) -> Subscription: ...


class ControlledCore(Protocol):
    """What ``fanwatch core deploy`` and ``fanwatch core status`` ask of a running core."""

    def status(self) -> dict[str, Any]:
        """States, effective configuration and problems of every component, and the store's contents."""
        ...

    def add_sources(self, folders: Sequence[Path]) -> None:
        """Index (or re-read) gdk build folders."""
        ...

    async def deploy(self, document: object) -> DeploymentResult:
        """Apply a deployment document (or its JSON form) and wait until it settled."""
        ...
