"""``fanwatch fleet``: publish component versions and roll them out to thing groups.

The commands call the ``greengrassv2``, ``iot``, ``s3`` and ``sts`` APIs with boto3, so they run
against AWS, or against the local stand-ins when ``AWS_ENDPOINT_URL`` points at them
(``fanwatch fleet local`` starts a local fleet and prints what to set). Exit codes: 0 done, 1 the
rollout stopped (and what was rolled back is said), 2 bad input (nothing was changed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from fanwatch.environment import TIME_SCALE_VARIABLE
from fanwatch.fleet.timescale import LOCAL_TIME_SCALE, parse_duration

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``fanwatch fleet`` and their options: ``bucket``, ``publish``, ``deploy``,
    ``status``, ``rollback`` and ``local``."""
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    bucket = commands.add_parser(
        "bucket", help="where versions are published (for gdk component publish too)"
    )
    _add_target_arguments(bucket)
    bucket.add_argument(
        "--gdk-args",
        action="store_true",
        help="print '--bucket B --region R' for: gdk component publish $(fanwatch fleet bucket --gdk-args)",
    )

    publish = commands.add_parser("publish", help="publish what gdk built; never overwrites a version")
    _add_target_arguments(publish)
    publish.add_argument(
        "--build-dir",
        type=Path,
        default=Path("greengrass-build"),
        help="gdk's output (default: greengrass-build)",
    )

    deploy = commands.add_parser("deploy", help="deploy a deployment file to a thing group, canary first")
    deploy.add_argument(
        "file", type=Path, help="deployment file (JSON, the CreateDeployment request's components)"
    )
    deploy.add_argument("--group", required=True, help="the thing group to deploy to")
    canary = deploy.add_mutually_exclusive_group()
    canary.add_argument("--canary", metavar="GROUP", help="a thing group that gets it first")
    canary.add_argument(
        "--canary-percent",
        type=float,
        metavar="N",
        help="put N %% of the group's things in GROUP-canary first",
    )
    deploy.add_argument(
        "--soak",
        type=parse_duration,
        default=600.0,
        help="how long the canary must stay HEALTHY (default 10m)",
    )
    _add_wait_arguments(deploy)

    status = commands.add_parser("status", help="devices by health, their deployments, BROKEN and stuck")
    status.add_argument("--group", help="only this thing group's devices")
    status.add_argument(
        "--silent-after", type=parse_duration, default=2 * 86_400.0, help="flag devices silent this long (2d)"
    )
    status.add_argument(
        "--stuck-after",
        type=parse_duration,
        default=1800.0,
        help="flag jobs QUEUED/IN_PROGRESS this long (30m)",
    )
    status.add_argument(
        "--all", action="store_true", help="list every device, not only those that need a look"
    )
    status.add_argument("--json", action="store_true", help="print it as JSON")
    _add_region_argument(status)

    rollback = commands.add_parser("rollback", help="deploy the group's previous deployment again")
    rollback.add_argument("--group", required=True)
    _add_wait_arguments(rollback)

    local = commands.add_parser("local", help="run a local fleet: stand-ins, a broker and one core per thing")
    local.add_argument("--root", type=Path, required=True, help="folder for the cores (one folder per thing)")
    local.add_argument("--things", type=int, default=20, help="number of things (default 20)")
    local.add_argument("--group", default="fanwatch-fleet", help="their thing group (default fanwatch-fleet)")
    local.add_argument(
        "--canary",
        default="fanwatch-canary=2",
        metavar="GROUP=N",
        help="a thing group of the first N things (default fanwatch-canary=2; 'none' for none)",
    )
    local.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help=f"fleet seconds per wall second (default: {TIME_SCALE_VARIABLE} when set, else "
        f"{LOCAL_TIME_SCALE:g}: a 10-minute soak takes a minute)",
    )
    local.add_argument("--region", default="us-east-1")


def _add_region_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: the SDK's, AWS_REGION)")


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", help="artifacts bucket (default: the stack's ArtifactsBucket output)")
    _add_region_argument(parser)
    parser.add_argument("--stack", help="the deployed cloud stack's name (default: fanwatch-cloud)")


def _add_wait_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=parse_duration,
        default=1800.0,
        help="give up on a stage after this long (default 30m)",
    )
    parser.add_argument("--poll", type=float, default=2.0, help="wall seconds between looks at the devices")
    _add_region_argument(parser)


def _session() -> Any:
    import boto3

    return boto3.Session()


