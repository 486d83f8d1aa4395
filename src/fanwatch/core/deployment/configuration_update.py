"""A deployment's ``configurationUpdate`` (RESET and MERGE), resolved as the nucleus resolves it.

``KernelConfigResolver.resolveConfigurationToApply``: start from the component's *running*
configuration (so values survive a version change), remove every RESET path (``""`` resets the whole
document), fill in the recipe's DefaultConfiguration only where no value exists, then apply MERGE,
which overwrites. Lists and scalars are values, only mappings merge; keys match case-insensitively.

That first step is why keys go stale: a key that version 1 defaulted and version 2 dropped stays in
the running configuration until a deployment RESETs it. :func:`stale_keys` finds them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fanwatch.core.config import check_bounds

__all__ = ["ConfigurationUpdate", "parse_pointer", "pointer_for", "resolve_configuration", "stale_keys"]


def parse_pointer(pointer: str) -> list[str]:
    """RFC 6901 tokens of a JSON pointer (``""`` is the whole document); ValueError when malformed."""
    if not isinstance(pointer, str):
        raise ValueError(f"a JSON pointer must be a string, got {type(pointer).__name__}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON pointer: it must be empty or start with '/'")
    tokens = pointer[1:].split("/")
    for token in tokens:
        stripped = token.replace("~0", "").replace("~1", "")
        if "~" in stripped:
            raise ValueError(f"{pointer!r} is not a JSON pointer: '~' must be followed by 0 or 1")
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def pointer_for(path: Sequence[str]) -> str:
    """The JSON pointer to ``path`` (``~`` and ``/`` escaped as RFC 6901 says), the inverse of
    :func:`parse_pointer`: how :func:`stale_keys` names a key for a RESET."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


@dataclass(frozen=True, slots=True)
class ConfigurationUpdate:
    """What a deployment asks of one component's configuration."""

    merge: Mapping[str, Any] | None = None
    reset: tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: object, where: str = "configurationUpdate") -> ConfigurationUpdate:
        """Read ``{"merge": ..., "reset": [...]}``; ``merge`` may be an object or a JSON string (the
        Greengrass CreateDeployment API sends a string). Keys match case-insensitively."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object with merge and/or reset")
        fields = {str(k).lower(): v for k, v in data.items()}
        unknown = set(fields) - {"merge", "reset"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; expected merge and reset")
        merge = fields.get("merge")
        if isinstance(merge, str):
            try:
                merge = json.loads(merge)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}.merge: not valid JSON ({exc})") from None
            except RecursionError:
                raise ValueError(f"{where}.merge: nested too deeply") from None
        if merge is not None and not isinstance(merge, Mapping):
            raise ValueError(f"{where}.merge: expected a JSON object, got {type(merge).__name__}")
        if merge is not None:
            check_bounds(merge, where=f"{where}.merge")  # before the deployment touches anything
        reset = fields.get("reset") or []
        if not isinstance(reset, list):
            raise ValueError(f"{where}.reset: expected a list of JSON pointers")
        for index, pointer in enumerate(reset):
            try:
                tokens = parse_pointer(pointer)
            except ValueError as exc:
                raise ValueError(f"{where}.reset[{index}]: {exc}") from None
            if any(t.isdigit() for t in tokens):
                # the nucleus refuses to reset an element of a list; RESET the list itself instead
                raise ValueError(f"{where}.reset[{index}]: {pointer!r} points into a list; reset the list")
        return cls(merge=copy.deepcopy(dict(merge)) if merge is not None else None, reset=tuple(reset))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.merge is not None:
            out["merge"] = copy.deepcopy(dict(self.merge))
        if self.reset:
            out["reset"] = list(self.reset)
        return out


def _key(mapping: Mapping[str, Any], name: str) -> str | None:
    """The key of ``mapping`` that ``name`` matches, case-insensitively."""
    lowered = name.lower()
    return next((k for k in mapping if str(k).lower() == lowered), None)


def _remove(tree: dict[str, Any], path: Sequence[str]) -> None:
    node: Any = tree
    for token in path[:-1]:
        key = _key(node, token) if isinstance(node, dict) else None
        if key is None:
            return
        node = node[key]
    if isinstance(node, dict):
        key = _key(node, path[-1])
        if key is not None:
            del node[key]


def _fill_defaults(tree: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    """Defaults never overwrite an existing value (the nucleus merges them with timestamp 1)."""
    for name, value in defaults.items():
        key = _key(tree, name)
        if key is None:
            tree[name] = copy.deepcopy(value)
        elif isinstance(tree[key], dict) and isinstance(value, Mapping):
            _fill_defaults(tree[key], value)


def _merge(tree: dict[str, Any], update: Mapping[str, Any]) -> None:
    for name, value in update.items():
        key = _key(tree, name) or name
        if isinstance(value, Mapping):
            if not isinstance(tree.get(key), dict):
                tree[key] = {}
            _merge(tree[key], value)
        else:
            tree[key] = copy.deepcopy(value)


def resolve_configuration(
    running: Mapping[str, Any] | None, defaults: Mapping[str, Any], update: ConfigurationUpdate | None
) -> dict[str, Any]:
    """The configuration a component has after a deployment (see the module docstring)."""
    tree: dict[str, Any] = copy.deepcopy(dict(running or {}))
    update = update or ConfigurationUpdate()
    for pointer in update.reset:
        path = parse_pointer(pointer)
        if not path:
            tree = {}
        else:
            _remove(tree, path)
    _fill_defaults(tree, defaults)
    if update.merge:
        _merge(tree, update.merge)
    return tree


def stale_keys(effective: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(JSON pointer, value)`` of every key in ``effective`` that DefaultConfiguration does not have.

    Only the topmost missing key of a subtree is listed: resetting it removes everything below.
    """
    found: list[tuple[str, Any]] = []

    def visit(node: Mapping[str, Any], default: Mapping[str, Any] | None, path: list[str]) -> None:
        for name, value in node.items():
            child_path = [*path, str(name)]
            key = None if default is None else _key(default, child_path[-1])
            if key is None:
                found.append((pointer_for(child_path), copy.deepcopy(value)))
            elif isinstance(value, Mapping):
                below = default[key] if default is not None else None
                visit(value, below if isinstance(below, Mapping) else None, child_path)

    visit(effective, defaults, [])
    return found
