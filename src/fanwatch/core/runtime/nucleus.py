"""What the local core says of the nucleus it stands in for: its version, its default configuration,
and the environment it gives every component's processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from fanwatch.core.mqtt.spooler import DEFAULT_MAX_SIZE_IN_BYTES
from fanwatch.environment import THING_NAME_VARIABLE
from fanwatch.limits import DEFAULT_REGION

__all__ = ["NUCLEUS_VERSION", "component_environment", "nucleus_defaults"]

#: The nucleus version the local core stands in for (recipes' dependency requirements are checked on it).
NUCLEUS_VERSION: Final = "2.15.0"


def nucleus_defaults(region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The parts of the aws.greengrass.Nucleus configuration the local core honours."""
    return {
        "awsRegion": region,
        "interpolateComponentConfiguration": False,
        "mqtt": {
            "spooler": {
                "storageType": "Memory",
                "maxSizeInBytes": DEFAULT_MAX_SIZE_IN_BYTES,
                "keepQos0WhenOffline": False,
            }
        },
    }


def component_environment(*, token: str, ipc_socket: Path, thing_name: str, region: str) -> dict[str, str]:
    """The variables the nucleus sets for a component's processes: its SVCUID (the IPC client's
    credential), where the IPC socket is, and which thing and region it runs in."""
    socket_path = str(ipc_socket)
    return {
        "SVCUID": token,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": token,
        "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH": socket_path,
        "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": socket_path,
        THING_NAME_VARIABLE: thing_name,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "GG_ROOT_CA_PATH": "",
    }
