"""``fanwatch stack``: ``up`` runs the stack on this machine (:mod:`fanwatch.standin.stack_cli`),
``package`` makes it deployable with plain CloudFormation, ``check`` asks AWS whether a deployed one
is ready for devices."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fanwatch.environment import STACK_VARIABLE
from fanwatch.fleet.names import DEFAULT_STACK

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``fanwatch stack`` and their options: ``up`` (:mod:`fanwatch.standin.stack_cli`),
    ``check`` and ``package``."""
    from fanwatch.standin.stack_cli import add_up_arguments

    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_up_arguments(sub.add_parser("up", help="start the broker and the AWS stand-in; Ctrl-C stops them"))

    check = sub.add_parser(
        "check",
        help="check a deployed stack with your credentials: outputs, IoT endpoint, a test message through "
        "IoT Core into the telemetry stream, the detector's mapping, the lake through Athena",
    )
    check.add_argument(
        "--stack",
        default=os.environ.get(STACK_VARIABLE) or DEFAULT_STACK,
        help=f"the stack's name (default: ${STACK_VARIABLE} or {DEFAULT_STACK})",
    )
    check.add_argument("--region", help="AWS region (default: the SDK's: AWS_REGION or the profile's)")
    check.add_argument("--profile", help="AWS profile (default: the SDK's: AWS_PROFILE or default)")
    check.add_argument(
        "--endpoint-url", metavar="URL", help="a local stand-in's endpoint (fanwatch stack up prints it)"
    )
    check.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="per check that waits (default 60)"
    )
    check.add_argument("--no-publish", action="store_true", help="read only: send no test message")

    package = sub.add_parser(
        "package",
        help="synthesize the stack for plain CloudFormation with its Lambda code in your bucket: zips the "
        "assets and writes the upload and deploy commands",
    )
    package.add_argument("--bucket", required=True, help="an S3 bucket of yours in the stack's region")
    package.add_argument(
        "--out", type=Path, default=Path("out/stack-package"), help="default out/stack-package"
    )
    package.add_argument("--prefix", default="fanwatch", help="the stack's name prefix (default fanwatch)")
    package.add_argument("--region", help="pin the template to a region (default: any region)")
    package.add_argument(
        "--template-dir",
        type=Path,
        metavar="DIR",
        help="use a synthesis already made with -c assetsBucket=BUCKET (cdk.out) instead of synthesizing",
    )


def run(args: argparse.Namespace) -> int:
    """``fanwatch stack ACTION``: ``up`` until Ctrl-C; ``check`` exits 1 when a check failed; ``package``
    writes the package and says how to deploy it."""
    if args.action == "up":
        from fanwatch.standin.stack_cli import run as run_up

        return run_up(args)
    if args.action == "check":
        return _check(args)
    from fanwatch.stack.package import run_package

    return run_package(args)


def _check(args: argparse.Namespace) -> int:
    import boto3

    from fanwatch.stack.check import LOCAL_LIMITS, StackCheck, Verdict

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    check = StackCheck(
        session,
        args.stack,
        endpoint_url=args.endpoint_url,
        timeout_s=args.timeout,
        publish=not args.no_publish,
    )
    where = check.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or "AWS"
    print(f"checking stack {args.stack} in {session.region_name or '(no region)'} on {where}", flush=True)
    failed = 0
    for result in check.run():
        for line in result.lines():
            print(line, flush=True)
        failed += result.verdict is Verdict.FAIL
    if check.local:
        print("\nOn a local stand-in these checks cannot show everything:")
        for limit in LOCAL_LIMITS:
            print(f"  - {limit}")
    print(f"\n{'all checks passed' if not failed else f'{failed} check(s) failed'}")
    return 1 if failed else 0
