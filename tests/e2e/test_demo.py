"""``make demo`` end to end: ``fanwatch demo`` on local Greengrass cores with the embedded AWS stand-in.

The demo builds both components, starts the broker, the stand-in and a local core, deploys with a
deployment document (the components' Install step pip-installs awsiotsdk into a fresh venv here, as on
a first run), runs eight simulated minutes at timeScale 20 and lets the cloud finish. The
tests read what it left behind with their own eyes rather than trust its summary: the broker's record
(``messages.jsonl``) with the wire contract, the lake's Parquet files with pyarrow, and the stack's
Athena named queries on that lake.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fanwatch.demo.ledger import reading_key
from fanwatch.demo.scenario import Scenario
from fanwatch.demo.text import window
from fanwatch.telemetry import parse_status, parse_telemetry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

# One device (a healthy fan, a stall, bearing wear): two component processes, light enough for a busy CI
# machine to keep the pace of timeScale 20; the whole fleet's story is `make demo`'s.
DEVICES, MINUTES, WARMUP = 1, 8, 3
THINGS = ("demo-pi-001",)
HEALTHY = {("demo-pi-001", "fan0")}


def _env() -> dict[str, str]:
    """This venv's Python first on PATH: the components' Install step runs ``python3``."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    out = tmp_path_factory.mktemp("demo")
    command = [sys.executable, "-m", "fanwatch", "demo", "--devices", str(DEVICES), "--minutes", str(MINUTES)]
    command += ["--warmup-minutes", str(WARMUP), "--out", str(out)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env()
    )
    try:
        output, _ = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # the demo stops its cores and reports what it saw
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"fanwatch demo did not finish in 300 s:\n{output}")
    return out, output, process.returncode


def _messages(out: Path, kind: str) -> list[tuple[str, str]]:
    """(thing, payload) of every message of ``kind`` the broker delivered."""
    records = [json.loads(line) for line in (out / "messages.jsonl").read_text().splitlines()]
    return [(r["topic"].split("/")[1], r["payload"]) for r in records if r["topic"].endswith(f"/{kind}")]


def _table(out: Path, name: str) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted((out / "lake" / name).rglob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist() if files else []


def test_the_demo_passes_and_says_so(demo: tuple[Path, str, int]) -> None:
    _, output, returncode = demo
    assert returncode == 0, output
    assert "Install step creates a venv" in output  # a first run says what it is waiting for
    assert "deployment SUCCESSFUL on every thing" in output
    status = r"simulated \d\d:\d\d of 08:00 · 1/1 devices publishing · readings: [\d,]+ sent, [\d,]+ scored"
    assert re.search(status, output)  # the status line
    assert "nothing lost, nothing twice" in output and "fanwatch demo OK" in output


def test_every_reading_the_devices_published_is_in_the_lake_exactly_once(demo: tuple[Path, str, int]) -> None:
    out, _, _ = demo
    telemetry = [parse_telemetry(payload, thing=thing) for thing, payload in _messages(out, "telemetry")]
    published = {reading_key(m.thing, m.fan, m.boot, m.seq, r.ts) for m in telemetry for r in m.readings}
    stored = [
        reading_key(r["thing"], r["fan"], r["boot"], r["seq"], r["ts"]) for r in _table(out, "readings")
    ]
    assert len(published) > DEVICES * 3 * MINUTES * 60 / 2  # every reading, once a simulated second
    assert set(stored) == published and len(stored) == len(published)
    for thing in THINGS:
        statuses = [parse_status(p, thing=t) for t, p in _messages(out, "status") if t == thing]
        assert statuses[-1].components == {"fanwatch.EdgeFilter": "1.0.0", "fanwatch.Tachometer": "1.0.0"}


def test_the_stall_is_caught_at_the_edge_and_by_the_forest_and_healthy_fans_stay_quiet(
    demo: tuple[Path, str, int],
) -> None:
    out, output, _ = demo
    scenario = Scenario.fleet(devices=DEVICES, minutes=MINUTES, warmup_minutes=WARMUP)
    stall = scenario.fan("demo-pi-001", "fan1").faults[0]
    events = _table(out, "events")
    on_stalled = [e for e in events if (e["thing"], e["fan"]) == ("demo-pi-001", "fan1")]
    assert {(e["source"], e["kind"]) for e in on_stalled} >= {("edge", "stall"), ("cloud", "rcf")}
    raised = [e for e in events if (e["thing"], e["fan"]) in HEALTHY and e["state"] != "cleared"]
    assert raised == []
    assert f"demo-pi-001/fan1  stall {window(stall.start_s, stall.end_s)}" in output  # as scheduled
    assert "has stalled: 0 RPM" in output  # the notification, as a person reads it


def test_each_athena_named_query_of_the_stack_runs_on_the_demo_lake(demo: tuple[Path, str, int]) -> None:
    from fanwatch.standin.endpoint import AwsEndpoint
    from fanwatch.standin.lake import FolderObjects, Lake
    from fanwatch.standin.template import TEMPLATE, build_model, load_template

    out, _, _ = demo
    model = build_model(load_template(TEMPLATE), AwsEndpoint("http://local"))
    lake = Lake(FolderObjects(out / "lake"), model.glue_tables)
    day = max(r["dt"] for r in lake.query("SELECT DISTINCT dt FROM readings").records())
    parameters = {"rpm-history-of-one-fan": ["demo-pi-001", "fan1", day, day]}
    for query in model.queries:
        rows = lake.query(query.sql, parameters.get(query.name)).records()
        assert rows, f"{query.name} returned nothing on the demo's lake"


def test_it_draws_the_fleet_and_leaves_what_a_user_would_look_at(demo: tuple[Path, str, int]) -> None:
    out, output, _ = demo
    picture, report = out / "fleet.png", out / "report.html"
    assert str(picture) in output and str(report) in output
    assert picture.read_bytes().startswith(b"\x89PNG") and picture.stat().st_size > 50_000
    assert "Plotly.newPlot" in report.read_text()
    document = json.loads((out / "deployments" / "demo-pi-001.json").read_text())
    nucleus = document["components"]["aws.greengrass.Nucleus"]["configurationUpdate"]["merge"]
    assert json.loads(nucleus) == {"interpolateComponentConfiguration": True}
    for thing in THINGS:  # SIGTERM: the filter published what it held before it exited
        log = (out / "cores" / thing / "logs" / "fanwatch.EdgeFilter.log").read_text()
        assert "flushed on shutdown" in log
        assert (out / "cores" / thing / "work" / "fanwatch.Tachometer" / "venv" / "bin" / "python").exists()


def test_a_fleet_that_cannot_install_its_components_says_why_and_exits_non_zero(tmp_path: Path) -> None:
    """No PyPI: the Install step fails on every attempt and the deployment rolls back."""
    command = [sys.executable, "-m", "fanwatch", "demo", "--devices", "1", "--minutes", "3"]
    command += ["--warmup-minutes", "0", "--out", str(tmp_path)]
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
