"""Recipe variables: ``{namespace:key}`` and ``{component:namespace:key}``, as the nucleus replaces them.

Same-component forms are replaced first, then the cross-component ones, which only resolve for a
*direct* dependency. A variable the nucleus cannot resolve (unknown namespace, missing configuration
value, a component that is not a direct dependency) stays in the text unchanged and is reported, so
the caller can log it: that unchanged ``{configuration:/typo}`` reaching a script is exactly the bug
users need to see.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fanwatch.core.layout import CoreLayout

__all__ = ["Interpolator", "config_text", "resolve_pointer"]

_SAME: Final = re.compile(r"\{([.\w-]+):([^:}]*)\}")
_CROSS: Final = re.compile(r"\{([.\w-]+):([.\w-]+):([^:}]*)\}")


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901); KeyError when absent. Keys match case-insensitively,
    as the nucleus' configuration keys do."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise KeyError(pointer)
    node = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping):
            match = next((k for k in node if str(k).lower() == token.lower()), None)
            if match is None:
                raise KeyError(pointer)
            node = node[match]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise KeyError(pointer)
    return node


def config_text(value: Any) -> str:
    """A configuration value as text in a script: scalars as Jackson's ``asText`` writes them,
    containers as compact JSON with sorted keys."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


@dataclass(frozen=True, slots=True)
class Interpolator:
    """Everything recipe variables can refer to on one core during one deployment."""

    layout: CoreLayout
    thing_name: str
    versions: Mapping[str, str]  # component -> version being deployed
    configurations: Mapping[str, Mapping[str, Any]]  # component -> resolved configuration
    report: Callable[[str, str], None] = field(default=lambda component, problem: None)

    def interpolate(
        self, value: Any, component: str, dependencies: Set[str], *, system_only: bool = False
    ) -> Any:
        """``value`` (a string, or mappings and lists of them) with every resolvable variable replaced.

        ``system_only`` leaves ``{configuration:...}`` alone: how the nucleus interpolates component
        *configuration* when ``interpolateComponentConfiguration`` is on.
        """
        if isinstance(value, str):
            return self._replace(value, component, dependencies, system_only)
        if isinstance(value, Mapping):
            return {
                k: self.interpolate(v, component, dependencies, system_only=system_only)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.interpolate(v, component, dependencies, system_only=system_only) for v in value]
        return value

    def _system(self, component: str, namespace: str, key: str) -> str | None:
        version = self.versions.get(component, "")
        table: dict[tuple[str, str], Callable[[], Path | str]] = {
            ("artifacts", "path"): lambda: self.layout.artifact_path(component, version),
            ("artifacts", "decompressedPath"): lambda: self.layout.unarchived_path(component, version),
            ("work", "path"): lambda: self.layout.work_path(component),
            ("kernel", "rootPath"): lambda: self.layout.root,
            ("iot", "thingName"): lambda: self.thing_name,
        }
        found = table.get((namespace, key))
        if found is None:
            return None
        value = found()
        return str(value.absolute()) if isinstance(value, Path) else value

    def _lookup(self, owner: str, namespace: str, key: str, placeholder: str, component: str) -> str | None:
        if namespace == "configuration":
            try:
                return config_text(resolve_pointer(self.configurations.get(owner, {}), key))
            except KeyError:
                self.report(component, f"{placeholder}: no configuration value at {key!r}")
                return None
        if namespace in {"artifacts", "work", "kernel", "iot"}:
            text = self._system(owner, namespace, key)
            if text is None:
                self.report(component, f"{placeholder}: unknown key {key!r} in namespace {namespace!r}")
            return text
        self.report(component, f"{placeholder}: unrecognized namespace {namespace!r}")
        return None

    def _replace(self, text: str, component: str, dependencies: Set[str], system_only: bool) -> str:
        for match in list(_SAME.finditer(text)):
            namespace, key = match.groups()
            if system_only and namespace == "configuration":
                continue
            replacement = self._lookup(component, namespace, key, match.group(), component)
            if replacement is not None:
                text = text.replace(match.group(), replacement)
        for match in list(_CROSS.finditer(text)):
            target, namespace, key = match.groups()
            if system_only and namespace == "configuration":
                continue
            if target not in dependencies:
                self.report(component, f"{match.group()}: {target} is not a direct dependency of {component}")
                continue
            replacement = self._lookup(target, namespace, key, match.group(), component)
            if replacement is not None:
                text = text.replace(match.group(), replacement)
        return text