def run(args: argparse.Namespace) -> int:
    """``fanwatch fleet ACTION``: 0 done, 1 the rollout stopped, 2 bad input or a call AWS refused (said in
    one line)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from fanwatch.errors import FanwatchError

    try:
        return int(_ACTIONS[args.action](args))
    except (FanwatchError, ValueError) as exc:  # bad input: nothing was changed
        print(f"fanwatch fleet {args.action}: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"fanwatch fleet {args.action}: AWS refused: {exc}", file=sys.stderr)
        return 2


def _bucket(args: argparse.Namespace) -> int:
    from fanwatch.fleet.target import resolve_target

    target = resolve_target(_session(), bucket=args.bucket, region=args.region, stack=args.stack)
    if args.gdk_args:
        print(" ".join(target.gdk_args()))
    else:
        print(f"{target.bucket} in {target.region}, account {target.account} (from {target.source})")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from fanwatch.fleet.publish import Publisher, read_build
    from fanwatch.fleet.target import resolve_target

    session = _session()
    built = read_build(args.build_dir)
    target = resolve_target(session, bucket=args.bucket, region=args.region, stack=args.stack)
    publisher = Publisher(session, target)
    plans = publisher.plan(built)
    print(f"publishing to s3://{target.bucket} ({target.region}, from {target.source}):")
    for plan in plans:
        print(f"  {plan.name} {plan.version}")
    publisher.publish(plans, progress=lambda line: print(f"  {line}", flush=True))
    return 0


def _deployer(args: argparse.Namespace) -> Any:
    from fanwatch.fleet.api import FleetApi
    from fanwatch.fleet.deploy import Deployer
    from fanwatch.fleet.timescale import TimeScale

    return Deployer(
        FleetApi(_session(), args.region),
        scale=TimeScale.from_env(),
        poll=args.poll,
        say=lambda line: print(line, flush=True),
    )


def _deploy(args: argparse.Namespace) -> int:
    from fanwatch.fleet.deployment_file import DeploymentFile

    file = DeploymentFile.load(args.file)
    outcome = _deployer(args).deploy(
        file,
        args.group,
        canary=args.canary,
        canary_percent=args.canary_percent,
        soak=args.soak,
        timeout=args.timeout,
    )
    print(("done: " if outcome.ok else "stopped: ") + outcome.message)
    return 0 if outcome.ok else 1


def _rollback(args: argparse.Namespace) -> int:
    outcome = _deployer(args).rollback(args.group, timeout=args.timeout)
    print(("done: " if outcome.ok else "stopped: ") + outcome.message)
    return 0 if outcome.ok else 1


def _status(args: argparse.Namespace) -> int:
    from fanwatch.fleet.api import FleetApi
    from fanwatch.fleet.status import fleet_status
    from fanwatch.fleet.timescale import TimeScale

    report = fleet_status(
        FleetApi(_session(), args.region),
        group=args.group,
        silent_after=args.silent_after,
        stuck_after=args.stuck_after,
        scale=TimeScale.from_env(),
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render(every_device=args.all))
    return 0


def _local(args: argparse.Namespace) -> int:
    from fanwatch.core.fleet import Fleet
    from fanwatch.fleet.timescale import TimeScale

    things = Fleet.names(args.things)
    groups = {args.group: things}
    if args.canary != "none":
        name, _, count = args.canary.partition("=")
        size = int(count or 2)
        if not name or not 0 < size <= len(things):
            raise ValueError(f"--canary expects GROUP=N with 1 <= N <= {len(things)}, got {args.canary!r}")
        groups[name] = things[:size]
    return asyncio.run(
        _serve_local(args.root, groups, TimeScale.for_local_fleet(args.time_scale), args.region)
    )


async def _serve_local(root: Path, groups: dict[str, list[str]], scale: Any, region: str) -> int:
    from fanwatch.fleet.local import LocalFleet

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with LocalFleet(root, groups=groups, scale=scale, region=region) as fleet:
        environment = fleet.environment()
        env_file = root / "fleet.env"
        env_file.write_text("".join(f"export {k}={v}\n" for k, v in environment.items()))
        for group, things in groups.items():
            print(f"thing group {group}: {', '.join(things)}")
        print(f"control plane and AWS stand-in: {fleet.url}; MQTT broker: {fleet.observer.url}")
        print(f"in another shell: source {env_file}   (then fanwatch fleet ..., gdk, aws)")
        print("stop with Ctrl-C", flush=True)
        await stop.wait()
        print("stopping", flush=True)
    return 0


_ACTIONS = {
    "bucket": _bucket,
    "publish": _publish,
    "deploy": _deploy,
    "status": _status,
    "rollback": _rollback,
    "local": _local,
}
