"""``fanwatch demo`` (``make demo``): simulated fans with faults on local Greengrass cores, the command.

Both components are built as gdk builds them and deployed to one local core per device; the fans run
``timeScale`` times faster than real time, and what the fleet publishes is read back from the MQTT
broker. At the end the demo prints a summary (each injected fault and what caught it, false alarms,
the notifications), writes ``<out>/report.html`` and ``<out>/fleet.png`` and every message to
``<out>/messages.jsonl``, and exits 0 only when every fault was caught, no healthy fan alarmed and no
reading was lost or duplicated. ``--in-process`` runs the same fleet through the same component
services in one process, into its own folder. See ``docs/demo.md``.
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
from fanwatch.demo.scenario import MAX_DEVICES, Scenario

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fanwatch demo``: how many devices, how many simulated minutes with how much
    warm-up, how much faster than real time, where the output goes, and ``--in-process``."""
    parser.add_argument(
        "--devices",
        "--things",
        dest="devices",
        type=int,
        default=5,
        help=f"simulated Raspberry Pis, 1 to {MAX_DEVICES} (default 5)",
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="simulated minutes to run (default 20)")
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        default=5.0,
        help="simulated minutes every fan runs healthy before the first fault (default 5)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=20.0,
        help="how much faster than real time the fans run (default 20)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="builds, cores, report, pictures and messages (default out/demo, out/demo-in-process)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="no Greengrass core, no network: the component services in one process, on a simulated clock",
    )


def run(args: argparse.Namespace) -> int:
    """``fanwatch demo``: run the fleet, print the summary and write the report; 0 only when the run showed
    all it promises, 1 when it did not (or could not start), 2 for a bad option."""
    try:
        scenario = Scenario.fleet(
            devices=args.devices,
            minutes=args.minutes,
            time_scale=args.time_scale,
            warmup_minutes=args.warmup_minutes,
        )
    except ValueError as exc:
        print(f"fanwatch demo: {exc}", file=sys.stderr)
        return 2
    default = Path("out/demo-in-process" if args.in_process else "out/demo")
    out = (args.out or default).absolute()
    try:
        demo = asyncio.run(_run(scenario, out, in_process=args.in_process))
    except (
        BuildError,
        OSError,
        ValueError,
        RuntimeError,
    ) as exc:  # a build, broker, stand-in or core that cannot start
        print(f"fanwatch demo: {exc}", file=sys.stderr)
        return 1
    return _conclude(demo, out)


async def _run(scenario: Scenario, out: Path, *, in_process: bool) -> DemoRun:
    """The run, with a progress line and a clean stop on Ctrl-C (a second one aborts)."""
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
    if in_process:
        from fanwatch.demo.inprocess import run_in_process

        return await run_in_process(scenario, out, say, stop)
    from fanwatch.demo.local import run_on_local_cores

    return await run_on_local_cores(scenario, out, say, stop)


def _conclude(demo: DemoRun, out: Path) -> int:
    """Print the summary, write the report, the picture and the messages, and judge the run."""
    from fanwatch.demo.assemble import story_of
    from fanwatch.demo.outcome import judge
    from fanwatch.demo.page import write_report
    from fanwatch.demo.plot import plot
    from fanwatch.demo.report import failures, summary

    story = story_of(demo)
    verdict = judge(story)
    messages = out / "messages.jsonl"
    demo.observations.write_jsonl(messages)
    story.outputs["Every message the devices sent to IoT Core"] = str(messages)
    if demo.cloud is not None:
        lake = out / "lake"
        story.outputs["The lake (Parquet, as Firehose wrote it)"] = (
            f'{lake}; ask it: fanwatch lake query --lake {lake} "SELECT thing, fan, count(*) FROM readings '
            'GROUP BY ALL"'
        )
    story.outputs["The report (open it in a browser)"] = str(
        write_report(story, out / "report.html", verdict=verdict)
    )
    try:
        story.outputs["The picture"] = str(plot(story, out / "fleet.png", verdict=verdict))
    except ImportError as exc:
        story.outputs["No picture"] = f"it needs matplotlib ({exc}); pip install matplotlib"
    print()
    print(summary(story, verdict))
    problems = failures(story, verdict)
    if problems:
        print("\nfanwatch demo FAILED:\n" + "\n".join(f"- {p}" for p in problems))
        return 1
    print("\nfanwatch demo OK: every fault caught, no healthy fan alarmed, no reading lost or duplicated")
    return 0
