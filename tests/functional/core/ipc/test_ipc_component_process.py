"""A component in its own process, configured only by its environment, hears a deployment's change."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from fanwatch.core.ports import ComponentState

PROBE = Path(__file__).with_name("ipc_probe_component.py")
COMPONENT = "fanwatch.EdgeFilter"
WAIT = 10.0


def test_a_running_component_receives_a_configuration_change_without_restart(core: Any) -> None:
    token = core.nucleus.add(COMPONENT, {"deadbandRpm": 30, "heartbeatSeconds": 60})
    env = {
        **os.environ,
        "SVCUID": token,
        "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": str(core.socket_path),
    }
    process = subprocess.Popen(
        [sys.executable, str(PROBE)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[dict[str, Any]] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    try:
        assert lines.get(timeout=WAIT) == {"ready": True}
        assert core.nucleus.reported == [(COMPONENT, ComponentState.RUNNING)]
        # a deployment changes one key; the runtime applies it while the component keeps running
        core.nucleus.config.set_tree(COMPONENT, {"deadbandRpm": 45, "heartbeatSeconds": 60})
        assert lines.get(timeout=WAIT) == {"keyPath": ["deadbandRpm"], "value": {"deadbandRpm": 45}}
        assert process.poll() is None, "the component was not restarted"
    finally:
        assert process.stdin is not None and process.stderr is not None
        process.stdin.close()  # the nucleus stops the component
        process.wait(timeout=WAIT)
        errors = process.stderr.read()
    assert process.returncode == 0, errors
