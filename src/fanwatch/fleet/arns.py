"""The ARNs of the Greengrass and IoT resources the fleet tools name, built and read in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["TargetArn", "component_arn", "component_version_arn", "parse_component_arn"]

_COMPONENT: Final = re.compile(
    r"^arn:(?P<partition>[^:]+):greengrass:(?P<region>[^:]*):(?P<account>aws|[0-9]+):components:"
    r"(?P<name>[^:]+)(?::versions:(?P<version>[^:]+))?$"
)
_TARGET: Final = re.compile(
    r"^arn:(?P<partition>[^:]+):iot:(?P<region>[^:]*):(?P<account>[0-9]+):(?P<kind>thing|thinggroup)/(?P<name>.+)$"
)


def component_arn(region: str, account: str, name: str, partition: str = "aws") -> str:
    """The ARN of a component with all its versions, as ListComponentVersions takes it."""
    return f"arn:{partition}:greengrass:{region}:{account}:components:{name}"


def component_version_arn(region: str, account: str, name: str, version: str, partition: str = "aws") -> str:
    """The ARN of one component version, as DescribeComponent and GetComponent take it (``account`` ``aws``
    for a public component)."""
    return f"{component_arn(region, account, name, partition)}:versions:{version}"


def parse_component_arn(arn: str) -> tuple[str, str, str | None]:
    """(account, name, version or None) of a component or component version ARN; ValueError if not one."""
    match = _COMPONENT.match(arn)
    if match is None:
        raise ValueError(f"{arn!r} is not a Greengrass component ARN")
    return match["account"], match["name"], match["version"]


@dataclass(frozen=True, slots=True)
class TargetArn:
    """A deployment target: a thing or a thing group."""

    arn: str
    kind: str  # thing | thinggroup
    name: str

    @classmethod
    def parse(cls, arn: str) -> TargetArn:
        match = _TARGET.match(arn)
        if match is None:
            raise ValueError(f"{arn!r} is not an IoT thing or thing group ARN")
        return cls(arn, match["kind"], match["name"])

    @property
    def is_group(self) -> bool:
        return self.kind == "thinggroup"

    @property
    def short(self) -> str:
        """``thinggroup/NAME`` or ``thing/NAME``: how the nucleus names a deployment's group."""
        return f"{self.kind}/{self.name}"
