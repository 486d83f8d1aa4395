"""The ``fanwatch`` command: one subcommand per area, each defined in its own module.

A subcommand module offers ``add_arguments(parser)`` and ``run(args) -> int``; it is imported only
when its subcommand runs, so ``fanwatch core`` does not load the cloud code and vice versa.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

__all__ = ["main"]

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "core": ("fanwatch.core.cli", "run, deploy to and inspect local Greengrass cores"),
    "demo": ("fanwatch.demo.cli", "simulated fans through the real components on a local core"),
    "build": ("fanwatch.build", "build Greengrass components (what gdk's custom build runs)"),
    "fleet": ("fanwatch.fleet.cli", "publish components and roll them out to thing groups (AWS or local)"),
    "stack": (
        "fanwatch.standin.stack_cli",
        "the cloud stack on this machine (broker + embedded AWS stand-in)",
    ),
    "lake": (
        "fanwatch.standin.lake_cli",
        "query the local lake with DuckDB (the stack's Athena queries too)",
    ),
    "detector": ("fanwatch.cloud.cli", "operate the cloud detector: backfill forests from the lake"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fanwatch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    sub_parser = argparse.ArgumentParser(prog=f"fanwatch {args.command}")
    module.add_arguments(sub_parser)
    return int(module.run(sub_parser.parse_args(rest)))
