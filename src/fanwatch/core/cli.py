"""``fanwatch core``: run local Greengrass cores, deploy to them, and see what they run.

``fanwatch core run --thing fan-001 --root DIR --build-dir greengrass-build`` runs one core in
``DIR/fan-001`` (repeat ``--thing``, or give ``--things N``, for a fleet: one core per thing, each in
its own folder with its own sockets and MQTT connection); its log goes to ``DIR/core.log``, so the
terminal keeps the lines a person needs. ``deploy``, ``status`` and ``stop`` find the running cores
under ``--root`` (waiting for them to start) and talk to them through their control sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fanwatch.core.control import ControlError, request
from fanwatch.core.deployment.document import DetailedDeploymentStatus, FailurePolicy
from fanwatch.core.deployment.versions import Version
from fanwatch.core.mqtt.broker import LocalBroker
from fanwatch.core.running import clear_running, find_cores, stop_cores, write_running
from fanwatch.limits import DEFAULT_REGION, NUCLEUS_COMPONENT

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``fanwatch core`` and their options: ``run`` cores, ``deploy`` to them, show their
    ``status``, ``stop`` them."""
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    run_cmd = commands.add_parser("run", help="run one local core per thing until interrupted")
    _add_target(run_cmd, things="thing name (repeatable; or --things N)")
    run_cmd.add_argument("--things", type=int, metavar="N", help="N things named PREFIX001, PREFIX002, ...")
    run_cmd.add_argument("--prefix", default="fan-", help="thing name prefix for --things (default: fan-)")
    run_cmd.add_argument("--deployment", type=Path, metavar="FILE", help="deploy this document once started")
    run_cmd.add_argument("--region", default=DEFAULT_REGION, help="AWS_REGION given to components")
    run_cmd.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a platform label, e.g. architecture=aarch64 to pick a Raspberry Pi manifest",
    )
    _add_broker_arguments(run_cmd)

    deploy_cmd = commands.add_parser("deploy", help="apply a deployment to running cores")
    _add_target(deploy_cmd, things="thing name (repeatable; default: every core running under --root)")
    _add_wait(deploy_cmd)
    deploy_cmd.add_argument("document", nargs="?", type=Path, help="deployment document (JSON)")
    deploy_cmd.add_argument(
        "--component",
        action="append",
        default=[],
        metavar="NAME[=VERSION]",
        help="a root component (newest stored version if none given); instead of a document",
    )
    deploy_cmd.add_argument(
        "--merge", action="append", default=[], metavar="NAME=JSON", help="configurationUpdate MERGE for NAME"
    )
    deploy_cmd.add_argument(
        "--reset",
        action="append",
        default=[],
        metavar="NAME=POINTER",
        help="configurationUpdate RESET for NAME",
    )
    deploy_cmd.add_argument(
        "--failure-handling",
        choices=[p.value for p in FailurePolicy],
        default=None,
        help="when the deployment fails on a thing: ROLLBACK to what it ran before (the default) or "
        "DO_NOTHING (leave it as the failure left it, to look at)",
    )

    status_cmd = commands.add_parser("status", help="components, states, effective configuration, stale keys")
    status_cmd.add_argument("--root", type=Path, required=True, help="folder holding one folder per thing")
    status_cmd.add_argument("--thing", action="append", default=[], help="only this thing (repeatable)")
    status_cmd.add_argument("--json", action="store_true", help="print the full status as JSON")
    _add_wait(status_cmd)

    stop_cmd = commands.add_parser("stop", help="stop the cores running under --root (what Ctrl-C does)")
    stop_cmd.add_argument("--root", type=Path, required=True, help="folder holding one folder per thing")


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="wait this long for the cores to start (default 60; 0: do not wait)",
    )


def _add_target(parser: argparse.ArgumentParser, *, things: str) -> None:
    """--root, --thing (``things`` says what naming none means) and --build-dir."""
    parser.add_argument("--root", type=Path, required=True, help="folder holding one folder per thing")
    parser.add_argument("--thing", action="append", default=[], help=things)
    parser.add_argument(
        "--build-dir",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="gdk build output (recipes/ and artifacts/) to deploy from (repeatable)",
    )


def _add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        default="embedded",
        help="'embedded' (amqtt in this process, the default), 'mosquitto' (started here with mutual TLS, "
        "a certificate and an ACL per thing; needs the mosquitto program) or the URL of a running broker: "
        "mqtt://HOST:PORT, mqtts://HOST:PORT with --certs",
    )
    parser.add_argument(
        "--certs", type=Path, metavar="DIR", help="mTLS: ca.crt and <thing>.crt/.key per thing"
    )
    parser.add_argument(
        "--broker-port", type=int, default=0, metavar="PORT", help="port for an embedded or mosquitto broker"
    )


def run(args: argparse.Namespace) -> int:
    """``fanwatch core ACTION``: 1 when a deployment failed; what cannot be done at all (no core answers, a
    bad document or option) is said in one line, exit 2."""
    try:
        if args.action == "run":
            return asyncio.run(_run(args))
        if args.action == "deploy":
            return _deploy(args)
        if args.action == "stop":
            stop_cores(args.root)
            return 0
        return _status(args)
    except (ControlError, ValueError, OSError) as exc:
        print(f"fanwatch core {args.action}: {exc}", file=sys.stderr)
        return 2


