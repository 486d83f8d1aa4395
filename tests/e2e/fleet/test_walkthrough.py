"""The README's fleet section runs as written (docs/examples/fleet_walkthrough.sh) on a local fleet of
three cores running the real fanwatch components, built by the project's build and published by
``fanwatch fleet publish``: a first deployment, a new version through a canary, status, rollback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fanwatch.environment import TIME_SCALE_VARIABLE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "docs" / "examples" / "fleet_walkthrough.sh"


def test_the_fleet_walkthrough_runs_as_the_readme_shows(tmp_path: Path) -> None:
    shutil.copytree(REPO / "deployments", tmp_path / "deployments")
    bin_dir = Path(sys.executable).parent  # where the fanwatch command is installed
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FLEET_ROOT": str(tmp_path / "fleet"),
        # the fleet's clock at 30x (10 without it): the 10-minute soak takes 20 s, and the 30-minute
        # job timeout still leaves a minute for the first Install (the local fleet test runs at 60x)
        TIME_SCALE_VARIABLE: "30",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),  # nothing of this machine's AWS setup
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
    }
    done = subprocess.run(
        ["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=840
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "fanwatch.EdgeFilter 1.0.0" in out and "fanwatch.EdgeFilter 1.0.1" in out
    assert "canary fanwatch-canary: every device stayed HEALTHY for 10.0m" in out  # 20 s at 30x
    assert "done: fanwatch-fleet: every device runs fleet.json" in out
    assert "fanwatch-fleet: rolling back from fanwatch.EdgeFilter 1.0.1" in out
    assert "done: fanwatch-fleet: back on fleet.json" in out
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Fleets")[1].split("\n## ")[0]
    (block,) = re.findall(r"^```sh\n(.*?)^```", section, flags=re.M | re.S)
    script = SCRIPT.read_text()
    for line in block.splitlines():
        for command in line.split("#")[0].split("&&"):
            command = command.strip().replace("/tmp/fanwatch-fleet", '"$ROOT"')
            assert not command or command in script, f"README command not in the walkthrough: {command}"
