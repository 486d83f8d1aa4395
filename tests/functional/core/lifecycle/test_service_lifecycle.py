"""A component's lifecycle with real processes: states, restarts to BROKEN, timeouts, Skipif, Setenv,
dependency order and shutdown, as the nucleus runs them."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest

from fanwatch.core.deployment.recipe import Lifecycle
from fanwatch.core.lifecycle import Service, ServiceSpec
from fanwatch.core.ports import ComponentState as S

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


class Recorder:
    """Runs services like a core does and records every state each one goes through."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        # a service not started yet has an empty history: the waits below may look before it starts
        # (Python 3.12's wait_for runs the first check before the service's task has run)
        self.history: defaultdict[str, list[S]] = defaultdict(list)
        self.services: dict[str, Service] = {}

    def on_state(self, service: Service, state: S) -> None:
        self.history[service.name].append(state)
        for other in self.services.values():
            other.poke()

    def ready(self, service: Service) -> bool:
        return all(self.services[d].state in {S.RUNNING, S.FINISHED} for d in service.spec.hard_dependencies)

    def add(
        self, name: str, lifecycle: dict, *, env: dict | None = None, hard: frozenset[str] = frozenset()
    ) -> Service:
        spec = ServiceSpec(
            name=name,
            version="1.0.0",
            lifecycle=Lifecycle.from_mapping(lifecycle),
            env=env or {},
            work_dir=self.tmp_path / "work" / name,
            log_path=self.tmp_path / "logs" / f"{name}.log",
            hard_dependencies=hard,
        )
        service = Service(spec, on_state=self.on_state, dependencies_ready=self.ready)
        self.services[name] = service
        return service

    def log(self, name: str) -> str:
        return (self.tmp_path / "logs" / f"{name}.log").read_text()


async def settle(service: Service, timeout: float = 20) -> S:
    return await asyncio.wait_for(service.wait_settled(), timeout)


