"""The ``fanwatch`` command: one subcommand per area, each defined in its own module.

A subcommand module offers ``add_arguments(parser)`` and ``run(args) -> int``; it is imported only
when its subcommand runs, so ``fanwatch core`` does not load the cloud code and vice versa.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from fanwatch.environment import DEBUG_VARIABLE
from fanwatch.errors import FanwatchError

__all__ = ["main"]

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "core": ("fanwatch.core.cli", "run, deploy to and inspect local Greengrass cores"),
    "demo": ("fanwatch.demo.cli", "simulated fans through the real components on a local core"),
    "build": ("fanwatch.build", "build Greengrass components (what gdk's custom build runs)"),
    "fleet": ("fanwatch.fleet.cli", "publish components and roll them out to thing groups (AWS or local)"),
    "stack": (
        "fanwatch.stack.cli",
        "the cloud stack: run it here (up), package it for CloudFormation, check a deployed one",
    ),
    "lake": (
        "fanwatch.standin.lake_cli",
        "query the local lake with DuckDB (the stack's Athena queries too)",
    ),
    "detector": ("fanwatch.cloud.cli", "operate the cloud detector: backfill forests from the lake"),
}


#: What ``fanwatch --help`` says above the commands (plain text: argparse prints it as it is).
DESCRIPTION = (
    "Watch the fans of a Raspberry Pi fleet with AWS IoT Greengrass v2: the edge components, a local "
    "Greengrass core, the cloud stack on this machine or in your AWS account."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fanwatch COMMAND ...``, importing only that command's module. An error meant for the user ends
    in one line and exit 2 (``FANWATCH_DEBUG`` shows its traceback); any other keeps its traceback."""
    parser = argparse.ArgumentParser(
        prog="fanwatch",
        description=DESCRIPTION,
        epilog="Each command has its own help: fanwatch COMMAND --help",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    module_name, help_text = SUBCOMMANDS[args.command]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # an extra that is not installed
        return _fail(args.command, f"{exc} (pip install -e '.[dev]' installs what every command needs)")
    sub_parser = argparse.ArgumentParser(prog=f"fanwatch {args.command}", description=help_text)
    module.add_arguments(sub_parser)
    sub_args = sub_parser.parse_args(rest)
    try:
        return int(module.run(sub_args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get(DEBUG_VARIABLE) or not _said_by_fanwatch(exc):
            raise
        return _fail(args.command, str(exc) or type(exc).__name__)


def _said_by_fanwatch(exc: BaseException) -> bool:
    """An error whose message is for the user (what was refused and why), not a bug's traceback:
    fanwatch's own, the operating system's, and the AWS SDK's (credentials, a refused call)."""
    botocore = sys.modules.get("botocore.exceptions")
    sdk = (botocore.BotoCoreError, botocore.ClientError) if botocore else ()
    return isinstance(exc, (FanwatchError, OSError, *sdk))


def _fail(command: str, message: str) -> int:
    print(f"fanwatch {command}: {message}", file=sys.stderr)
    return 2
