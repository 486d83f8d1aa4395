"""The components wired together in one process, for the demo and the functional tests.

:class:`InProcessNucleus` routes local pub/sub between the components (MQTT wildcards included),
records what they publish to IoT Core, holds their configuration and notifies them of changes, the
way the nucleus does over IPC. It stands in only until a test or demo runs the components on
fanwatch's local Greengrass core, which speaks the real IPC protocol.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fanwatch.edge.ipc import MessageHandler, UpdateHandler

__all__ = ["InProcessBus", "InProcessNucleus", "topic_matches"]


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the rest)."""
    want, have = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(want):
        if part == "#":
            return True
        if i >= len(have) or (part != "+" and part != have[i]):
            return False
    return len(want) == len(have)


def _merge(into: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


@dataclass
class InProcessNucleus:
    """The stand-in nucleus of the module docstring; ``iot``, ``local`` and ``states`` record what the
    components published and reported, for the test or demo to read."""

    iot: list[tuple[str, bytes]] = field(default_factory=list)
    local: list[tuple[str, bytes]] = field(default_factory=list)
    states: dict[str, list[str]] = field(default_factory=dict)
    _subscriptions: list[tuple[str, MessageHandler]] = field(default_factory=list)
    _configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _watchers: dict[str, list[UpdateHandler]] = field(default_factory=dict)

    def bus(self, component: str, configuration: Mapping[str, Any]) -> InProcessBus:
        self._configs[component] = copy.deepcopy(dict(configuration))
        return InProcessBus(self, component)

    def merge_configuration(self, component: str, changes: Mapping[str, Any]) -> None:
        """A deployment's MERGE of ``changes`` into the component's configuration."""
        _merge(self._configs[component], changes)
        for handler in self._watchers.get(component, []):
            handler()

    def configuration(self, component: str) -> dict[str, Any]:
        return copy.deepcopy(self._configs[component])

    def watch(self, component: str, handler: UpdateHandler) -> None:
        self._watchers.setdefault(component, []).append(handler)

    def subscribe(self, topic_filter: str, handler: MessageHandler) -> None:
        self._subscriptions.append((topic_filter, handler))

    def publish_local(self, topic: str, payload: bytes) -> None:
        self.local.append((topic, payload))
        for topic_filter, handler in list(self._subscriptions):
            if topic_matches(topic_filter, topic):
                handler(topic, payload)


@dataclass
class InProcessBus:
    """One component's view of the :class:`InProcessNucleus` (an :class:`~fanwatch.edge.ipc.EdgeBus`)."""

    nucleus: InProcessNucleus
    component: str

    def publish_local(self, topic: str, payload: bytes) -> None:
        self.nucleus.publish_local(topic, payload)

    def subscribe_local(self, topic: str, handler: MessageHandler) -> None:
        self.nucleus.subscribe(topic, handler)

    def publish_iot(self, topic: str, payload: bytes) -> None:
        self.nucleus.iot.append((topic, payload))

    def get_configuration(self) -> Mapping[str, Any]:
        return self.nucleus.configuration(self.component)

    def on_configuration_update(self, handler: UpdateHandler) -> None:
        self.nucleus.watch(self.component, handler)

    def report_state(self, state: str) -> None:
        self.nucleus.states.setdefault(self.component, []).append(state)

    def close(self) -> None:
        """Nothing to release in-process."""
