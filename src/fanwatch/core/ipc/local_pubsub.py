"""Local publish/subscribe between components, with the nucleus' topic and receive-mode rules.

Topics are split on ``/`` the way Java's ``String.split`` does it (trailing empty levels vanish, so
``a/b/`` is the same topic as ``a/b``). A subscription may use ``+`` for one level and ``#`` for any
number of *further* levels: unlike MQTT, ``a/#`` does not match ``a`` itself. A publish topic may hold
no wildcard at all (``+``, ``#`` or ``*``). By default a subscriber to a wildcard filter does not hear
its own messages (``RECEIVE_MESSAGES_FROM_OTHERS``) and a subscriber to a plain topic does.

Delivery is synchronous, in publish order, on the publisher's thread; a subscriber that needs another
thread or loop hands the message over itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fanwatch.errors import FanwatchError

__all__ = [
    "InvalidTopicError",
    "LocalMessage",
    "LocalPubSub",
    "MessageCallback",
    "ReceiveMode",
    "is_wildcard",
    "topic_levels",
]


class ReceiveMode(StrEnum):
    """Whether a subscriber also hears its own messages (the IPC model's values); without one, a wildcard
    filter gets RECEIVE_MESSAGES_FROM_OTHERS and a plain topic RECEIVE_ALL_MESSAGES."""

    RECEIVE_ALL_MESSAGES = "RECEIVE_ALL_MESSAGES"
    RECEIVE_MESSAGES_FROM_OTHERS = "RECEIVE_MESSAGES_FROM_OTHERS"


class InvalidTopicError(FanwatchError, ValueError):
    """A topic the nucleus refuses (the message is the nucleus' own)."""


@dataclass(frozen=True, slots=True)
class LocalMessage:
    """One published message: a JSON object or raw bytes, never both."""

    topic: str
    json: dict[str, Any] | None = None
    binary: bytes | None = None

    def __post_init__(self) -> None:
        if (self.json is None) == (self.binary is None):
            raise ValueError("a local message carries either a JSON object or bytes")


MessageCallback = Callable[[LocalMessage], None]


def topic_levels(topic: str) -> list[str]:
    """``topic.split('/')`` as Java splits: trailing empty levels are dropped."""
    levels = topic.split("/")
    if len(levels) == 1:
        return levels
    while levels and not levels[-1]:
        levels.pop()
    return levels


def is_wildcard(topic: str) -> bool:
    """Whether ``topic`` uses ``+`` as a level or ``#`` as its last level."""
    levels = topic_levels(topic)
    return any(
        level == "+" or (level == "#" and index == len(levels) - 1) for index, level in enumerate(levels)
    )


@dataclass(eq=False, slots=True)
class _Subscriber:
    component: str
    mode: ReceiveMode
    callback: MessageCallback


@dataclass(slots=True)
class _Level:
    children: dict[str, _Level] = field(default_factory=dict)
    subscribers: list[_Subscriber] = field(default_factory=list)

    def matching(self, level: str, found: list[_Subscriber], paths: list[_Level]) -> None:
        for key in (level, "+", "#"):
            child = self.children.get(key)
            if child is not None:
                paths.append(child)
                if key == "#":
                    found.extend(child.subscribers)


class LocalPubSub:
    """The nucleus' local pub/sub bus for one core."""

    def __init__(self) -> None:
        self._root = _Level()
        self._lock = threading.Lock()

    def subscribe(
        self,
        topic: str,
        component: str,
        callback: MessageCallback,
        *,
        receive_mode: ReceiveMode | None = None,
    ) -> Callable[[], None]:
        """Deliver every message published on a topic ``topic`` matches; returns the unsubscribe."""
        if not topic:
            raise InvalidTopicError("Subscribe topic must not be empty")
        mode = receive_mode or (
            ReceiveMode.RECEIVE_MESSAGES_FROM_OTHERS
            if is_wildcard(topic)
            else ReceiveMode.RECEIVE_ALL_MESSAGES
        )
        subscriber = _Subscriber(component, mode, callback)
        levels = topic_levels(topic)
        with self._lock:
            node = self._root
            for level in levels:
                node = node.children.setdefault(level, _Level())
            node.subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                self._remove(self._root, levels, subscriber)

        return unsubscribe

    def publish(self, message: LocalMessage, component: str) -> int:
        """Deliver ``message`` from ``component``; returns how many subscribers received it."""
        topic = message.topic
        if any(wildcard in topic for wildcard in ("+", "#", "*")):
            raise InvalidTopicError("Publish topic must not contain a wildcard.")
        receivers = [
            s
            for s in self._subscribers(topic)
            if not (s.component == component and s.mode is ReceiveMode.RECEIVE_MESSAGES_FROM_OTHERS)
        ]
        for subscriber in receivers:
            subscriber.callback(message)
        return len(receivers)

    def _subscribers(self, topic: str) -> list[_Subscriber]:
        levels = topic_levels(topic)
        found: list[_Subscriber] = []
        with self._lock:
            paths = [self._root]
            for level in levels:
                next_paths: list[_Level] = []
                for path in paths:
                    path.matching(level, found, next_paths)
                paths = next_paths
            for path in paths if levels else []:
                found.extend(path.subscribers)
        unique: dict[int, _Subscriber] = {id(s): s for s in found}
        return list(unique.values())

    def _remove(self, node: _Level, levels: list[str], subscriber: _Subscriber) -> bool:
        """Remove ``subscriber`` and prune emptied levels; True when ``node`` itself became empty."""
        if not levels:
            if subscriber in node.subscribers:
                node.subscribers.remove(subscriber)
        else:
            child = node.children.get(levels[0])
            if child is not None and self._remove(child, levels[1:], subscriber):
                del node.children[levels[0]]
        return not node.children and not node.subscribers