async def test_run_step_goes_running_then_finished(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    svc = rec.add(
        "a",
        {
            "install": "echo installing",
            "run": "echo hello from $GREETING; sleep 0.2",
            "setenv": {"GREETING": "recipe"},
        },
    )
    svc.start()
    assert await settle(svc) is S.RUNNING
    await asyncio.wait_for(_until(lambda: svc.state is S.FINISHED), 10)
    assert rec.history["a"] == [S.INSTALLED, S.STARTING, S.RUNNING, S.FINISHED]
    log = rec.log("a")
    assert "(install.stdout) a: installing" in log
    assert "(run.stdout) a: hello from recipe" in log
    await svc.stop()


async def test_failing_run_restarts_then_goes_broken_after_three_errors(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    counter = tmp_path / "runs"
    svc = rec.add("crashy", {"run": f"echo x >> {counter}; echo boom >&2; exit 3", "shutdown": "echo bye"})
    svc.start()
    await asyncio.wait_for(_until(lambda: svc.state is S.BROKEN), 20)
    # a BROKEN component is shut down once more: wait for that shutdown's output
    await asyncio.wait_for(_until(lambda: rec.log("crashy").count("(shutdown.stdout) crashy: bye") == 3), 10)
    assert counter.read_text().count("x") == 3  # the first run and two restarts
    assert rec.history["crashy"].count(S.ERRORED) == 2
    assert rec.history["crashy"][-1] is S.BROKEN
    await svc.stop()
    assert svc.state is S.BROKEN
    log = rec.log("crashy")
    assert "(run.stderr) crashy: boom" in log and "[WARN]" in log
    assert log.count("(shutdown.stdout) crashy: bye") == 3  # stopping a BROKEN component runs nothing more


async def test_failing_install_retries_from_new(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    svc = rec.add("badinstall", {"install": "exit 1", "run": "sleep 30"})
    svc.start()
    assert await settle(svc) is S.BROKEN
    assert rec.history["badinstall"] == [S.ERRORED, S.NEW, S.ERRORED, S.NEW, S.BROKEN]
    await svc.stop()


async def test_reporting_running_resets_the_error_count(tmp_path: Path) -> None:
    """A component that says RUNNING after each start is never BROKEN: the nucleus resets the count."""
    rec = Recorder(tmp_path)
    svc = rec.add("flappy", {"run": "sleep 0.3; exit 1"})
    svc.start()
    for starts in range(1, 5):
        await asyncio.wait_for(_until(lambda n=starts: rec.history["flappy"].count(S.RUNNING) == n), 10)
        svc.report(S.RUNNING)
    await asyncio.wait_for(_until(lambda: rec.history["flappy"].count(S.ERRORED) == 4), 10)
    assert S.BROKEN not in rec.history["flappy"]
    await svc.stop()


async def test_component_reporting_errored_is_restarted(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    svc = rec.add("selfreport", {"run": "sleep 30"})
    svc.start()
    assert await settle(svc) is S.RUNNING
    svc.report(S.ERRORED)
    await asyncio.wait_for(_until(lambda: rec.history["selfreport"].count(S.RUNNING) == 2), 15)
    assert rec.history["selfreport"][3:7] == [S.ERRORED, S.STOPPING, S.INSTALLED, S.STARTING]
    await svc.stop()


async def test_startup_runs_to_the_end_then_running(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    daemon_pid = tmp_path / "daemon.pid"
    svc = rec.add("daemon", {"startup": f"sleep 30 & echo $! > {daemon_pid}"})
    svc.start()
    assert await settle(svc) is S.RUNNING
    pid = int(daemon_pid.read_text())
    assert running(pid)  # the daemon the startup left behind
    await svc.stop()
    assert rec.history["daemon"][-2:] == [S.STOPPING, S.FINISHED]
    assert not running(pid)  # stopping reached it through its process group


async def test_startup_timeout_is_an_error(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    svc = rec.add("slow", {"startup": {"script": "sleep 30", "timeout": 0.3}})
    svc.start()
    assert await settle(svc) is S.BROKEN
    assert "startup timed out after 0.3 s" in rec.log("slow")
    await svc.stop()


async def test_install_timeout_is_an_error(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    svc = rec.add("slowinstall", {"install": {"script": "sleep 30", "timeout": 0.2}, "run": "true"})
    svc.start()
    assert await settle(svc) is S.BROKEN
    assert "install timed out after 0.2 s" in rec.log("slowinstall")


async def test_shutdown_then_sigterm(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    marker, ready = tmp_path / "got-term", tmp_path / "trapped"
    script = f"trap 'echo term > {marker}; exit 0' TERM; touch {ready}; while true; do sleep 0.05; done"
    svc = rec.add("graceful", {"run": script, "shutdown": "echo shutting down"})
    svc.start()
    assert await settle(svc) is S.RUNNING
    await asyncio.wait_for(_until(ready.exists), 5)
    await svc.stop()
    assert marker.read_text().strip() == "term"
    assert "(shutdown.stdout) graceful: shutting down" in rec.log("graceful")
    assert svc.state is S.FINISHED


async def test_sigkill_after_grace_period(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fanwatch.core.lifecycle.process.TERMINATE_GRACE_SECONDS", 0.3)
    rec = Recorder(tmp_path)
    ready = tmp_path / "trapped"
    svc = rec.add("stubborn", {"run": f"trap '' TERM; touch {ready}; while true; do sleep 0.05; done"})
    svc.start()
    assert await settle(svc) is S.RUNNING
    await asyncio.wait_for(_until(ready.exists), 5)
    await asyncio.wait_for(svc.stop(), 5)
    assert "ignored SIGTERM; killed" in rec.log("stubborn")


@pytest.mark.parametrize(
    ("skipif", "skipped"),
    [
        ("onpath sh", True),
        ("onpath no-such-binary-anywhere", False),
        ("!onpath no-such-binary-anywhere", True),
    ],
)
async def test_skipif(tmp_path: Path, skipif: str, skipped: bool) -> None:
    rec = Recorder(tmp_path)
    marker = tmp_path / "ran"
    svc = rec.add("skippy", {"install": {"script": f"touch {marker}", "skipif": skipif}})
    svc.start()
    assert await settle(svc) is S.FINISHED
    assert marker.exists() is not skipped
    await svc.stop()


async def test_skipif_exists_and_invalid(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    (tmp_path / "flag").touch()
    ok = rec.add("exists", {"install": {"script": "exit 1", "skipif": f"exists {tmp_path / 'flag'}"}})
    bad = rec.add("invalid", {"install": {"script": "true", "skipif": "sometimes"}})
    ok.start()
    bad.start()
    assert await settle(ok) is S.FINISHED
    assert await settle(bad) is S.BROKEN
    assert "invalid Skipif 'sometimes'" in rec.log("invalid")


async def test_environment_layers(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    out = tmp_path / "env.txt"
    svc = rec.add(
        "envy",
        {
            "setenv": {"LAYER": "lifecycle", "KEEP": "lifecycle"},
            "run": {"script": f'echo "$SVCUID $LAYER $KEEP $PWD" > {out}', "setenv": {"LAYER": "step"}},
        },
        env={"SVCUID": "token-1", "LAYER": "nucleus"},
    )
    svc.start()
    await asyncio.wait_for(_until(lambda: svc.state is S.FINISHED), 10)
    assert out.read_text().split() == ["token-1", "step", "lifecycle", str(tmp_path / "work" / "envy")]
    await svc.stop()


async def test_hard_dependency_starts_first_and_failure_restarts_the_depender(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    base = rec.add("base", {"install": "sleep 0.3", "run": "sleep 30"})
    app = rec.add("app", {"run": "sleep 30"}, hard=frozenset({"base"}))
    app.start()
    base.start()
    assert await settle(app) is S.RUNNING
    order = rec.history["app"]
    assert order[:2] == [S.INSTALLED, S.STARTING]
    assert rec.history["base"].index(S.RUNNING) >= 0
    base.report(S.ERRORED)
    await asyncio.wait_for(_until(lambda: rec.history["app"].count(S.RUNNING) == 2), 15)
    assert S.STOPPING in rec.history["app"]
    await app.stop()
    await base.stop()


async def test_no_startup_and_no_run_is_finished(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    svc = rec.add("installonly", {"install": "true"})
    svc.start()
    assert await settle(svc) is S.FINISHED
    await svc.stop()


async def test_output_without_newline_and_long_lines_are_kept(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    svc = rec.add("chatty", {"run": "printf 'partial'; head -c 70000 /dev/zero | tr '\\0' x"})
    svc.start()
    await asyncio.wait_for(_until(lambda: svc.state is S.FINISHED), 10)
    await asyncio.sleep(0.1)
    log = rec.log("chatty")
    assert "partial" in log
    assert log.count("x") >= 70000
    await svc.stop()


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan waits for PID 1 to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def _until(predicate, interval: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    while not predicate():
        await asyncio.sleep(interval)
