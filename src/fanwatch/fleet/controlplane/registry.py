"""What the control plane reads from other AWS services: the IoT registry (things, thing groups) and
S3 (artifacts), through boto3 clients of the AWS stand-in.

A deployment to a thing group reaches the things in that group and in its child groups, so
membership is read with the group hierarchy. Membership is asked for on every device poll; a short
cache keeps twenty devices polling twice a second from becoming eighty registry calls a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from botocore.exceptions import ClientError

__all__ = ["IotRegistry", "S3Artifacts"]

_CACHE_SECONDS: Final = 0.5
T = TypeVar("T")


class S3Artifacts:
    """:class:`~.components.ArtifactReader` over an S3 client."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def read(self, bucket: str, key: str) -> bytes | None:
        try:
            return bytes(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError:
            return None


class IotRegistry:
    """Things and thing groups of the IoT registry, over an ``iot`` client."""

    def __init__(self, iot: Any) -> None:
        self._iot = iot
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}

    def _cached(self, key: tuple[str, str], read: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < _CACHE_SECONDS:
                return hit[1]
        value = read()
        with self._lock:
            self._cache[key] = (now, value)
        return value

    def thing_exists(self, thing: str) -> bool:
        try:
            self._iot.describe_thing(thingName=thing)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return False
            raise
        return True

    def group_exists(self, group: str) -> bool:
        return self._parent(group) is not False

    def _parent(self, group: str) -> str | bool | None:
        """The group's parent name, None for a top group, False when the group does not exist."""

        def read() -> str | bool | None:
            try:
                described = self._iot.describe_thing_group(thingGroupName=group)
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                    return False
                raise
            parent = (described.get("thingGroupMetadata") or {}).get("parentGroupName")
            return str(parent) if parent else None

        return self._cached(("parent", group), read)

    def groups_of(self, thing: str) -> set[str]:
        """The thing's groups and every ancestor of them."""

        def read() -> set[str]:
            direct: list[str] = []
            for page in self._iot.get_paginator("list_thing_groups_for_thing").paginate(thingName=thing):
                direct += [g["groupName"] for g in page.get("thingGroups", [])]
            return set(direct)

        try:
            groups = self._cached(("groups", thing), read)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return set()
            raise
        found = set(groups)
        for group in groups:
            parent = self._parent(group)
            while isinstance(parent, str) and parent not in found:
                found.add(parent)
                parent = self._parent(parent)
        return found

    def members(self, group: str) -> set[str]:
        """Things in the group or in any of its descendants."""

        def read() -> set[str]:
            things: set[str] = set()
            for page in self._iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=group):
                things.update(page.get("things", []))
            children: list[str] = []
            for page in self._iot.get_paginator("list_thing_groups").paginate(parentGroup=group):
                children += [g["groupName"] for g in page.get("thingGroups", [])]
            for child in children:
                if child != group:
                    things |= self.members(child)
            return things

        return self._cached(("members", group), read)
