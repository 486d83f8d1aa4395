"""Core devices as the Greengrass service sees them: what their fleet status messages last said.

A Greengrass nucleus publishes a *fleet status* message to
``$aws/things/<thing>/greengrassv2/health/json`` when it starts, after each deployment, when a
component becomes BROKEN and at a regular interval (24 h by default). The service keeps the last one
per device: that is ``GetCoreDevice``'s status (HEALTHY, or UNHEALTHY when a component is BROKEN or
ERRORED), its ``lastStatusUpdateTimestamp``, and ``ListInstalledComponents``. The local devices send
the same message, with the same fields, through the IoT data plane's Publish.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fanwatch.core.ports import ComponentState
from fanwatch.fleet.controlplane.restjson import ApiError
from fanwatch.fleet.states import DeviceHealth

__all__ = ["FLEET_STATUS_TOPIC", "CoreDevice", "DeviceBook"]

#: The topic a nucleus publishes its fleet status on (``{thing}`` is its thing name).
FLEET_STATUS_TOPIC: Final = "$aws/things/{thing}/greengrassv2/health/json"
_TOPIC: Final = re.compile(r"^\$aws/things/([^/]+)/greengrassv2/health/json$")
_STATES: Final = frozenset(ComponentState)


@dataclass(slots=True)
class InstalledComponent:
    """A component on a core device as its last fleet status report said, as ListInstalledComponents
    answers."""

    name: str
    version: str
    state: str
    root: bool
    changed: float
    reported: float
    source: str
    details: str = ""
    codes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "componentName": self.name,
            "componentVersion": self.version,
            "lifecycleState": self.state,
            "isRoot": self.root,
            "lastStatusChangeTimestamp": dt.datetime.fromtimestamp(self.changed, dt.UTC),
            "lastReportedTimestamp": dt.datetime.fromtimestamp(self.reported, dt.UTC),
        }
        if self.source:
            out["lastInstallationSource"] = self.source
        if self.details:
            out["lifecycleStateDetails"] = self.details[:1000]
        if self.codes:
            out["lifecycleStatusCodes"] = list(self.codes)
        return out


@dataclass(slots=True)
class CoreDevice:
    """A core device as its fleet status reports keep it, as GetCoreDevice and ListCoreDevices answer."""

    thing: str
    status: str
    updated: float
    core_version: str
    platform: str
    architecture: str
    runtime: str
    components: dict[str, InstalledComponent] = field(default_factory=dict)
    sequence: int = -1

    def summary(self) -> dict[str, Any]:
        return {
            "coreDeviceThingName": self.thing,
            "status": self.status,
            "lastStatusUpdateTimestamp": dt.datetime.fromtimestamp(self.updated, dt.UTC),
            "platform": self.platform,
            "architecture": self.architecture,
            "runtime": self.runtime,
        }

    def describe(self) -> dict[str, Any]:
        return {**self.summary(), "coreVersion": self.core_version}


class DeviceBook:
    """The last fleet status of every core device; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._devices: dict[str, CoreDevice] = {}

    def receive(self, topic: str, payload: bytes) -> None:
        """A fleet status message; InvalidRequestException for anything else."""
        match = _TOPIC.match(topic)
        if match is None:
            raise ApiError(
                "InvalidRequestException",
                f"the local IoT data plane only takes fleet status messages "
                f"({FLEET_STATUS_TOPIC}), not {topic!r}",
            )
        thing = match.group(1)
        try:
            message = json.loads(payload)
            status = _status(message, thing)
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError("InvalidRequestException", f"not a fleet status message: {exc}") from None
        now = self._clock()
        with self._lock:
            device = self._devices.get(thing)
            sequence = int(message.get("sequenceNumber", 0))
            if device is not None and sequence <= device.sequence:
                return  # a replay or an older message overtaken by a newer one
            previous = device.components if device is not None else {}
            components: dict[str, InstalledComponent] = {}
            for entry in message.get("components") or []:
                name = str(entry["componentName"])
                state = str(entry["status"])
                old = previous.get(name)
                changed = (
                    old.changed
                    if old is not None and old.state == state and old.version == str(entry["version"])
                    else now
                )
                arns = entry.get("fleetConfigArns") or []
                details = entry.get("statusDetails") or {}
                components[name] = InstalledComponent(
                    name=name,
                    version=str(entry["version"]),
                    state=state,
                    root=bool(entry.get("isRoot", False)),
                    changed=changed,
                    reported=now,
                    source=_source(arns[-1]) if arns else "",
                    details=str(details.get("statusReason") or ""),
                    codes=[str(c) for c in details.get("statusCodes") or []],
                )
            self._devices[thing] = CoreDevice(
                thing=thing,
                status=status,
                updated=now,
                core_version=str(message.get("ggcVersion") or "unknown"),
                platform=str(message.get("platform") or "linux"),
                architecture=str(message.get("architecture") or "unknown"),
                runtime=str(message.get("runtime") or "aws_nucleus_classic"),
                components=components,
                sequence=sequence,
            )

    def get(self, thing: str) -> CoreDevice:
        with self._lock:
            found = self._devices.get(thing)
        if found is None:
            raise ApiError(
                "ResourceNotFoundException",
                f"Core device {thing} does not exist (it never reported its status)",
                resourceId=thing,
                resourceType="CoreDevice",
            )
        return found

    def all(self) -> list[CoreDevice]:
        with self._lock:
            return sorted(self._devices.values(), key=lambda d: d.thing)


def _status(message: Mapping[str, Any], thing: str) -> str:
    if message.get("thing") not in (None, thing):
        raise ValueError(f"message for {message.get('thing')!r} on {thing!r}'s topic")
    status = message["overallDeviceStatus"]
    if status not in set(DeviceHealth):
        raise ValueError(f"overallDeviceStatus {status!r}")
    for entry in message.get("components") or []:
        if entry["status"] not in _STATES:
            raise ValueError(f"component {entry.get('componentName')!r} status {entry['status']!r}")
    return str(status)


def _source(fleet_configuration_arn: str) -> str:
    """``thinggroup/NAME`` from ``arn:aws:greengrass:REGION:ACCOUNT:configuration:thinggroup/NAME:REV``."""
    _, _, rest = fleet_configuration_arn.partition(":configuration:")
    return rest.rsplit(":", 1)[0] if rest else fleet_configuration_arn
