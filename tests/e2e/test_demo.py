"""``make demo`` end to end: ``fanwatch demo`` on local Greengrass cores, checked from what it leaves behind.

The demo builds both components, starts the embedded broker and two local cores, deploys with a
deployment document per thing (the components' Install step pip-installs awsiotsdk into a fresh venv
here, as on a first run), runs eight simulated minutes at timeScale 20 and stops. The test reads the
broker's record (``messages.jsonl``) with the wire contract itself rather than trust the demo's own
summary, and checks the picture, the deployment documents and the filter's flush on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fanwatch.telemetry import parse_alert, parse_status, parse_telemetry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

THINGS = ("demo-pi-001", "demo-pi-002")


def _env() -> dict[str, str]:
    """This venv's Python first on PATH: the components' Install step runs ``python3``."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo")
    command = [sys.executable, "-m", "fanwatch", "demo", "--devices", "2", "--minutes", "8"]
    command += ["--warmup-minutes", "1", "--out", str(out)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env()
    )
    try:
        output, _ = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # the demo stops its cores and reports what it saw
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"fanwatch demo did not finish in 240 s:\n{output}")
    assert process.returncode == 0, output
    return out, output


def _messages(out: Path, kind: str) -> list[tuple[str, str]]:
    """(thing, payload) of every message of ``kind`` the broker delivered."""
    records = [json.loads(line) for line in (out / "messages.jsonl").read_text().splitlines()]
    return [(r["topic"].split("/")[1], r["payload"]) for r in records if r["topic"].endswith(f"/{kind}")]


def test_every_thing_publishes_telemetry_through_the_real_components(demo: tuple[Path, str]) -> None:
    out, output = demo
    telemetry = [parse_telemetry(payload, thing=thing) for thing, payload in _messages(out, "telemetry")]
    assert {m.thing for m in telemetry} == set(THINGS)
    for thing in THINGS:
        fans = {m.fan for m in telemetry if m.thing == thing}
        assert fans == {"fan0", "fan1", "fan2"}, thing
        statuses = [parse_status(p, thing=t) for t, p in _messages(out, "status") if t == thing]
        assert statuses[-1].components == {"fanwatch.EdgeFilter": "1.0.0", "fanwatch.Tachometer": "1.0.0"}
    assert "Install step creates a venv" in output  # a first run says what it is waiting for
    assert "deployment SUCCESSFUL on every thing" in output
    assert "simulated 01:40 of 08:00" in output  # the progress line
    assert "fanwatch demo OK" in output


def test_the_stall_raises_a_stall_alert(demo: tuple[Path, str]) -> None:
    out, _ = demo
    alerts = [parse_alert(payload, thing=thing) for thing, payload in _messages(out, "alerts")]
    stall = [a for a in alerts if (a.thing, a.fan, a.kind) == ("demo-pi-001", "fan1", "stall")]
    assert [a.state for a in stall] == ["raised", "cleared"]
    telemetry = [parse_telemetry(payload, thing=thing) for thing, payload in _messages(out, "telemetry")]
    fan1 = [r for m in telemetry if (m.thing, m.fan) == ("demo-pi-001", "fan1") for r in m.readings]
    stalled = [r for r in fan1 if r.label == "stall"]
    assert stalled and min(r.rpm for r in stalled) == 0.0
    healthy = [a for a in alerts if (a.thing, a.fan) in {("demo-pi-001", "fan0"), ("demo-pi-002", "fan2")}]
    assert healthy == []


def test_it_draws_the_fleet_and_leaves_what_a_user_would_look_at(demo: tuple[Path, str]) -> None:
    out, output = demo
    picture = out / "fleet.png"
    assert str(picture) in output and str(out / "report.html") in output
    assert picture.read_bytes().startswith(b"\x89PNG") and picture.stat().st_size > 20_000
    document = json.loads((out / "deployments" / "demo-pi-001.json").read_text())
    nucleus = document["components"]["aws.greengrass.Nucleus"]["configurationUpdate"]["merge"]
    assert json.loads(nucleus) == {"interpolateComponentConfiguration": True}
    for thing in THINGS:  # SIGTERM: the filter published what it held before it exited
        log = (out / "cores" / thing / "logs" / "fanwatch.EdgeFilter.log").read_text()
        assert "flushed on shutdown" in log
        assert (out / "cores" / thing / "work" / "fanwatch.Tachometer" / "venv" / "bin" / "python").exists()


def test_a_fleet_that_cannot_install_its_components_says_why_and_exits_non_zero(tmp_path: Path) -> None:
    """No PyPI: the Install step fails on every attempt and the deployment rolls back."""
    command = [
        sys.executable,
        "-m",
        "fanwatch",
        "demo",
        "--devices",
        "1",
        "--minutes",
        "3",
        "--warmup-minutes",
        "0",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=180, env={**_env(), "PIP_NO_INDEX": "1"}
    )
    assert done.returncode == 1, done.stdout + done.stderr
    failure = next(
        line for line in done.stdout.splitlines() if line.startswith("- deployment to demo-pi-001")
    )
    assert "FAILED_ROLLBACK_COMPLETE" in failure and "install exited with 1" in failure
    assert "fanwatch demo --in-process" in failure
    assert "- no telemetry arrived from demo-pi-001" in done.stdout
