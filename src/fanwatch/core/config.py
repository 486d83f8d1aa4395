"""Per-component configuration trees, with the nucleus' merge rules and change subscriptions.

The nucleus keeps configuration as a tree of interior nodes and leaves; every leaf carries the time it
was last modified, and keys match case-insensitively while keeping the case they were first written in.
A write with a timestamp older than a leaf's is ignored for that leaf (a component's
``UpdateConfiguration`` cannot overwrite a newer value), and a write whose timestamp is older than the
newest leaf under its key path is refused with :class:`StaleUpdateError` after the newer parts have
been applied, exactly as ``ConfigStoreIPCEventStreamAgent`` does. Lists and scalars are leaves; only
mappings are interior nodes.

Subscribers are called after the change, outside the store's lock, in the writer's thread: an asyncio
subscriber must hand the call over to its loop itself.

Every value is bounded (:func:`check_bounds`: depth and size) before any part of it is stored: the
nucleus sets no such limit, and a component once stored a value nested ~600 levels deep through
UpdateConfiguration, after which every read, save and deployment failed with RecursionError.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fanwatch.errors import FanwatchError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_DEPTH",
    "ConfigCallback",
    "ConfigStore",
    "ConfigurationTooLarge",
    "StaleUpdateError",
    "check_bounds",
    "without_hidden_keys",
]

#: Deepest nesting of a component's configuration (objects and lists, counted from the component's
#: root). Real configurations are a handful of levels deep; the bound keeps every recursive walk of
#: the store (reads, saves, deployments) far inside Python's recursion limit.
MAX_CONFIG_DEPTH: Final = 32
#: Largest value one write may store, counted as the length of its JSON text (without building it).
MAX_CONFIG_BYTES: Final = 1_000_000


class ConfigurationTooLarge(FanwatchError, ValueError):
    """A configuration value nested too deeply or too large to store; nothing of it was stored."""


def check_bounds(value: Any, *, depth: int = 0, where: str = "configuration") -> None:
    """Refuse ``value`` (as it would sit ``depth`` levels below a component's root) when it is nested
    deeper than :data:`MAX_CONFIG_DEPTH` or larger than :data:`MAX_CONFIG_BYTES`. Iterative: a value
    too deep for recursion is measured without recursing."""
    size = 0
    stack: list[tuple[Any, int]] = [(value, depth)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, Mapping | list | tuple):
            if level >= MAX_CONFIG_DEPTH:
                raise ConfigurationTooLarge(f"{where}: nested deeper than {MAX_CONFIG_DEPTH} levels")
            size += 2 + len(node)
            children = node.items() if isinstance(node, Mapping) else enumerate(node)
            for key, child in children:
                size += len(key) + 3 if isinstance(key, str) else 0
                stack.append((child, level + 1))
        elif isinstance(node, str):
            size += len(node) + 2
        else:
            size += 8  # a number, true, false or null: bounded without converting a huge int to text
        if size > MAX_CONFIG_BYTES:
            raise ConfigurationTooLarge(f"{where}: larger than {MAX_CONFIG_BYTES:,} bytes of JSON")


#: Receives (component, changed key path) once per changed or removed node.
ConfigCallback = Callable[[str, list[str]], None]


def without_hidden_keys(value: Any) -> Any:
    """``value`` without the keys that start with ``_``, at every level: the nucleus keeps such keys
    but never shows them (``Topics.toPOJO``), neither to GetConfiguration nor to authorization."""
    if isinstance(value, Mapping):
        return {k: without_hidden_keys(v) for k, v in value.items() if not str(k).startswith("_")}
    return value


class StaleUpdateError(FanwatchError):
    """The update's timestamp is older than the newest value under its key path (the nucleus'
    ``FailedUpdateConditionCheckError``). The parts that were newer have been applied; ``changed``
    lists them."""

    def __init__(self, message: str, changed: list[list[str]]) -> None:
        super().__init__(message)
        self.changed = changed


@dataclass(slots=True)
class _Leaf:
    name: str
    value: Any
    modtime: float

    def newest(self) -> float:
        return self.modtime

    def to_plain(self) -> Any:
        return copy.deepcopy(self.value)


@dataclass(slots=True)
class _Branch:
    name: str
    created: float
    children: dict[str, _Leaf | _Branch] = field(default_factory=dict)

    def newest(self) -> float:
        """An interior node is as new as its newest child; an empty one as new as its creation."""
        return max((child.newest() for child in self.children.values()), default=self.created)

    def to_plain(self) -> dict[str, Any]:
        return {child.name: child.to_plain() for child in self.children.values()}

    def child(self, name: str) -> _Leaf | _Branch | None:
        return self.children.get(name.lower())


@dataclass(slots=True)
class _Subscription:
    component: str
    key_path: list[str]  # as first written
    callback: ConfigCallback

    def hears(self, path: list[str]) -> list[str] | None:
        """The path this subscriber hears of a change: the change itself if it is at or below the
        subscription, the subscribed path if the change removed an ancestor of it, else nothing."""
        mine = [k.lower() for k in self.key_path]
        theirs = [k.lower() for k in path]
        if theirs[: len(mine)] == mine:
            return list(path)
        if mine[: len(theirs)] == theirs:
            return list(self.key_path)
        return None


def _same_value(a: Any, b: Any) -> bool:
    """Equality as Java's ``Objects.equals`` sees JSON values: ``1``, ``1.0`` and ``True`` all differ."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class ConfigStore:
    """Every component's configuration, as the nucleus keeps it under ``services.<name>.configuration``.

    Thread-safe: the runtime writes from deployment threads, the IPC server from its event loop.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._roots: dict[str, _Branch] = {}
        self._subscriptions: list[_Subscription] = []
        self._lock = threading.RLock()

    # -- reading ---------------------------------------------------------------------------------

    def components(self) -> list[str]:
        with self._lock:
            return sorted(self._roots)

    def get(self, component: str, key_path: Sequence[str] = ()) -> Any:
        """A deep copy of the value at ``key_path`` (a dict for an interior node); KeyError if absent."""
        with self._lock:
            return self._find(component, key_path).to_plain()

    def resolve(self, component: str, key_path: Sequence[str] = ()) -> list[str]:
        """``key_path`` spelled as the keys were first written (keys match case-insensitively)."""
        with self._lock:
            root = self._root(component)
            resolved: list[str] = []
            node: _Leaf | _Branch = root
            for key in key_path:
                found = node.child(key) if isinstance(node, _Branch) else None
                if found is None:
                    raise KeyError(self._describe(component, key_path))
                resolved.append(found.name)
                node = found
            return resolved

    def modified_at(self, component: str, key_path: Sequence[str] = ()) -> float:
        """When the newest value under ``key_path`` was written (seconds since the epoch)."""
        with self._lock:
            return self._find(component, key_path).newest()

    # -- writing ---------------------------------------------------------------------------------

    def set_tree(self, component: str, tree: Mapping[str, Any], *, timestamp: float | None = None) -> None:
        """Replace a component's whole configuration (a deployment's resolved configuration).

        Keys missing from ``tree`` are removed; subscribers hear of every path that changed.
        """
        check_bounds(tree, where=f"{component} configuration")
        when = self._clock() if timestamp is None else timestamp
        with self._lock:
            root = self._roots.setdefault(component, _Branch(component, when))
            changed: list[list[str]] = []
            self._update(root, [], tree, when, replace=True, changed=changed)
        self._notify(component, changed)

    def merge(
        self,
        component: str,
        key_path: Sequence[str],
        value: Mapping[str, Any],
        *,
        timestamp: float | None = None,
    ) -> list[list[str]]:
        """Merge ``value`` into the node at ``key_path`` (``UpdateConfiguration``); return changed paths.

        A key path that does not exist yet is created and written with the current time, whatever
        ``timestamp`` says, as the nucleus does. A leaf at ``key_path`` becomes an interior node.
        Raises KeyError for an unknown component, ValueError when the path runs through a leaf or the
        value is out of bounds (:class:`ConfigurationTooLarge`, before anything is stored), and
        StaleUpdateError when ``timestamp`` is older than the newest value under ``key_path``.
        """
        if not isinstance(value, Mapping):
            raise ValueError("the value to merge must be a mapping")
        check_bounds(value, depth=len(key_path), where=f"{component} configuration")
        now = self._clock()
        changed: list[list[str]] = []
        with self._lock:
            root = self._root(component)
            parent, resolved, node = self._walk_creating(root, key_path, now)
            when = now if node is None or timestamp is None else timestamp
            if node is None or isinstance(node, _Leaf):
                self._update(parent, resolved[:-1], {key_path[-1]: dict(value)}, when, False, changed)
            else:
                self._update(node, resolved, value, when, replace=False, changed=changed)
            newest = self._find(component, key_path).newest()
        self._notify(component, changed)
        if when < newest:
            raise StaleUpdateError(
                "Proposed timestamp is older than the config's latest modified timestamp", changed
            )
        return changed

    def remove_component(self, component: str) -> None:
        """Forget a component that a deployment removed (its subscribers hear nothing more)."""
        with self._lock:
            self._roots.pop(component, None)

    # -- subscriptions ---------------------------------------------------------------------------

    def subscribe(
        self, component: str, key_path: Sequence[str], callback: ConfigCallback
    ) -> Callable[[], None]:
        """Call ``callback(component, path)`` for every change at or below ``key_path``.

        The key path must exist (KeyError otherwise), as for ``SubscribeToConfigurationUpdate``; when a
        removal takes away the subscribed node itself, the subscriber hears the subscribed path.
        Returns a function that ends the subscription.
        """
        with self._lock:
            subscription = _Subscription(component, self.resolve(component, key_path), callback)
            self._subscriptions.append(subscription)

        def unsubscribe() -> None:
            with self._lock:
                if subscription in self._subscriptions:
                    self._subscriptions.remove(subscription)

        return unsubscribe

    # -- internals -------------------------------------------------------------------------------

    def _root(self, component: str) -> _Branch:
        root = self._roots.get(component)
        if root is None:
            raise KeyError(f"component {component!r} has no configuration")
        return root

    def _find(self, component: str, key_path: Sequence[str]) -> _Leaf | _Branch:
        node: _Leaf | _Branch = self._root(component)
        for key in key_path:
            found = node.child(key) if isinstance(node, _Branch) else None
            if found is None:
                raise KeyError(self._describe(component, key_path))
            node = found
        return node

    @staticmethod
    def _describe(component: str, key_path: Sequence[str]) -> str:
        return f"{component}: no configuration at /{'/'.join(key_path)}"

    @staticmethod
    def _walk_creating(
        root: _Branch, key_path: Sequence[str], now: float
    ) -> tuple[_Branch, list[str], _Leaf | _Branch | None]:
        """The parent of ``key_path`` (creating missing interior nodes), the resolved path, and the
        node at ``key_path`` or None. The root is its own parent for an empty path."""
        parent = root
        resolved: list[str] = []
        for index, key in enumerate(key_path):
            found = parent.child(key)
            if index == len(key_path) - 1:
                resolved.append(found.name if found else key)
                return parent, resolved, found
            if found is None:
                found = parent.children[key.lower()] = _Branch(key, now)
            elif isinstance(found, _Leaf):
                raise ValueError(f"/{'/'.join([*resolved, found.name])} is a value, not a container")
            resolved.append(found.name)
            parent = found
        return parent, resolved, root

    def _update(
        self,
        branch: _Branch,
        path: list[str],
        values: Mapping[str, Any],
        when: float,
        replace: bool,
        changed: list[list[str]],
    ) -> None:
        """Apply ``values`` under ``branch`` (MERGE, or REPLACE which also drops missing keys)."""
        if replace:
            wanted = {str(key).lower() for key in values}
            for lowered in [k for k in branch.children if k not in wanted]:
                removed = branch.children.pop(lowered)
                changed.append([*path, removed.name])
        for raw_key, value in values.items():
            key = str(raw_key)
            existing = branch.child(key)
            name = existing.name if existing else key
            child_path = [*path, name]
            if isinstance(value, Mapping):
                if not isinstance(existing, _Branch):
                    if existing is not None:
                        changed.append(child_path)
                    existing = branch.children[key.lower()] = _Branch(name, when)
                self._update(existing, child_path, value, when, replace, changed)
            elif existing is None or isinstance(existing, _Branch):
                branch.children[key.lower()] = _Leaf(name, copy.deepcopy(value), when)
                changed.append(child_path)
            elif when >= existing.modtime:
                if not _same_value(existing.value, value):
                    existing.value = copy.deepcopy(value)
                    changed.append(child_path)
                existing.modtime = when

    def _notify(self, component: str, changed: list[list[str]]) -> None:
        if not changed:
            return
        with self._lock:
            subscriptions = [s for s in self._subscriptions if s.component == component]
        for subscription in subscriptions:
            for path in changed:
                heard = subscription.hears(path)
                if heard is not None:
                    subscription.callback(component, heard)
