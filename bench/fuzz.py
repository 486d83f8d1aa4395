"""Fuzz every parser of untrusted input, and the cloud handlers, at scale (issue 14's figure).

The same targets and strategies as the suite's fuzz tests (``fanwatch.fuzz``), with a fixed seed and
at least 10,000 examples per parser (the device messages; the core's IPC frames, IPC request JSON,
recipes and deployment documents); the handlers get batches until 10,000 records have gone through
each, with real boto3 against moto server (its own process, as in ``bench/detector.py``). Prints, per
target: examples tried, accepted, refused with a clear error, and escaped (the goal is 0); the first
escapes are printed in full. Exits 1 if anything escaped.

    python bench/fuzz.py [--examples 10000] [--records 10000] [--seed 14]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # each dead letter is logged: not here

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detector import moto_server

from fanwatch.fuzz.core import CORE_PARSERS
from fanwatch.fuzz.handlers import handler_targets
from fanwatch.fuzz.harness import PARSERS, Tally, Target, run

START = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f}s] {message}", file=sys.stderr, flush=True)


def merged(tallies: list[Tally]) -> Tally:
    total = Tally(tallies[0].target, tallies[0].unit)
    for t in tallies:
        total.tried += t.tried
        total.items += t.items
        total.accepted += t.accepted
        total.refused += t.refused
        total.escaped += t.escaped
        total.escapes += t.escapes[: 5 - len(total.escapes)]
    return total


def fuzz_parser(target: Target, examples: int, seed: int) -> Tally:
    started = time.perf_counter()
    tally = run(target, examples=examples, seed_value=seed)
    progress(f"{tally.line()} in {time.perf_counter() - started:.0f} s")
    return tally


def fuzz_handler(target: Target, records: int, seed: int, *, round_size: int = 250) -> Tally:
    """Rounds of batches (each round from its own seed) until ``records`` records went through; a
    round has at most as many batches as records remain (a batch holds at least one)."""
    rounds: list[Tally] = []
    started = time.perf_counter()
    while (done := sum(t.items for t in rounds)) < records:
        batches = min(round_size, records - done)
        with contextlib.redirect_stdout(io.StringIO()):  # the handlers' metrics (EMF lines)
            rounds.append(run(target, examples=batches, seed_value=seed + len(rounds)))
        progress(f"{merged(rounds).line()} ({time.perf_counter() - started:.0f} s)")
    return merged(rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples per parser")
    parser.add_argument("--records", type=int, default=10_000, help="records per handler")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "No application metrics")  # a batch of poison only has none

    tallies = [fuzz_parser(target, args.examples, args.seed) for target in (*PARSERS, *CORE_PARSERS)]
    server, endpoint = moto_server()
    try:
        tallies += [fuzz_handler(target, args.records, args.seed) for target in handler_targets(endpoint)]
    finally:
        server.terminate()
        server.wait()

    print(f"\nfuzz, seed {args.seed} ({time.perf_counter() - START:.0f} s)")
    print(f"  {'target':<20} {'tried':>16} {'accepted':>10} {'refused, clear':>15} {'escaped':>8}")
    for t in tallies:
        tried = f"{t.tried:,} {t.unit}"
        print(f"  {t.target:<20} {tried:>16} {t.accepted:>10,} {t.refused:>15,} {t.escaped:>8,}")
        if t.unit == "batches":
            print(f"  {'':<20} {f'{t.items:,} records':>16}")
    escaped = [t for t in tallies if t.escaped]
    for t in escaped:
        print(f"\n{t.target}: {t.escaped} escaped; the first:\n" + "\n".join(t.escapes))
    return 1 if escaped else 0


if __name__ == "__main__":
    sys.exit(main())
