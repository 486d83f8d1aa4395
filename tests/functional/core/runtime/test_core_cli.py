"""``fanwatch core deploy`` and ``fanwatch core status`` against a running core (through its control
socket), as a user types them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fanwatch.cli import main
from fanwatch.core.runtime import LocalCore

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

PROBE = "test.Probe"


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, ["core", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_deploy_a_document_then_status(core: LocalCore, builds, recipe, tmp_path: Path, capsys) -> None:
    builds.add(recipe(PROBE, "1.0.0", legacyTopic="fans/old"))
    builds.add(recipe(PROBE, "2.0.0"))
    document = tmp_path / "deployment.json"
    document.write_text(json.dumps({"components": {PROBE: {"componentVersion": "1.0.0"}}}))
    code, out, _ = await cli(capsys, "deploy", "--root", tmp_path, "--build-dir", builds.folder, document)
    assert code == 0, out
    assert "fan-001: " in out and "SUCCESSFUL (test.Probe RUNNING)" in out
    # by options instead of a document: the newest stored version, a MERGE, like greengrass-cli
    code, out, _ = await cli(
        capsys, "deploy", "--root", tmp_path, "--component", PROBE, "--merge", f'{PROBE}={{"tag": "v9"}}'
    )
    assert code == 0, out
    code, out, _ = await cli(capsys, "status", "--root", tmp_path)
    assert code == 0
    assert "test.Probe" in out and "2.0.0" in out and "RUNNING" in out
    assert '"tag": "v9"' in out
    assert (
        "aws.greengrass.ipc.mqttproxy test.Probe:mqttproxy:1: aws.greengrass#PublishToIoTCore on probe/out"
        in out
    )
    assert "stale keys (not in 2.0.0's DefaultConfiguration):" in out
    assert (
        '/legacyTopic = "fans/old"   remove with {"configurationUpdate": {"reset": ["/legacyTopic"]}}' in out
    )
    code, out, _ = await cli(capsys, "status", "--root", tmp_path, "--json")
    assert json.loads(out)["fan-001"]["components"][0]["staleKeys"][0]["pointer"] == "/legacyTopic"
    code, out, _ = await cli(
        capsys,
        "deploy",
        "--root",
        tmp_path,
        "--component",
        f"{PROBE}=2.0.0",
        "--reset",
        f"{PROBE}=/legacyTopic",
    )
    assert code == 0
    code, out, _ = await cli(capsys, "status", "--root", tmp_path, "--thing", "fan-001")
    assert "stale keys" not in out


async def test_a_failed_deployment_exits_non_zero(
    core: LocalCore, builds, recipe, tmp_path: Path, capsys
) -> None:
    builds.add(recipe(PROBE, "1.0.0", lifecycle={"Run": "exit 1"}))
    code, out, _ = await cli(
        capsys,
        "deploy",
        "--root",
        tmp_path,
        "--build-dir",
        builds.folder,
        "--component",
        f"{PROBE}=1.0.0",
        "--failure-handling",
        "DO_NOTHING",
    )
    assert code == 1
    assert "FAILED_ROLLBACK_NOT_REQUESTED (test.Probe BROKEN)" in out
    code, out, _ = await cli(capsys, "status", "--root", tmp_path)
    assert "BROKEN" in out and "exit code 1" in out


async def test_usage_errors(core: LocalCore, tmp_path: Path, capsys) -> None:
    # --wait 0: the default waits a minute for cores that are starting (tested in test_core_run)
    code, _, err = await cli(capsys, "status", "--root", tmp_path / "nowhere", "--wait", "0")
    assert code == 2 and "no running core under" in err
    code, _, err = await cli(capsys, "status", "--root", tmp_path, "--thing", "fan-404", "--wait", "0")
    assert code == 2 and "no core answers for fan-404" in err
    code, _, err = await cli(capsys, "deploy", "--root", tmp_path)
    assert code == 2 and "give a deployment document or at least one --component" in err
    code, _, err = await cli(capsys, "deploy", "--root", tmp_path, "--component", "test.Unknown")
    assert code == 2 and "test.Unknown: no version in the core's component store" in err
    code, _, err = await cli(
        capsys, "deploy", "--root", tmp_path, "--component", "a=1.0.0", "--merge", "b={}"
    )
    assert code == 2 and "expected NAME=VALUE for a --component NAME" in err
