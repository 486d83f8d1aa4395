"""IPC authorization from each component's ``accessControl``, decided exactly as the nucleus decides.

A component's ``accessControl`` maps a *policy type* (the IPC service, e.g.
``aws.greengrass.ipc.mqttproxy``) to named policies of ``operations`` and ``resources``; each policy
grants the component that declares it, and nobody else. A call is allowed when one of the caller's
policies for the service lists the operation (or ``*``) and a resource pattern matches. Patterns match
with the nucleus' wildcard trie: ``*`` matches any characters (``/`` included); for MQTT-style services
(``aws.greengrass.ipc.mqttproxy``) ``+`` and ``#`` also work as MQTT wildcards where they fill a whole
topic level; ``${*}``, ``${$}`` and ``${?}`` escape a literal ``*``, ``$`` or ``?``.

The nucleus' loading quirks are kept on purpose, because they are what bites on a real device: an
unknown field in any policy (``resource`` for ``resources``) drops *all* of that component's policies;
a policy type is matched case-sensitively; ``{iot:thingName}`` is only replaced when the
``aws.greengrass.Nucleus`` configuration sets ``interpolateComponentConfiguration``. Each such problem
is logged once, with what to change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fanwatch.core.config import ConfigStore, without_hidden_keys
from fanwatch.errors import FanwatchError
from fanwatch.limits import IPC_OPERATIONS, MQTT_PROXY_SERVICE, NUCLEUS_COMPONENT, PUBSUB_SERVICE

__all__ = [
    "ANY",
    "CLI_SERVICE",
    "Authorizer",
    "NotAuthorizedError",
    "ResourcePattern",
]

log = logging.getLogger(__name__)

ANY = "*"
CLI_SERVICE = "aws.greengrass.Cli"
_THING_NAME_VARIABLE = "{iot:thingName}"
_POLICY_FIELDS = {"policydescription", "operations", "resources"}


def _ops(*names: str) -> frozenset[str]:
    return frozenset({ANY, *(f"aws.greengrass#{name}" for name in names)})


#: The operations each IPC service registers with the nucleus' authorization handler.
REGISTERED_OPERATIONS: Mapping[str, frozenset[str]] = {
    MQTT_PROXY_SERVICE: IPC_OPERATIONS[MQTT_PROXY_SERVICE] | {ANY},
    PUBSUB_SERVICE: IPC_OPERATIONS[PUBSUB_SERVICE] | {ANY},
    CLI_SERVICE: _ops(
        "GetComponentDetails",
        "ListComponents",
        "RestartComponent",
        "StopComponent",
        "CreateLocalDeployment",
        "GetLocalDeploymentStatus",
        "ListLocalDeployments",
        "CreateDebugPassword",
    ),
    "aws.greengrass.SecretManager": _ops("GetSecretValue"),
    "aws.greengrass.ShadowManager": _ops(
        "GetThingShadow", "UpdateThingShadow", "DeleteThingShadow", "ListNamedShadowsForThing"
    ),
    "aws.greengrass.ipc.lifecycle": _ops("PauseComponent", "ResumeComponent"),
    "aws.greengrass.clientdevices.Auth": _ops(
        "SubscribeToCertificateUpdates",
        "VerifyClientDeviceIdentity",
        "GetClientDeviceAuthToken",
        "AuthorizeClientDeviceAction",
    ),
    "aws.greengrass.ipc.componentMetric": _ops("PutComponentMetric"),
}


class NotAuthorizedError(FanwatchError):
    """The caller holds no policy that allows the operation on the resource."""


class _Node:
    """One node of the nucleus' wildcard trie (``WildcardTrie``), matched the same way."""

    __slots__ = (
        "children",
        "is_mqtt_wildcard",
        "is_terminal",
        "is_terminal_level",
        "is_wildcard",
        "match_all",
    )

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.is_terminal = False
        self.is_terminal_level = False
        self.is_wildcard = False
        self.is_mqtt_wildcard = False
        self.match_all = False

    def child(self, key: str) -> _Node:
        return self.children.setdefault(key, _Node())

    def add(self, subject: str, terminal: bool) -> _Node:
        if not subject:
            self.is_terminal |= terminal
            return self
        current: _Node = self
        literal: list[str] = []
        i, end = 0, len(subject) - 1
        while i <= end:
            char = subject[i]
            after_separator = i > 0 and subject[i - 1] == "/"
            if char == "*":
                current = current.add("".join(literal), False).child("*")
                current.is_wildcard = True
                if i == end:
                    current.is_terminal = terminal
                    return current
                return current.add(subject[i + 1 :], True)
            if char == "#":
                level = current.add("".join(literal), False)
                current = level.child("#")
                if i == end:
                    current.is_terminal = True
                    if after_separator:
                        current.is_mqtt_wildcard = current.match_all = True
                        level.is_terminal_level = True
                    return current
                return current.add(subject[i + 1 :], True)
            if char == "+":
                current = current.add("".join(literal), False).child("+")
                if i == end:
                    current.is_terminal = True
                    current.is_mqtt_wildcard |= after_separator
                    return current
                if after_separator and subject[i + 1] == "/":
                    current.is_mqtt_wildcard = True
                return current.add(subject[i + 1 :], True)
            if char == "$" and (escaped := _escaped_char(subject[i:])):
                literal.append(escaped)
                i += 4
                continue
            literal.append(char)
            i += 1
        current = current.child("".join(literal))
        current.is_terminal |= terminal
        return current

    def matches(self, text: str, mqtt: bool) -> bool:
        if (self.is_wildcard and self.is_terminal) or (self.is_terminal and not text):
            return True
        if mqtt and self.is_mqtt_wildcard and (self.match_all or (self.is_terminal and "/" not in text)):
            return True
        candidates: list[tuple[str, _Node]] = []
        for key, node in self.children.items():
            if (node.is_wildcard and key == "*") or (mqtt and node.is_mqtt_wildcard and key in ("+", "#")):
                if node.matches(text, mqtt):
                    return True
                continue
            if text.startswith(key) and node.matches(text[len(key) :], mqtt):
                return True
            if mqtt and node.is_terminal_level:
                # "abc/#" also matches "abc": the level before "#" may end the topic
                level_key = key[:-1]
                if text == level_key:
                    return True
                if text.endswith(level_key):
                    key = level_key
            if self.is_wildcard:
                candidates.extend((rest, node) for rest in _suffixes_after(text, key, within_level=False))
            if mqtt and self.is_mqtt_wildcard:
                candidates.extend((rest, node) for rest in _suffixes_after(text, key, within_level=True))
        wildcard = self.is_wildcard or (mqtt and self.is_mqtt_wildcard)
        return wildcard and any(node.matches(rest, mqtt) for rest, node in candidates)


