"""The README's quick start runs as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_quickstart_example_runs(repo_root: Path) -> None:
    script = repo_root / "docs" / "examples" / "rcf_quickstart.py"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("alerts at t = [1100")
    assert "fleet: 3 fans, 1200 records scored, 3 models stored" in lines[-1]
