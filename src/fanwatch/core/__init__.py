"""fanwatch's local Greengrass core: the real components and the real IPC client, no device needed.

One package per subsystem, as the nucleus has them: :mod:`~fanwatch.core.ipc` serves the Greengrass
IPC protocol, :mod:`~fanwatch.core.mqtt` carries PublishToIoTCore to a broker standing in for IoT Core,
:mod:`~fanwatch.core.deployment` turns recipes and deployment documents into a plan,
:mod:`~fanwatch.core.lifecycle` runs one component, and :mod:`~fanwatch.core.runtime` ties them into a
:class:`LocalCore` per thing (or a :class:`Fleet` of them). :mod:`~fanwatch.core.ports` holds the seams.
The names below are loaded on first use, so importing one part does not load the others.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ComponentStore", "DeploymentDocument", "DeploymentResult", "Fleet", "LocalCore"]

_WHERE = {
    "ComponentStore": "fanwatch.core.deployment",
    "DeploymentDocument": "fanwatch.core.deployment",
    "DeploymentResult": "fanwatch.core.deployment",
    "Fleet": "fanwatch.core.fleet",
    "LocalCore": "fanwatch.core.runtime",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'fanwatch.core' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
