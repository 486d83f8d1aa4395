"""Several cores on one machine, and the control socket that ``fanwatch core deploy/status`` use."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import stat
from pathlib import Path

import pytest

from fanwatch.core.control import MAX_REQUEST_BYTES, ControlError, request
from fanwatch.core.fleet import Fleet
from fanwatch.core.layout import CoreRootInUse
from fanwatch.core.runtime import LocalCore

pytestmark = pytest.mark.timeout(90)

PROBE = "test.Probe"
DOCUMENT = {"components": {PROBE: {"componentVersion": "1.0.0"}}}


@pytest.mark.asyncio
async def test_a_fleet_runs_one_core_per_thing(
    tmp_path: Path, builds, recipe, events, until, link_factory
) -> None:
    builds.add(recipe(PROBE, "1.0.0"))
    async with Fleet(
        tmp_path / "fleet", Fleet.names(2), links=link_factory, build_dirs=[builds.folder], stable_seconds=0.3
    ) as fleet:
        assert fleet.things == ["fan-001", "fan-002"]
        results = await fleet.deploy(DOCUMENT)
        assert {t: r.status for t, r in results.items()} == {"fan-001": "SUCCESSFUL", "fan-002": "SUCCESSFUL"}
        assert len({r.deployment_id for r in results.values()}) == 1  # one deployment, two things
        cores = fleet.cores
        for thing, core in cores.items():
            assert core.layout.root == tmp_path / "fleet" / thing
            started = await until(
                lambda core=core: [e for e in events(core, PROBE) if e["event"] == "started"]
            )
            assert started[0]["thing"] == thing
            await until(lambda thing=thing: link_factory.links[thing].messages("probe/out"))
        logs = {thing: core.layout.core_log.read_text() for thing, core in cores.items()}
        assert "probe/out" not in logs["fan-001"]  # no IPC lines of another core leak in
        for thing in cores:
            assert "IPC call denied" in logs[thing] and f"core {thing} started" in logs[thing]
            assert f"core {'fan-002' if thing == 'fan-001' else 'fan-001'} started" not in logs[thing]
        sockets = {core.layout.ipc_socket for core in cores.values()}
        assert len(sockets) == 2
        tokens = [core.token_for(PROBE) for core in cores.values()]
        assert tokens[0] != tokens[1] and cores["fan-001"].component_for_token(tokens[1]) is None
        canary = await fleet.deploy({"components": {}}, things=["fan-002"])
        assert canary["fan-002"].succeeded
        assert fleet.status()["fan-002"]["components"] == []
        assert fleet.status()["fan-001"]["components"][0]["state"] == "RUNNING"
        with pytest.raises(KeyError, match="fan-404"):
            await fleet.deploy(DOCUMENT, things=["fan-404"])
    assert sorted(link_factory.closed) == ["fan-001", "fan-002"]  # each link outlives its core
    assert not (tmp_path / "fleet" / "fan-001" / "local" / "core.json").exists()


@pytest.mark.asyncio
async def test_a_second_core_on_the_same_root_is_refused(
    tmp_path: Path, builds, recipe, link_factory
) -> None:
    """Issue 14: both ran, shared the Disk spool, and every publish failed on a UNIQUE constraint."""
    builds.add(recipe(PROBE, "1.0.0"))
    async with Fleet(tmp_path / "fleet", ["fan-001"], links=link_factory, build_dirs=[builds.folder]):
        second = Fleet(tmp_path / "fleet", ["fan-001", "fan-002"], links=link_factory)
        with pytest.raises(CoreRootInUse, match=r"another core runs on .*fan-001 already"):
            await second.start()
        assert link_factory.closed == []  # the second never opened fan-001's link (nor its spool)
    async with Fleet(tmp_path / "fleet", ["fan-001"], links=link_factory):
        pass  # free again once the first has stopped


@pytest.mark.asyncio
async def test_a_fleet_stops_its_cores_together(tmp_path: Path, link_factory) -> None:
    """Issue 14: cores stopped one after another, each waiting out its link (54 s for 3)."""
    spans: dict[str, list[float]] = {}
    loop = asyncio.get_running_loop()

    @contextlib.asynccontextmanager
    async def slow_links(thing: str, root: Path):  # a link whose close takes a while, as offline ones do
        async with link_factory(thing, root) as link:
            yield link
            spans[thing] = [loop.time()]
            await asyncio.sleep(0.5)
            spans[thing].append(loop.time())

    fleet = Fleet(tmp_path / "fleet", Fleet.names(3), links=slow_links)
    await fleet.start()
    await fleet.stop()
    assert len(spans) == 3
    assert max(start for start, _ in spans.values()) < min(end for _, end in spans.values())  # overlapping


def test_fleet_names() -> None:
    assert Fleet.names(3, prefix="pi-") == ["pi-001", "pi-002", "pi-003"]
    with pytest.raises(ValueError, match="at least one"):
        Fleet.names(0)
    with pytest.raises(ValueError, match="unique"):
        Fleet("/tmp/x", ["a", "a"], links=lambda thing, root: contextlib.nullcontext())


@pytest.mark.asyncio
async def test_control_socket_status_and_deploy(core: LocalCore, builds, recipe) -> None:
    builds.add(recipe(PROBE, "1.0.0"))
    state = json.loads(core.layout.state_file.read_text())
    control = Path(state["controlSocket"])
    assert stat.S_IMODE(control.stat().st_mode) == 0o600
    result = await asyncio.to_thread(
        request, control, {"op": "deploy", "document": DOCUMENT, "buildDirs": [str(builds.folder)]}
    )
    assert result["status"] == "SUCCESSFUL"
    status = await asyncio.to_thread(request, control, {"op": "status"})
    assert status["components"][0]["name"] == PROBE
    assert status["deployment"]["status"] == "SUCCESSFUL"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"not json\n", "not a JSON request"),
        (b"[1, 2]\n", "a request is a JSON object"),
        (b'{"op": "reboot"}\n', "unknown op 'reboot'"),
        (b'{"op": "deploy", "document": {"components": 5}}\n', None),
        (b'{"op": "deploy", "buildDirs": "/etc"}\n', "buildDirs: expected a list"),
        (b'{"op": "deploy", "buildDirs": ["/no/such/folder"]}\n', "FileNotFoundError"),
        (b"x" * (MAX_REQUEST_BYTES + 10) + b"\n", "request larger than"),
    ],
)
@pytest.mark.asyncio
async def test_bad_control_requests_get_errors_and_the_core_carries_on(
    core: LocalCore, raw: bytes, error
) -> None:
    socket_path = json.loads(core.layout.state_file.read_text())["controlSocket"]

    def send() -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(socket_path)
            client.sendall(raw)
            return json.loads(client.makefile("rb").readline())

    answer = await asyncio.to_thread(send)
    if error is None:  # a well-formed request with an invalid document: a failed deployment, not an error
        assert answer["ok"] and answer["result"]["status"] == "FAILED_NO_STATE_CHANGE"
    else:
        assert not answer["ok"] and error in answer["error"]
    status = await asyncio.to_thread(request, Path(socket_path), {"op": "status"})
    assert status["thing"] == "fan-001"


@pytest.mark.asyncio
async def test_a_client_that_vanishes_does_not_hurt(core: LocalCore) -> None:
    socket_path = json.loads(core.layout.state_file.read_text())["controlSocket"]

    def vanish() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(socket_path)
            client.sendall(b'{"op": "sta')

    await asyncio.to_thread(vanish)
    assert (await asyncio.to_thread(request, Path(socket_path), {"op": "status"}))["thing"] == "fan-001"


def test_no_core_listening(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="no core is listening"):
        request(tmp_path / "nothing.socket", {"op": "status"})
