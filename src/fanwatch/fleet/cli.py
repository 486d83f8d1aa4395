"""``fanwatch fleet``: publish component versions and roll them out to thing groups.

The commands call the ``greengrassv2``, ``iot``, ``s3`` and ``sts`` APIs with boto3, so they run
against AWS, or against the local stand-ins when ``AWS_ENDPOINT_URL`` points at them
(``fanwatch fleet local`` prints what to set).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    bucket = commands.add_parser(
        "bucket", help="where component versions are published (for gdk component publish too)"
    )
    _add_target_arguments(bucket)
    bucket.add_argument(
        "--gdk-args",
        action="store_true",
        help="print '--bucket B --region R' for: gdk component publish $(fanwatch fleet bucket --gdk-args)",
    )


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", help="artifacts bucket (default: the stack's ArtifactsBucket output)")
    parser.add_argument("--region", help="AWS region (default: the SDK's, AWS_REGION)")
    parser.add_argument("--stack", help="the deployed cloud stack's name (default: fanwatch-cloud)")


def _session() -> Any:
    import boto3

    return boto3.Session()


def run(args: argparse.Namespace) -> int:
    from fanwatch.fleet.target import TargetError, resolve_target

    try:
        if args.action == "bucket":
            target = resolve_target(_session(), bucket=args.bucket, region=args.region, stack=args.stack)
            if args.gdk_args:
                print(" ".join(target.gdk_args()))
            else:
                print(f"{target.bucket} in {target.region}, account {target.account} (from {target.source})")
            return 0
    except TargetError as exc:
        print(f"fanwatch fleet {args.action}: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(args.action)
