"""The local Greengrass control plane in front of moto, and real boto3 clients of it.

Helpers come as fixtures (``aws``), as elsewhere in the suite, since test modules do not import
each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from fanwatch.fleet.controlplane import LocalControlPlane
from fanwatch.fleet.timescale import TimeScale

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"


class StandIn:
    """Clients of the running control plane and the names tests use with them."""

    bucket = f"fanwatch-components-{REGION}-{ACCOUNT}"
    account = ACCOUNT
    region = REGION

    def __init__(self, plane: LocalControlPlane) -> None:
        self.plane = plane
        self.gg = plane.client("greengrassv2")
        self.s3 = plane.client("s3")
        self.iot = plane.client("iot")
        self.jobs = plane.client("iot-jobs-data")
        self.iot_data = plane.client("iot-data")
        self.s3.create_bucket(Bucket=self.bucket)

    @staticmethod
    def group_arn(name: str) -> str:
        return f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{name}"

    @staticmethod
    def thing_arn(name: str) -> str:
        return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"

    @staticmethod
    def component_arn(name: str, version: str | None = None) -> str:
        arn = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:{name}"
        return f"{arn}:versions:{version}" if version else arn

    @staticmethod
    def recipe(name: str, version: str, *, artifact: str | None = None, **extra: Any) -> bytes:
        manifest: dict[str, Any] = {"Platform": {"os": "linux"}, "Lifecycle": {"Run": "echo hello"}}
        if artifact is not None:
            manifest["Artifacts"] = [{"URI": artifact}]
        document = {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": name,
            "ComponentVersion": version,
            "ComponentPublisher": "tests",
            "Manifests": [manifest],
            **extra,
        }
        return yaml.safe_dump(document, sort_keys=False).encode()

    def put_artifact(self, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def publish(self, name: str, version: str) -> dict[str, Any]:
        uri = self.put_artifact(f"{name}/{version}/run.py", f"print('{name} {version}')".encode())
        return dict(self.gg.create_component_version(inlineRecipe=self.recipe(name, version, artifact=uri)))

    def add_group(self, group: str, things: list[str], parent: str | None = None) -> str:
        kwargs = {"parentGroupName": parent} if parent else {}
        self.iot.create_thing_group(thingGroupName=group, **kwargs)
        for thing in things:
            self.iot.create_thing(thingName=thing)
            self.iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        return self.group_arn(group)


@pytest.fixture(scope="session")
def running_plane() -> Iterator[LocalControlPlane]:
    with LocalControlPlane() as running:
        yield running


@pytest.fixture
def plane(running_plane: LocalControlPlane, request: pytest.FixtureRequest) -> LocalControlPlane:
    """The control plane, empty; parametrize indirectly with a time scale to run fleet time faster."""
    running_plane.reset(TimeScale(getattr(request, "param", 1.0)))
    return running_plane


@pytest.fixture
def aws(plane: LocalControlPlane) -> StandIn:
    return StandIn(plane)