def _suffixes_after(text: str, key: str, *, within_level: bool) -> Iterable[str]:
    """What remains of ``text`` after each occurrence of ``key`` that a wildcard may skip to; a ``+``
    (``within_level``) may not skip over a ``/``."""
    at = text.find(key)
    while 0 <= at < len(text) and not (within_level and "/" in text[:at]):
        yield text[at + len(key) :]
        at = text.find(key, at + 1)


def _escaped_char(text: str) -> str:
    """The character of a ``${c}`` escape at the start of ``text``, or '' if there is none."""
    if len(text) >= 4 and text[0] == "$" and text[1] == "{" and text[3] == "}":
        return text[2]
    return ""


def _resource_problem(resource: str) -> str | None:
    """Why the nucleus refuses a resource pattern, or None when it accepts it."""
    if not resource:
        return "a resource cannot be empty"
    i = 0
    while i < len(resource):
        if resource.startswith("${", i):
            escaped = _escaped_char(resource[i:])
            if escaped not in ("*", "$", "?"):
                return f"invalid escape sequence in {resource!r}: use ${{*}}, ${{$}} or ${{?}}"
            i += 4
            continue
        if resource[i] == "?":
            return f"'?' in {resource!r} is not a wildcard: escape it as ${{?}}"
        i += 1
    return None


class ResourcePattern:
    """The resource patterns of one set of policies, matched as the nucleus matches them."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self._root = _Node()
        for pattern in patterns:
            self.add(pattern)

    def add(self, pattern: str) -> None:
        root = self._root
        if pattern == "*":
            node = root.child("*")
            node.match_all = node.is_terminal = node.is_wildcard = True
            return
        if pattern == "#":
            node = root.child("#")
            node.match_all = node.is_terminal = node.is_mqtt_wildcard = True
            return
        if pattern == "+":
            node = root.child("+")
            node.is_terminal = node.is_mqtt_wildcard = True
            return
        if pattern.startswith("+/"):
            node = root.child("+")
            node.is_mqtt_wildcard = True
            node.add(pattern[1:], True)
        root.add(pattern, True)

    def matches(self, resource: str | None, *, mqtt: bool = False) -> bool:
        """Whether ``resource`` matches; a call without a resource (None) matches any pattern set."""
        return resource is None or self._root.matches(resource, mqtt)


@dataclass(slots=True)
class _Grants:
    """What one component's accessControl grants it: (policy type, operation) -> resource patterns."""

    by_operation: dict[tuple[str, str], ResourcePattern] = field(default_factory=dict)
    uses_thing_name_literally: bool = False


