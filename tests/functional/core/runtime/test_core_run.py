"""``fanwatch core run`` as a process: an embedded broker, a deployment at start, readings on the broker,
a clean stop on SIGTERM, and a restart that brings the components back with a Disk spool."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fanwatch.core.links import saved_spooler_settings

pytestmark = pytest.mark.timeout(120)

PROBE = "test.Probe"


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)
    return value


class Run:
    """``fanwatch core run`` in the background, its output collected line by line."""

    def __init__(self, *argv: object) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fanwatch", "core", "run", *map(str, argv)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def find(self, pattern: str) -> re.Match[str] | None:
        return next((m for line in list(self.lines) if (m := re.search(pattern, line))), None)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        self._reader.join(5)
        return code


def test_run_deploys_publishes_stops_and_comes_back(tmp_path: Path, builds, recipe) -> None:
    import paho.mqtt.client as mqtt

    builds.add(recipe(PROBE, "1.0.0"))
    document = tmp_path / "deployment.json"
    disk_spool = {"mqtt": {"spooler": {"storageType": "Disk", "maxSizeInBytes": 1_000_000}}}
    document.write_text(
        json.dumps(
            {
                "components": {
                    PROBE: {"componentVersion": "1.0.0"},
                    "aws.greengrass.Nucleus": {
                        "componentVersion": "2.15.0",
                        "configurationUpdate": {"merge": disk_spool},
                    },
                }
            }
        )
    )
    root = tmp_path / "cores"
    args = ("--thing", "fan-001", "--root", root, "--build-dir", builds.folder)
    first = Run(*args, "--deployment", document)
    try:
        until(lambda: first.find(r"core fan-001: deployment \S+: SUCCESSFUL"), 60, "the deployment")
        port = int(
            until(lambda: first.find(r"broker: amqtt on mqtt://127\.0\.0\.1:(\d+)"), 5, "the broker").group(1)
        )
        received: list[bytes] = []
        observer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="observer")
        observer.on_message = lambda client, userdata, message: received.append(message.payload)
        observer.connect("127.0.0.1", port)
        observer.subscribe("probe/out", qos=1)
        observer.loop_start()
        try:
            until(lambda: len(received) >= 3, 30, "the probe's readings on the broker")
        finally:
            observer.loop_stop()
            observer.disconnect()
        assert json.loads(received[-1])["tag"] == "v1"
    finally:
        assert first.stop() == 0
    assert any("stopping" in line for line in first.lines)
    assert not (root / "fan-001" / "local" / "core.json").exists()
    assert "RUNNING -> STOPPING" in (root / "fan-001" / "logs" / f"{PROBE}.log").read_text()
    saved = saved_spooler_settings(root / "fan-001")
    assert saved == {**disk_spool["mqtt"]["spooler"], "keepQos0WhenOffline": False}

    second = Run(*args, "--broker-port", port)  # no deployment: the core brings back what it ran
    try:
        log = root / "core.log"  # the core's log lines go there, not to the terminal
        until(lambda: "fan-001: restored 1 components" in log.read_text(), 60, "the restore")
        assert second.find(rf"broker: amqtt on mqtt://127\.0\.0\.1:{port}\b")  # the port asked for
        assert (root / "fan-001" / "work" / "aws.greengrass.DiskSpooler" / "spooler.db").exists()  # Disk now
        status = subprocess.run(
            [sys.executable, "-m", "fanwatch", "core", "status", "--root", root, "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        (probe,) = json.loads(status.stdout)["fan-001"]["components"]
        assert probe["state"] == "RUNNING"
    finally:
        assert second.stop() == 0


def test_deploy_right_after_run_waits_for_the_core_shows_progress_and_stop_stops_it(
    tmp_path: Path, builds, recipe
) -> None:
    run_probe = f"{sys.executable} -u {{artifacts:path}}/probe_component.py"
    builds.add(recipe(PROBE, "1.0.0", lifecycle={"Install": "sleep 5", "Run": run_probe}))  # a slow Install
    root = tmp_path / "cores"
    run = Run("--thing", "fan-001", "--thing", "fan-002", "--root", root, "--build-dir", builds.folder)
    try:
        deploy = subprocess.run(  # at once, as `fanwatch core run ... &` then deploy does
            [
                sys.executable,
                "-m",
                "fanwatch",
                "core",
                "deploy",
                "--root",
                root,
                "--component",
                f"{PROBE}=1.0.0",
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert deploy.returncode == 0, deploy.stderr
        assert "waiting up to 60 s for the cores" in deploy.stderr
        assert re.search(r"deploying cli-\w+ to fan-001, fan-002", deploy.stdout)
        assert re.search(rf"fan-00[12]: {PROBE} 1\.0\.0 \w+", deploy.stdout), deploy.stdout  # progress
        for thing in ("fan-001", "fan-002"):
            assert re.search(rf"^{thing}: cli-\w+: SUCCESSFUL \({PROBE} RUNNING\)$", deploy.stdout, re.M)
        assert run.find(r"what the things send to IoT Core: amqtt_sub --url mqtt://127\.0\.0\.1:\d+ ")
        assert run.find(rf"log: {re.escape(str(root / 'core.log'))}")
        assert not run.find(r"\[INFO\]"), "the core's log lines go to core.log, not to the terminal"
        assert (root / "cores.json").exists()

        stop = subprocess.run(
            [sys.executable, "-m", "fanwatch", "core", "stop", "--root", root],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stop.returncode == 0, stop.stderr
        assert run.process.wait(5) == 0
        assert not (root / "cores.json").exists()
        assert not (root / "fan-001" / "local" / "core.json").exists()
    finally:
        if run.process.poll() is None:
            run.stop()


def test_deploy_and_status_without_a_core_say_so_in_one_line(tmp_path: Path) -> None:
    for argv in (("deploy", "--wait", "0.5", "--component", "x=1.0.0"), ("status", "--wait", "0"), ("stop",)):
        result = subprocess.run(
            [sys.executable, "-m", "fanwatch", "core", *argv, "--root", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, (argv, result.stderr)
        (line,) = [x for x in result.stderr.splitlines() if not x.startswith("waiting up to")]
        assert line.startswith(f"fanwatch core {argv[0]}: no running core under {tmp_path}"), line


def test_run_with_mosquitto_missing_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fanwatch import cli
    from fanwatch.core.mqtt import mosquitto_broker

    monkeypatch.setattr(
        mosquitto_broker.shutil, "which", lambda *args, **kwargs: None
    )  # a machine without it
    code = cli.main(["core", "run", "--thing", "fan-001", "--root", str(tmp_path), "--broker", "mosquitto"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "fanwatch core: mosquitto is not installed (apt-get install -y mosquitto)\n"


def test_run_refuses_bad_arguments(tmp_path: Path) -> None:
    for argv, message in (
        ((), "name at least one thing"),
        (("--thing", "fan 1"), "not a valid AWS IoT thing name"),
        (("--thing", "a", "--platform", "arm"), "--platform expects KEY=VALUE"),
        (("--thing", "a", "--broker", "tcp://x"), "--broker: expected embedded, mosquitto"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "fanwatch", "core", "run", "--root", str(tmp_path), *argv],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ},
        )
        assert result.returncode == 2, (argv, result.stderr)
        assert message in result.stderr, (argv, result.stderr)


@pytest.mark.mosquitto
@pytest.mark.skipif(
    not any(
        Path(d, "mosquitto").exists() for d in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin"]
    ),
    reason="mosquitto is not installed (CI installs it with apt)",
)
def test_run_with_mosquitto_gives_each_thing_its_certificate(tmp_path: Path, builds, recipe) -> None:
    import ssl

    import paho.mqtt.client as mqtt

    from fanwatch.core.mqtt.broker import OBSERVER
    from fanwatch.core.mqtt.certs import CertificateAuthority

    # each thing publishes under its own topics, as mosquitto's per-thing ACL allows
    builds.add(
        recipe(
            PROBE,
            "1.0.0",
            topic="fanwatch/{iot:thingName}/probe",
            accessControl={
                "aws.greengrass.ipc.mqttproxy": {
                    f"{PROBE}:mqttproxy:1": {
                        "operations": ["aws.greengrass#PublishToIoTCore"],
                        "resources": ["fanwatch/{iot:thingName}/probe"],
                    }
                }
            },
        )
    )
    document = tmp_path / "deployment.json"
    nucleus = {
        "componentVersion": "2.15.0",
        "configurationUpdate": {"merge": {"interpolateComponentConfiguration": True}},
    }
    document.write_text(
        json.dumps({"components": {PROBE: {"componentVersion": "1.0.0"}, "aws.greengrass.Nucleus": nucleus}})
    )
    root = tmp_path / "cores"
    run = Run(
        "--things",
        "2",
        "--root",
        root,
        "--build-dir",
        builds.folder,
        "--broker",
        "mosquitto",
        "--deployment",
        document,
    )
    try:
        for thing in ("fan-001", "fan-002"):
            until(
                lambda thing=thing: run.find(rf"core {thing}: deployment \S+: SUCCESSFUL"),
                60,
                f"{thing}'s deployment",
            )
        port = int(
            until(
                lambda: run.find(r"broker: mosquitto on mqtts://127\.0\.0\.1:(\d+)"), 5, "the broker"
            ).group(1)
        )
        ca = CertificateAuthority(root / "broker" / "ca")
        observer_pair = ca.issue_client(OBSERVER)
        received: list[str] = []
        observer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="observer")
        observer.tls_set(
            str(ca.cert_file), str(observer_pair.cert_file), str(observer_pair.key_file), ssl.CERT_REQUIRED
        )
        observer.on_message = lambda client, userdata, message: received.append(message.topic)
        observer.connect("127.0.0.1", port)
        observer.subscribe("fanwatch/#", qos=1)
        observer.loop_start()
        try:
            until(
                lambda: {"fanwatch/fan-001/probe", "fanwatch/fan-002/probe"} <= set(received),
                30,
                "both things",
            )
        finally:
            observer.loop_stop()
            observer.disconnect()
    finally:
        assert run.stop() == 0
