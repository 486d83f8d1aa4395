"""``fanwatch demo`` (``make demo``): simulated fans with faults on local Greengrass cores, the command.

Both components are built as gdk builds them and deployed to one local core per thing; the fans run
``timeScale`` times faster than real time (20 simulated minutes in about a minute by default), and
what the fleet publishes is read back from the MQTT broker. At the end the demo prints what it saw,
draws ``<out>/fleet.png``, writes every message to ``<out>/messages.jsonl`` and exits 0 only when
every thing published telemetry and every stall raised a stall alert. ``--in-process`` runs the same
fleet through the same component services in one process, for a machine that cannot reach PyPI.
See ``docs/demo.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

from fanwatch.build import BuildError
from fanwatch.demo.observations import DemoRun
from fanwatch.demo.scenario import Scenario

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--things", type=int, default=3, help="simulated Raspberry Pis, 1 to 9 (default 3)")
    parser.add_argument("--minutes", type=float, default=20.0, help="simulated minutes to run (default 20)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=20.0,
        help="how much faster than real time the fans run (default 20)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/demo"),
        help="builds, cores, picture and messages (default out/demo)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="no Greengrass core, no network: the component services in one process, on a simulated clock",
    )


def run(args: argparse.Namespace) -> int:
    try:
        scenario = Scenario.fleet(things=args.things, minutes=args.minutes, time_scale=args.time_scale)
    except ValueError as exc:
        print(f"fanwatch demo: {exc}", file=sys.stderr)
        return 2
    out = args.out.absolute()
    try:
        if args.in_process:
            from fanwatch.demo.inprocess import run_in_process

            demo = run_in_process(scenario)
        else:
            demo = asyncio.run(_on_local_cores(scenario, out))
    except (
        BuildError,
        OSError,
        ValueError,
        RuntimeError,
    ) as exc:  # a build, broker or core that cannot start
        print(f"fanwatch demo: {exc}", file=sys.stderr)
        return 1
    return _conclude(demo, out)


async def _on_local_cores(scenario: Scenario, out: Path) -> DemoRun:
    from fanwatch.demo.local import run_on_local_cores

    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:4.0f} s] {text}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupted() -> None:  # a second Ctrl-C is a plain KeyboardInterrupt
        loop.remove_signal_handler(signal.SIGINT)
        say("stopping at the next chance (Ctrl-C again to abort)")
        stop.set()

    loop.add_signal_handler(signal.SIGINT, interrupted)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    return await run_on_local_cores(scenario, out, say, stop)


def _conclude(demo: DemoRun, out: Path) -> int:
    """Print the report, write the picture and the messages, and judge the run."""
    from fanwatch.demo.plot import plot
    from fanwatch.demo.report import missing, report

    print()
    print(report(demo))
    messages = out / "messages.jsonl"
    demo.observations.write_jsonl(messages)
    print(f"\nEvery message as it arrived: {messages}")
    try:
        print(f"The picture (rpm of every fan over simulated time): {plot(demo, out / 'fleet.png')}")
    except ImportError as exc:
        print(f"No picture: it needs matplotlib ({exc}); pip install matplotlib")
    problems = missing(demo)
    if problems:
        print("\nfanwatch demo FAILED; missing:\n" + "\n".join(f"- {p}" for p in problems))
        return 1
    print("\nfanwatch demo OK: every thing published telemetry and every stall raised a stall alert")
    return 0