class Authorizer:
    """Decides IPC calls from the ``accessControl`` in each component's configuration.

    Policies are re-read whenever a component's ``accessControl`` changes (a deployment or a merge),
    as the nucleus reloads them, so a call is always judged against the configuration in force.
    """

    def __init__(self, config: ConfigStore, *, thing_name: str) -> None:
        self._config = config
        self._thing_name = thing_name
        self._cache: dict[str, tuple[Any, bool, _Grants]] = {}

    def check(
        self, component: str, service: str, operation: str, resource: str | None, *, mqtt: bool = False
    ) -> None:
        """Raise NotAuthorizedError unless ``component`` may call ``operation`` of ``service`` on
        ``resource``; every refusal is logged with the component, operation and resource."""
        grants = self._grants(component)
        allowed = operation in REGISTERED_OPERATIONS.get(service, ()) and any(
            patterns.matches(resource, mqtt=mqtt)
            for key in ((service, operation), (service, ANY))
            if (patterns := grants.by_operation.get(key)) is not None
        )
        if allowed:
            return
        message = (
            f"Principal {component} is not authorized to perform {service}:{operation} on resource {resource}"
        )
        hint = ""
        if grants.uses_thing_name_literally:
            hint = (
                f" (its accessControl uses {_THING_NAME_VARIABLE}, which the nucleus replaces only when "
                f"{NUCLEUS_COMPONENT} sets interpolateComponentConfiguration: true)"
            )
        log.warning("IPC call denied: %s%s", message, hint)
        raise NotAuthorizedError(message)

    def _interpolates(self) -> bool:
        try:
            flag = self._config.get(NUCLEUS_COMPONENT, ["interpolateComponentConfiguration"])
        except KeyError:
            return False
        return flag is True or str(flag).lower() == "true"

    def _grants(self, component: str) -> _Grants:
        try:
            raw = self._config.get(component, ["accessControl"])
        except KeyError:
            raw = None
        interpolate = self._interpolates()
        cached = self._cache.get(component)
        if cached is not None and cached[0] == raw and cached[1] == interpolate:
            return cached[2]
        grants = self._compile(component, raw, interpolate)
        self._cache[component] = (raw, interpolate, grants)
        return grants

    def _compile(self, component: str, raw: Any, interpolate: bool) -> _Grants:
        grants = _Grants()
        if raw is None:
            return grants
        try:
            policies = _parse_access_control(raw)
        except ValueError as exc:
            log.error("%s: its whole accessControl is ignored, as the nucleus ignores it: %s", component, exc)
            return grants
        for service, by_id in policies.items():
            if service not in REGISTERED_OPERATIONS:
                log.error(
                    "%s: accessControl names %r, which is no IPC service (names are case-sensitive)",
                    component,
                    service,
                )
                continue
            for policy_id, (operations, resources) in by_id.items():
                unknown = sorted(operations - REGISTERED_OPERATIONS[service])
                if unknown:
                    log.error(
                        "%s: policy %s lists %s, which %s does not have",
                        component,
                        policy_id,
                        ", ".join(unknown),
                        service,
                    )
                patterns = [
                    grants.by_operation.setdefault((service, op), ResourcePattern()) for op in operations
                ]
                for resource in resources:
                    if _THING_NAME_VARIABLE in resource:
                        if interpolate:
                            resource = resource.replace(_THING_NAME_VARIABLE, self._thing_name)
                        else:
                            grants.uses_thing_name_literally = True
                    problem = _resource_problem(resource)
                    if problem:
                        log.error("%s: policy %s: resource skipped: %s", component, policy_id, problem)
                        continue
                    for pattern in patterns:
                        pattern.add(resource)
        return grants


def _parse_access_control(raw: Any) -> dict[str, dict[str, tuple[frozenset[str], list[str]]]]:
    """service -> policy id -> (operations, resources). Raises ValueError where the nucleus' JSON
    mapping fails; a policy without operations is skipped, as the nucleus skips it."""
    if isinstance(raw, str):  # a leaf holding JSON, which the nucleus also accepts
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"accessControl is a string but not JSON: {exc}") from exc
    raw = without_hidden_keys(raw)
    if not isinstance(raw, Mapping):
        raise ValueError("accessControl must map policy types to policies")
    parsed: dict[str, dict[str, tuple[frozenset[str], list[str]]]] = {}
    for service, by_id in raw.items():
        if not isinstance(by_id, Mapping):
            raise ValueError(f"{service}: must map policy ids to policies")
        parsed[service] = {}
        for policy_id, policy in by_id.items():
            if not isinstance(policy, Mapping):
                raise ValueError(f"{service}.{policy_id}: a policy must be a mapping")
            fields = {str(k).lower(): v for k, v in policy.items()}
            unknown = sorted(str(k) for k in policy if str(k).lower() not in _POLICY_FIELDS)
            if unknown:
                raise ValueError(
                    f"{service}.{policy_id}: unrecognized field {', '.join(map(repr, unknown))} "
                    "(a policy has policyDescription, operations and resources)"
                )
            operations = _string_list(fields.get("operations"), f"{service}.{policy_id}.operations")
            resources = _string_list(fields.get("resources"), f"{service}.{policy_id}.resources")
            if not operations:
                log.error("%s.%s: policy operations are missing or empty: policy skipped", service, policy_id)
                continue
            parsed[service][policy_id] = (frozenset(operations), resources)
    return parsed


def _string_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list, not {type(value).__name__} {value!r}")
    if any(isinstance(item, Mapping | list) or item is None for item in value):
        raise ValueError(f"{where} must hold strings")
    return [str(item).lower() if isinstance(item, bool) else str(item) for item in value]
