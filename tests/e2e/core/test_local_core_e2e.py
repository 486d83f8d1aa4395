"""End to end: the two edge components, built by the command gdk runs, on ``fanwatch core run``.

Everything is the real thing: the components are built by their gdk projects' custom build command
(``NEXT_PATCH`` and all), a ``fanwatch core run`` process runs two things against a local MQTT broker,
the components' Install step creates a venv and pip-installs their pinned dependencies, they talk to
the core with the unchanged awsiotsdk IPC client, and their readings are read back from the broker
with paho-mqtt. Deployments and checks go through ``fanwatch core deploy`` and ``fanwatch core status``
as a user types them.

fan-001 gets the deployment right. fan-002 gets the mistakes users make on real devices: a deployment
that forgets ``interpolateComponentConfiguration``, so the filter's ``{iot:thingName}`` accessControl
never matches and every publish is denied, and a tachometer switched to the GPIO backend on a machine
without GPIO, which crashes until it is BROKEN (rolled back, then left BROKEN with DO_NOTHING).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fanwatch.telemetry import Telemetry, parse_alert, parse_telemetry

pytest.importorskip("fanwatch.core.mqtt.link", reason="the MQTT link (fanwatch.core.mqtt) is not there yet")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[3]
COMPONENTS = ("fanwatch.Tachometer", "fanwatch.EdgeFilter")
NUCLEUS_INTERPOLATES = {
    "componentVersion": "2.15.0",
    "configurationUpdate": {"merge": {"interpolateComponentConfiguration": True}},
}
TACH = {
    "backend": "simulated",
    "timeScale": 10,
    "publishIntervalSeconds": 0.2,
    "fans": {
        "fan0": {"targetRpm": 3000, "faults": [{"kind": "stall", "startSeconds": 40, "endSeconds": 80}]}
    },
}
FILTER = {
    "batchSize": 5,
    "maxBatchAgeSeconds": 2,
    "raiseAfterSeconds": 1,
    "deadbandRpm": 0,
    "deadbandPercent": 0,
}


def deployment(
    *, interpolate: bool = True, tach: dict | None = None, filter_merge: dict | None = None, **extra
) -> dict:
    components: dict[str, Any] = {
        "fanwatch.Tachometer": {"componentVersion": "1.0.0", "configurationUpdate": {"merge": tach or TACH}},
        "fanwatch.EdgeFilter": {
            "componentVersion": "1.0.0",
            "configurationUpdate": {"merge": filter_merge or FILTER},
        },
    }
    if interpolate:
        components["aws.greengrass.Nucleus"] = NUCLEUS_INTERPOLATES
    return {"components": components, **extra}


class Observer:
    """What the cloud would see: every message under fanwatch/ on the broker."""

    def __init__(self, host: str, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-observer")
        self._client.on_message = self._received
        self._client.connect(host, port)
        self._client.subscribe("fanwatch/#", qos=1)
        self._client.loop_start()

    def _received(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def of(self, thing: str, kind: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t == f"fanwatch/{thing}/{kind}"]

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)
    return value


def gdk_build(component: str) -> Path:
    """Run the gdk project's ``custom_build_command`` in its folder, as ``gdk component build`` does."""
    project = REPO / "components" / component
    command = json.loads((project / "gdk-config.json").read_text())["component"][component]["build"][
        "custom_build_command"
    ]
    subprocess.run(command, cwd=project, check=True, env=_env(), capture_output=True, timeout=120)
    return project / "greengrass-build"