# -- run ---------------------------------------------------------------------------------------------------


def _thing_names(args: argparse.Namespace) -> list[str]:
    from fanwatch.core.fleet import Fleet

    names = list(args.thing)
    if args.things:
        names += Fleet.names(args.things, args.prefix)
    if not names:
        raise ValueError("name at least one thing: --thing fan-001 (repeatable) or --things N")
    return names


def _platform(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--platform expects KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


async def _run(args: argparse.Namespace) -> int:
    from fanwatch.core.fleet import Fleet
    from fanwatch.core.links import broker_links, subscribe_command

    things = _thing_names(args)
    document = json.loads(args.deployment.read_text()) if args.deployment else None
    _log_to(args.root / "core.log")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def started(broker: LocalBroker) -> None:
        print(f"broker: {broker.name} on {broker.observer_endpoint().url}", flush=True)
        print(f"  what the things send to IoT Core: {subscribe_command(broker)}", flush=True)

    async with broker_links(
        args.broker, certs=args.certs, root=args.root, port=args.broker_port, started=started
    ) as links:
        fleet = Fleet(
            args.root,
            things,
            links=links,
            build_dirs=args.build_dir,
            region=args.region,
            platform=_platform(args.platform),
        )
        async with fleet:
            for thing, core in fleet.cores.items():
                print(f"core {thing}: running in {core.layout.root}", flush=True)
            print(f"log: {args.root / 'core.log'} (each component's: <root>/<thing>/logs/)", flush=True)
            if document is not None:
                for thing, result in (await fleet.deploy(document)).items():
                    print(f"core {thing}: deployment {result.deployment_id}: {result.status} {result.detail}")
            write_running(args.root, list(fleet.cores))
            print(f"stop with Ctrl-C, or: fanwatch core stop --root {args.root}", flush=True)
            try:
                await stop.wait()
            finally:
                clear_running(args.root)
            print("stopping", flush=True)
    return 0


def _log_to(path: Path) -> None:
    """Everything to ``path``; warnings and errors to the terminal too."""
    from fanwatch.core.runtime.core_log import LINE_FORMAT, EscapingFormatter

    path.parent.mkdir(parents=True, exist_ok=True)
    form = EscapingFormatter(LINE_FORMAT)  # a topic with a newline forges no line in either
    to_file = logging.FileHandler(path)
    to_file.setFormatter(form)
    to_terminal = logging.StreamHandler()
    to_terminal.setLevel(logging.WARNING)
    to_terminal.setFormatter(form)
    logging.basicConfig(level=logging.INFO, handlers=[to_file, to_terminal])


# -- deploy ------------------------------------------------------------------------------------------------


def _deploy(args: argparse.Namespace) -> int:
    cores = find_cores(args.root, args.thing, wait=args.wait, say=_say)
    build_dirs = [str(Path(d).absolute()) for d in args.build_dir]
    if args.document is not None and args.component:
        raise ValueError("give a deployment document or --component, not both")
    if args.document is not None:
        document: dict[str, Any] = json.loads(args.document.read_text())
    elif args.component:
        document = _document_from_options(args, next(iter(cores.values())), build_dirs)
    else:
        raise ValueError("give a deployment document or at least one --component")
    document.setdefault("deploymentId", f"cli-{secrets.token_hex(4)}")  # one id on every thing
    if args.failure_handling:
        document["failureHandlingPolicy"] = args.failure_handling
        document.pop("deploymentPolicies", None)
    print(f"deploying {document['deploymentId']} to {', '.join(cores)}", flush=True)
    results = _deploy_showing_progress(cores, {"op": "deploy", "document": document, "buildDirs": build_dirs})
    failed = 0
    for thing, result in results.items():
        states = ", ".join(f"{n} {s}" for n, s in result["states"].items())
        print(f"{thing}: {result['deploymentId']}: {result['status']}" + (f" ({states})" if states else ""))
        if result["detail"]:
            print(f"  {result['detail']}")
        failed += result["status"] != DetailedDeploymentStatus.SUCCESSFUL
    return 1 if failed else 0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


#: Seconds between looks at the components' states while a deployment runs.
PROGRESS_EVERY_S = 2.0
#: A first Install (a venv and a pip install per component) takes tens of seconds: say so this often.
QUIET_AT_MOST_S = 10.0


def _deploy_showing_progress(cores: Mapping[str, Path], deploy: Mapping[str, Any]) -> dict[str, Any]:
    """Deploy to every core at once; meanwhile print each component's state as it changes (a first
    deployment spends most of its time in the components' Install step: a venv and a pip install)."""
    results: dict[str, Any] = {}
    errors: dict[str, ControlError] = {}

    def one(thing: str, control: Path) -> None:
        try:
            results[thing] = request(control, dict(deploy), timeout=None)
        except ControlError as exc:
            errors[thing] = exc

    workers = [threading.Thread(target=one, args=item, daemon=True) for item in cores.items()]
    for worker in workers:
        worker.start()
    seen: dict[tuple[str, str], str] = {}
    started = last_said = time.monotonic()
    while any(worker.is_alive() for worker in workers):
        if time.monotonic() - last_said >= QUIET_AT_MOST_S:
            waiting = sorted(f"{t}: {n}" for (t, n), state in seen.items() if not state.endswith("RUNNING"))
            if waiting:
                elapsed = time.monotonic() - started
                print(f"  {elapsed:5.0f} s  still installing or starting: {', '.join(waiting)}", flush=True)
            last_said = time.monotonic()
        for worker in workers:
            worker.join(PROGRESS_EVERY_S / len(workers))
        for thing, control in cores.items():
            if thing in results or thing in errors:
                continue
            try:
                status = request(control, {"op": "status"}, timeout=5)
            except ControlError:
                continue
            for component in status["components"]:
                key, state = (thing, component["name"]), f"{component['version']} {component['state']}"
                if seen.get(key) != state:
                    seen[key] = state
                    print(f"  {time.monotonic() - started:5.0f} s  {thing}: {key[1]} {state}", flush=True)
                    last_said = time.monotonic()
    if errors:
        raise ControlError("; ".join(f"{thing}: {exc}" for thing, exc in errors.items()))
    return {thing: results[thing] for thing in cores}


def _document_from_options(args: argparse.Namespace, control: Path, build_dirs: list[str]) -> dict[str, Any]:
    """A deployment from ``--component/--merge/--reset``, as greengrass-cli builds one."""
    stored: dict[str, list[str]] = {}
    if any("=" not in c for c in args.component):
        for entry in request(control, {"op": "index", "buildDirs": build_dirs}):
            stored.setdefault(entry["name"], []).append(entry["version"])
    components: dict[str, dict[str, Any]] = {}
    for spec in args.component:
        name, _, version = spec.partition("=")
        if not version:
            versions = stored.get(name)
            if not versions:
                raise ValueError(f"{name}: no version in the core's component store; give NAME=VERSION")
            version = str(max(Version.parse(v) for v in versions))
        components[name] = {"componentVersion": version, "configurationUpdate": {}}
    for option, key in ((args.merge, "merge"), (args.reset, "reset")):
        for item in option:
            name, sep, value = item.partition("=")
            if not sep or name not in components:
                raise ValueError(f"--{key} {item!r}: expected NAME=VALUE for a --component NAME")
            update = components[name]["configurationUpdate"]
            if key == "merge":
                update["merge"] = json.loads(value)
            else:
                update.setdefault("reset", []).append(value)
    return {"components": components}


# -- status ------------------------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    statuses = {
        thing: request(control, {"op": "status"})
        for thing, control in find_cores(args.root, args.thing, wait=args.wait, say=_say).items()
    }
    if args.json:
        print(json.dumps(statuses, indent=2))
        return 0
    for status in statuses.values():
        print(_render(status))
    return 0


