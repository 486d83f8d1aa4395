"""``fanwatch stack up`` as a user runs it: it prints where everything is, serves it, stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fanwatch.standin import AwsEndpoint


def test_stack_up_serves_the_stack_until_ctrl_c_and_lake_query_reads_it(
    tmp_path: Path, repo_root: Path
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "fanwatch", "stack", "up", "--dir", str(tmp_path), "--status-every", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=repo_root,
        env=env,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C to stop"):
                break
        text = "".join(lines)
        endpoint = re.search(r"AWS stand-in\s+(http://127\.0\.0\.1:\d+)", text)
        assert endpoint, text
        assert re.search(r"MQTT broker \(amqtt\)\s+mqtt://127\.0\.0\.1:\d+", text), text
        assert "AWS_ENDPOINT_URL=" + endpoint.group(1) in text
        assert "telemetry stream   fanwatch-telemetry" in text
        kinesis = AwsEndpoint(endpoint.group(1)).client("kinesis")
        assert sorted(kinesis.list_streams()["StreamNames"]) == ["fanwatch-anomalies", "fanwatch-telemetry"]
        query = subprocess.run(
            [
                sys.executable,
                "-m",
                "fanwatch",
                "lake",
                "query",
                "--endpoint",
                endpoint.group(1),
                "SELECT count(*) AS n FROM readings",
            ],
            capture_output=True,
            text=True,
            cwd=repo_root,
            timeout=60,
        )
        assert query.returncode == 0, query.stderr
        assert query.stdout.split()[:3] == ["n", "-", "0"]
        assert process.stdout.readline().startswith("messages 0 ·")  # the status line
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert "stopping: writing what Firehose buffers to the lake" in rest


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--parameter", "NoEquals"], "NAME=VALUE expected"), (["--parameter", "NoSuchKnob=1"], "no parameter")],
)
def test_stack_up_refuses_bad_parameters(
    tmp_path: Path, args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fanwatch.cli import main

    assert main(["stack", "up", "--dir", str(tmp_path), *args]) == 2
    assert says in capsys.readouterr().err