def _env() -> dict[str, str]:
    """This venv's Python first on PATH: gdk and the Install step run ``python3``."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def fanwatch_core(*argv: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fanwatch", "core", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
    )


class Fleet:
    def __init__(self, root: Path, observer: Observer, process: subprocess.Popen[str]) -> None:
        self.root, self.observer, self.process = root, observer, process

    def deploy(self, thing: str, document: dict, name: str) -> subprocess.CompletedProcess[str]:
        path = self.root / f"{name}.json"
        path.write_text(json.dumps(document))
        return fanwatch_core("deploy", "--root", self.root, "--thing", thing, path)

    def status(self, thing: str) -> dict[str, Any]:
        result = fanwatch_core("status", "--root", self.root, "--thing", thing, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[thing]

    def component(self, thing: str, name: str) -> dict[str, Any]:
        return next(c for c in self.status(thing)["components"] if c["name"] == name)

    def log(self, thing: str, name: str = "greengrass") -> str:
        return (self.root / thing / "logs" / f"{name}.log").read_text()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    from fanwatch.core.mqtt.amqtt_broker import AmqttBroker

    root = tmp_path_factory.mktemp("cores")
    builds = [gdk_build(c) for c in COMPONENTS]
    with AmqttBroker(root / "broker") as broker:
        observer = Observer(broker.host, broker.port)
        command = [
            sys.executable,
            "-m",
            "fanwatch",
            "core",
            "run",
            "--root",
            root,
            "--thing",
            "fan-001",
            "--thing",
            "fan-002",
            "--broker",
            f"mqtt://{broker.host}:{broker.port}",
        ]
        for build in builds:
            command += ["--build-dir", build]
        with (root / "run.log").open("w") as log:
            process = subprocess.Popen(
                list(map(str, command)), stdout=log, stderr=subprocess.STDOUT, text=True, env=_env()
            )
        try:
            until(
                lambda: all((root / t / "local" / "core.json").exists() for t in ("fan-001", "fan-002")),
                60,
                "the cores",
            )
            yield Fleet(root, observer, process)
        finally:
            process.terminate()
            process.wait(60)
            observer.close()


def test_the_edge_components_publish_readings_to_the_broker(fleet: Fleet) -> None:
    result = fleet.deploy("fan-001", deployment(), "good")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESSFUL (fanwatch.EdgeFilter RUNNING, fanwatch.Tachometer RUNNING)" in result.stdout
    telemetry = until(lambda: fleet.observer.of("fan-001", "telemetry"), 60, "telemetry on the broker")
    message = parse_telemetry(telemetry[0], thing="fan-001")
    assert message.fan == "fan0" and 1 <= len(message.readings) <= 5

    def at_normal_speed() -> bool:
        # the stall starts 40 simulated seconds in: on a loaded machine the first batch may come after it
        messages = [parse_telemetry(p) for p in fleet.observer.of("fan-001", "telemetry")]
        return any(2500 < r.rpm < 3500 for m in messages for r in m.readings)

    until(at_normal_speed, 60, "a reading at the fan's normal speed")
    until(
        lambda: any(parse_alert(p).kind == "stall" for p in fleet.observer.of("fan-001", "alerts")),
        120,
        "a stall alert",
    )
    tach = fleet.component("fan-001", "fanwatch.Tachometer")
    assert tach["version"] == "1.0.0"  # NEXT_PATCH, numbered as gdk publish would
    assert (fleet.root / "fan-001" / "work" / "fanwatch.Tachometer" / "venv" / "bin" / "python").exists()
    assert "Install" not in tach["reason"]


def test_a_configuration_change_reaches_the_running_filter(fleet: Fleet) -> None:
    until(lambda: fleet.observer.of("fan-001", "telemetry"), 60, "telemetry")
    boot = parse_telemetry(fleet.observer.of("fan-001", "telemetry")[-1]).boot
    before = len(fleet.observer.of("fan-001", "telemetry"))
    result = fleet.deploy("fan-001", deployment(filter_merge={**FILTER, "batchSize": 2}), "smaller-batches")
    assert result.returncode == 0, result.stdout

    def small_batches_since_the_change() -> list[Telemetry] | None:
        # Batches the filter sent before it took the change may still arrive (more of them on a loaded
        # machine): the change counts from its first small batch, and every batch after it stays small.
        since = [parse_telemetry(p) for p in fleet.observer.of("fan-001", "telemetry")[before:]]
        first = next((i for i, m in enumerate(since) if len(m.readings) <= 2), None)
        return None if first is None or len(since) - first <= 3 else since[first:]

    latest = until(small_batches_since_the_change, 60, "small batches after the change")
    assert {m.boot for m in latest} == {boot}  # the same run of the component: no restart
    assert max(len(m.readings) for m in latest) <= 2
    assert fleet.component("fan-001", "fanwatch.EdgeFilter")["configuration"]["batchSize"] == 2


def test_accesscontrol_without_interpolation_is_denied_as_on_a_device(fleet: Fleet) -> None:
    result = fleet.deploy("fan-002", deployment(interpolate=False), "forgot-interpolation")
    assert result.returncode == 0, result.stdout  # the components run...
    denied = until(
        lambda: [line for line in fleet.log("fan-002").splitlines() if "IPC call denied" in line],
        60,
        "a denial",
    )
    assert any("fanwatch.EdgeFilter" in line and "fanwatch/fan-002/" in line for line in denied), denied
    edge_filter = fleet.component("fan-002", "fanwatch.EdgeFilter")
    access = edge_filter["accessControl"]["aws.greengrass.ipc.mqttproxy"]
    assert "fanwatch/{iot:thingName}/telemetry" in next(iter(access.values()))["resources"]
    assert any("interpolateComponentConfiguration" in p for p in edge_filter["problems"])  # status says why
    assert fleet.observer.of("fan-002", "telemetry") == []  # ...and nothing reaches "IoT Core"


def test_a_crashing_component_goes_broken_and_is_rolled_back(fleet: Fleet) -> None:
    filter_only = deployment(interpolate=False)
    del filter_only["components"]["fanwatch.Tachometer"]
    assert fleet.deploy("fan-002", filter_only, "filter-only").returncode == 0
    # a tachometer on the GPIO backend, on a machine without GPIO: it cannot start, every time
    gpio = deployment(interpolate=False, tach={**TACH, "backend": "gpio", "timeScale": 1})
    rolled_back = fleet.deploy("fan-002", gpio, "gpio-rollback")
    assert rolled_back.returncode == 1
    assert "FAILED_ROLLBACK_COMPLETE" in rolled_back.stdout and "fanwatch.Tachometer" in rolled_back.stdout
    assert [c["name"] for c in fleet.status("fan-002")["components"]] == ["fanwatch.EdgeFilter"]
    left = fleet.deploy("fan-002", {**gpio, "failureHandlingPolicy": "DO_NOTHING"}, "gpio")
    assert left.returncode == 1 and "FAILED_ROLLBACK_NOT_REQUESTED" in left.stdout
    assert fleet.component("fan-002", "fanwatch.Tachometer")["state"] == "BROKEN"
    log = fleet.log("fan-002", "fanwatch.Tachometer")
    assert "cannot start" in log and log.count("-> BROKEN") == 2
    fixed = fleet.deploy("fan-002", deployment(), "fixed")  # a deployment is the way out of BROKEN
    assert fixed.returncode == 0, fixed.stdout
    until(lambda: fleet.observer.of("fan-002", "telemetry"), 60, "fan-002's telemetry once fixed")
