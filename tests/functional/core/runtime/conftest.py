"""Builds of small test components (gdk's output layout) and a local core to deploy them to.

The components are real processes that talk to the core through the unchanged awsiotsdk IPC client
(``probe_component.py``). Until the MQTT engineer's ``IoTCoreLink`` lands, the core's link to IoT Core
is :class:`RecordingLink`, which keeps what the components published.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from fanwatch.core.deployment.store import ComponentStore
from fanwatch.core.ports import MessageHandler
from fanwatch.core.runtime import LocalCore

PROBE = Path(__file__).with_name("probe_component.py")


class RecordingSubscription:
    async def close(self) -> None:
        return None


class RecordingLink:
    """Keeps (topic, payload, qos) of everything published to "IoT Core"."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, int]] = []

    async def publish(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        self.published.append((topic, payload, qos))

    async def subscribe(self, topic_filter: str, qos: int, handler: MessageHandler) -> RecordingSubscription:
        return RecordingSubscription()

    def messages(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p, _ in self.published if t == topic]


class LinkFactory:
    """A fleet's ``links``: one RecordingLink per thing, and the order in which they were closed."""

    def __init__(self) -> None:
        self.links: dict[str, RecordingLink] = {}
        self.closed: list[str] = []

    @contextlib.asynccontextmanager
    async def __call__(self, thing: str, root: Path) -> AsyncIterator[RecordingLink]:
        self.links[thing] = RecordingLink()
        try:
            yield self.links[thing]
        finally:
            self.closed.append(thing)


def probe_recipe(name: str, version: str, **overrides: Any) -> dict[str, Any]:
    """A probe component's recipe; ``overrides`` replace DefaultConfiguration keys or, with
    ``lifecycle=``/``dependencies=``, those sections."""
    defaults: dict[str, Any] = {
        "topic": "probe/out",
        "deniedTopic": "other/topic",
        "intervalS": 0.1,
        "tag": "v1",
        "accessControl": {
            "aws.greengrass.ipc.mqttproxy": {
                f"{name}:mqttproxy:1": {
                    "policyDescription": "publish probe readings",
                    "operations": ["aws.greengrass#PublishToIoTCore"],
                    "resources": ["probe/out"],
                }
            }
        },
    }
    lifecycle = overrides.pop("lifecycle", {"Run": f"{sys.executable} -u {{artifacts:path}}/{PROBE.name}"})
    dependencies = overrides.pop("dependencies", None)
    defaults.update(overrides)
    recipe: dict[str, Any] = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentConfiguration": {"DefaultConfiguration": defaults},
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Lifecycle": lifecycle,
                "Artifacts": [{"URI": f"s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/{PROBE.name}"}],
            }
        ],
    }
    if dependencies:
        recipe["ComponentDependencies"] = dependencies
    return recipe


class Builds:
    """A gdk-style build folder: ``recipes/`` and ``artifacts/<name>/<version>/``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, recipe: dict[str, Any]) -> None:
        name, version = recipe["ComponentName"], recipe["ComponentVersion"]
        (self.folder / "recipes").mkdir(parents=True, exist_ok=True)
        (self.folder / "recipes" / f"{name}-{version}.yaml").write_text(yaml.safe_dump(recipe))
        artifacts = self.folder / "artifacts" / name / version
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROBE, artifacts / PROBE.name)


@pytest.fixture
def builds(tmp_path: Path) -> Builds:
    return Builds(tmp_path / "greengrass-build")


@pytest.fixture
def link() -> RecordingLink:
    return RecordingLink()


@pytest_asyncio.fixture
async def core(tmp_path: Path, builds: Builds, link: RecordingLink) -> AsyncIterator[LocalCore]:
    running = LocalCore("fan-001", tmp_path / "fan-001", iot=link, store=ComponentStore(), stable_seconds=0.5)
    await running.start()
    yield running
    await running.stop()


def probe_events(core: LocalCore, component: str) -> list[dict[str, Any]]:
    path = core.layout.work_path(component) / "probe.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


@pytest.fixture
def recipe() -> Callable[..., dict[str, Any]]:
    return probe_recipe


@pytest.fixture
def events() -> Callable[[LocalCore, str], list[dict[str, Any]]]:
    return probe_events


@pytest.fixture
def until() -> Callable[..., Any]:
    return eventually


@pytest.fixture
def link_factory() -> LinkFactory:
    return LinkFactory()