def _render(status: Mapping[str, Any]) -> str:
    lines = [f"{status['thing']}  ({status['root']})"]
    deployment = status.get("deployment")
    if deployment:
        detail = f": {deployment['detail']}" if deployment["detail"] else ""
        lines.append(f"  last deployment {deployment['deploymentId']}: {deployment['status']}{detail}")
    rows = [(NUCLEUS_COMPONENT, status["nucleus"]["version"], "FINISHED")]
    rows += [(c["name"], c["version"], c["state"]) for c in status["components"]]
    width = max(len(r[0]) for r in rows)
    for name, version, state in rows:
        lines.append(f"  {name:<{width}}  {version:<10} {state}")
    for component in status["components"]:
        lines.append(f"\n  {component['name']} {component['version']} ({component['log']})")
        if component["reason"]:
            lines.append(f"    last change: {component['reason']}")
        configuration = {k: v for k, v in component["configuration"].items() if k != "accessControl"}
        lines.append(f"    configuration: {json.dumps(configuration, sort_keys=True)}")
        lines.extend(_render_access(component["accessControl"]))
        lines.extend(f"    problem: {problem}" for problem in component["problems"])
        stale = component["staleKeys"]
        if stale:
            lines.append(f"    stale keys (not in {component['version']}'s DefaultConfiguration):")
            for key in stale:
                remedy = json.dumps(key["removeWith"])
                lines.append(f"      {key['pointer']} = {json.dumps(key['value'])}   remove with {remedy}")
    return "\n".join(lines)


def _render_access(access: Mapping[str, Any]) -> list[str]:
    if not access:
        return ["    accessControl: none (every IPC call that needs authorization is refused)"]
    lines = ["    accessControl:"]
    for service, policies in sorted(access.items()):
        for policy_id, policy in sorted((policies or {}).items()):
            operations = ", ".join(policy.get("operations", [])) if isinstance(policy, Mapping) else "?"
            resources = ", ".join(policy.get("resources", [])) if isinstance(policy, Mapping) else "?"
            lines.append(f"      {service} {policy_id}: {operations} on {resources}")
    return lines
