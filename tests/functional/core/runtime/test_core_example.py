"""docs/examples/core_fleet.py runs as the docs say and shows what docs/core.md promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(120)
def test_the_fleet_example_runs(repo_root: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(repo_root / "docs" / "examples" / "core_fleet.py")],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "fan-001: 1.0.0 SUCCESSFUL",
        "fan-002: 1.0.0 SUCCESSFUL",
        "fan-001: canary 1.1.0 SUCCESSFUL",
    ]
    assert "fan-001: example.Hello 1.1.0 FINISHED" in lines
    assert "fan-002: example.Hello 1.0.0 FINISHED" in lines
    remedy = "{'configurationUpdate': {'reset': ['/legacyTopic']}}"
    assert f"  stale key /legacyTopic = 'fans/old': remove with {remedy}" in lines
    assert "fan-001: reset SUCCESSFUL: greeting 'hello again', stale keys left: []" in lines
    assert lines[-1] == "fan-002 said: [\"published 'hello' on fanwatch/fan-002/hello\"]"
