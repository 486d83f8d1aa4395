"""Builds of the fleet probe component, deployment files, and the ``fanwatch fleet`` command as users run it.

The builds are laid out as ``gdk component build`` leaves them (``recipes/``, ``artifacts/<name>/<version>/``,
``s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/`` URIs), so ``fanwatch fleet publish`` reads them
as it reads gdk's. The command runs as a subprocess with the local fleet's environment, exactly as a
user's shell would after ``source ROOT/fleet.env``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

PROBE = Path(__file__).with_name("fleet_probe.py")
NAME = "com.example.FleetProbe"
NUCLEUS = {
    "componentVersion": "2.15.0",
    "configurationUpdate": {"merge": json.dumps({"interpolateComponentConfiguration": True})},
}


def probe_recipe(version: str, name: str = NAME, **extra_defaults: Any) -> dict[str, Any]:
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentDescription": "Telemetry with a boot id and a sequence number, for the fleet tests",
        "ComponentPublisher": "fanwatch tests",
        "ComponentConfiguration": {
            "DefaultConfiguration": {
                "threshold": 3000,
                "intervalSeconds": 0.5,
                **extra_defaults,
                "accessControl": {
                    "aws.greengrass.ipc.mqttproxy": {
                        f"{name}:mqttproxy:1": {
                            "policyDescription": "Publish this device's telemetry",
                            "operations": ["aws.greengrass#PublishToIoTCore"],
                            "resources": ["fanwatch/{iot:thingName}/telemetry"],
                        }
                    }
                },
            }
        },
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Lifecycle": {"Run": f"{sys.executable} -u {{artifacts:path}}/{PROBE.name}"},
                "Artifacts": [{"URI": f"s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/{PROBE.name}"}],
            }
        ],
    }


class ProbeBuilds:
    """``build(version)`` writes a gdk-style build folder and returns it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def build(self, version: str, *, crash: bool = False, name: str = NAME, **extra_defaults: Any) -> Path:
        out = self.folder / f"build-{name}-{version}{'-crash' if crash else ''}"
        shutil.rmtree(out, ignore_errors=True)
        (out / "recipes").mkdir(parents=True)
        (out / "recipes" / f"{name}.yaml").write_text(
            yaml.safe_dump(probe_recipe(version, name, **extra_defaults))
        )
        artifacts = out / "artifacts" / name / version
        artifacts.mkdir(parents=True)
        code = PROBE.read_text()
        if crash:  # a release that cannot start: what the canary must catch
            code = 'raise SystemExit("fleet probe: cannot start (a bad release)")\n' + code
        (artifacts / PROBE.name).write_text(code)
        return out

    def deployment(
        self, version: str, *, threshold: int = 3000, job: dict[str, Any] | None = None, name: str = NAME
    ) -> Path:
        merge = json.dumps({"threshold": threshold})
        content: dict[str, Any] = {
            "deploymentName": f"fleet probe {version}" if name == NAME else f"{name} {version}",
            "components": {
                "aws.greengrass.Nucleus": NUCLEUS,
                name: {"componentVersion": version, "configurationUpdate": {"merge": merge}},
            },
        }
        if job is not None:
            content["iotJobConfiguration"] = job
        stem = "probe" if name == NAME else name
        path = self.folder / f"{stem}-{version}-{threshold}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2))
        return path


@pytest.fixture
def builds(tmp_path: Path) -> ProbeBuilds:
    return ProbeBuilds(tmp_path / "builds")


@dataclass
class Done:
    code: int
    out: str

    def lines(self, contains: str) -> list[str]:
        return [line for line in self.out.splitlines() if contains in line]


@dataclass
class FleetCommand:
    """``fanwatch fleet ...`` as a subprocess with a fleet's environment."""

    environment: dict[str, str]
    cwd: Path
    log: list[str] = field(default_factory=list)

    async def __call__(self, *args: str, timeout: float = 240.0) -> Done:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fanwatch", "fleet", *args,
            cwd=self.cwd, env=self.environment,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
        text = out.decode()
        self.log.append(f"$ fanwatch fleet {' '.join(args)}\n{text}")
        assert process.returncode is not None
        return Done(process.returncode, text)


def fleet_environment(extra: dict[str, str], home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, **extra, "HOME": str(home), "AWS_CONFIG_FILE": str(home / "config")}


class Telemetry:
    """Every telemetry message on the broker, with the wall time it arrived (the role of IoT Core's rules)."""

    def __init__(self, host: str, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.readings: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fleet-test-observer")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda client, *_: client.subscribe("fanwatch/+/telemetry", qos=1)
        self._client.connect(host, port)
        self._client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.readings.append((time.time(), json.loads(message.payload)))

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    def of(self, thing: str, since: float = 0.0) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return [(t, r) for t, r in self.readings if r["thing"] == thing and t >= since]

    def latest(self, thing: str) -> dict[str, Any] | None:
        found = self.of(thing)
        return found[-1][1] if found else None


@pytest.fixture
def telemetry_factory() -> Iterator[Callable[[str, int], Telemetry]]:
    made: list[Telemetry] = []

    def make(host: str, port: int) -> Telemetry:
        made.append(Telemetry(host, port))
        return made[-1]

    yield make
    for observer in made:
        observer.close()


async def until(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout} s")
        await asyncio.sleep(0.2)


@pytest.fixture
def eventually() -> Callable[..., Any]:
    return until


@pytest.fixture
def fleet_command(tmp_path: Path) -> Callable[[dict[str, str]], FleetCommand]:
    """``fleet_command(environment)``: the command as a shell with that environment runs it."""

    def make(extra: dict[str, str]) -> FleetCommand:
        return FleetCommand(fleet_environment(extra, tmp_path / "home"), tmp_path)

    return make
