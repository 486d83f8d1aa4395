"""Both components, built as gdk builds them, on fanwatch's local Greengrass core with the real IPC client.

The core runs the recipes unchanged: it unpacks the artifacts, runs the Install step (a venv with the
pinned awsiotsdk, from PyPI) and Run with the venv's Python, serves IPC on a Unix socket, and stops the
components with SIGTERM. Its link to IoT Core is a recording stand-in here (the MQTT link is tested by
its own engineer); everything between the fan and that link is real.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from fanwatch import build
from fanwatch.telemetry import parse_alert, parse_status, parse_telemetry

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("fanwatch.core.runtime") is None, reason="the local core is not there yet"
    ),
]

THING = "edge-e2e-1"


class RecordingLink:
    """Stands in for the core's MQTT link to IoT Core: records what the components publish."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, int]] = []

    async def publish(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        self.published.append((topic, payload, qos))

    async def subscribe(self, topic_filter: str, qos: int, handler: Any) -> Any:
        raise AssertionError("the fanwatch components never subscribe to IoT Core")

    def of(self, kind: str) -> list[bytes]:
        return [p for t, p, _ in self.published if t == f"fanwatch/{THING}/{kind}"]


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())


def filter_update(deployment: dict[str, Any], merge: dict[str, Any]) -> dict[str, Any]:
    """The same deployment with one more configuration change for the edge filter."""
    components = dict(deployment["components"])
    components["fanwatch.EdgeFilter"] = {"componentVersion": "1.0.0", "configurationUpdate": {"merge": merge}}
    return {"components": components}


def test_the_components_run_on_the_local_core_from_their_built_artifacts(tmp_path: Path) -> None:
    from fanwatch.core.runtime import LocalCore

    out = tmp_path / "greengrass-build"
    for name in build.COMPONENTS:
        build.build(name, out, version="1.0.0")
    link = RecordingLink()
    stall = {"kind": "stall", "startSeconds": 30, "endSeconds": 60}
    deployment = {
        "components": {
            "aws.greengrass.Nucleus": {
                "componentVersion": "2.15.0",
                "configurationUpdate": {"merge": {"interpolateComponentConfiguration": True}},
            },
            "fanwatch.Tachometer": {
                "componentVersion": "1.0.0",
                "configurationUpdate": {
                    "merge": {
                        "backend": "simulated",
                        "timeScale": 10,
                        "publishIntervalSeconds": 0.2,
                        "statusIntervalSeconds": 2,
                        "fans": {"fan0": {"targetRpm": 3000, "faults": [stall]}},
                    }
                },
            },
            "fanwatch.EdgeFilter": {
                "componentVersion": "1.0.0",
                "configurationUpdate": {
                    "merge": {
                        "batchSize": 5,
                        "maxBatchAgeSeconds": 2,
                        "raiseAfterSeconds": 1,
                        "statusIntervalSeconds": 3,
                    }
                },
            },
        }
    }

    async def scenario() -> None:
        async with LocalCore(THING, tmp_path / "core", iot=link) as core:
            core.add_sources([out])
            result = await core.deploy(deployment)
            logs = sorted((tmp_path / "core" / "logs").glob("*.log"))
            assert result.succeeded, (result.to_dict(), {p.name: p.read_text()[-2000:] for p in logs})
            await until(lambda: len(link.of("telemetry")) >= 2, 60, "telemetry")
            await until(
                lambda: any(parse_alert(p).kind == "stall" for p in link.of("alerts")), 90, "a stall alert"
            )
            await until(
                lambda: any("fanwatch.Tachometer" in parse_status(p).components for p in link.of("status")),
                30,
                "tach status",
            )
            status = parse_status(link.of("status")[-1], thing=THING)
            assert status.components == {"fanwatch.EdgeFilter": "1.0.0", "fanwatch.Tachometer": "1.0.0"}
            boot = parse_telemetry(link.of("telemetry")[0], thing=THING).boot
            # a configuration change reaches the running filter without a restart
            assert (await core.deploy(filter_update(deployment, {"batchSize": 2}))).succeeded
            before = len(link.of("telemetry"))
            await until(lambda: len(link.of("telemetry")) > before + 2, 60, "telemetry after the change")
            latest = [parse_telemetry(p, thing=THING) for p in link.of("telemetry")[before + 1 :]]
            assert {m.boot for m in latest} == {boot}
            assert max(len(m.readings) for m in latest) <= 2
            # now the filter holds every reading until it is stopped
            hold = {"batchSize": 600, "maxBatchAgeSeconds": 3600, "deadbandRpm": 0, "deadbandPercent": 0}
            assert (await core.deploy(filter_update(deployment, hold))).succeeded
            await asyncio.sleep(3)
            held_from = len(link.of("telemetry"))
        # stopping the core sent SIGTERM: the filter published what it held before it exited
        flushed = [parse_telemetry(p, thing=THING) for p in link.of("telemetry")[held_from:]]
        assert flushed and sum(len(m.readings) for m in flushed) >= 5
        log = (tmp_path / "core" / "logs" / "fanwatch.EdgeFilter.log").read_text()
        assert "flushed on shutdown" in log
        assert all(qos == 1 for _, _, qos in link.published)

    run(scenario)
