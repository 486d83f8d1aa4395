"""How many readings per second the whole local pipeline sustains, and which stage gives out first.

    python bench/pipeline.py            # devices doubling from 2 while every stage keeps up
    python bench/pipeline.py --quick    # two short steps

Simulated devices publish telemetry messages (60 readings each, the edge's default batch) at QoS 1 to
the embedded broker (amqtt, a separate process); the embedded AWS stand-in runs the stack as the
template defines it: the IoT rules engine puts each message on the telemetry stream, the event source
mapping feeds the real detector (a Random Cut Forest per fan), Firehose feeds the real lake transform
and writes Parquet. Each step runs a fleet size for ``--step`` seconds and counts what every stage
took; a stage whose backlog grew by more than a few seconds of input did not keep up. The run ends at
the first step a stage falls behind (the bottleneck), then checks that the lake holds every reading
that was published, once.

The figures are this machine's (2 shared cores here, everything in one Python process but the broker):
on AWS each stage scales on its own (shards, Lambda concurrency per shard, Firehose).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

import paho.mqtt.client as mqtt

from fanwatch.core.mqtt import AmqttBroker
from fanwatch.standin import EmbeddedAws
from fanwatch.standin.aws import DETECTOR
from fanwatch.telemetry import format_ts

READINGS_PER_MESSAGE = 60
#: A stage keeps up when what it has not taken at the end of a step is less than this many seconds of input.
SLACK_S = 8.0
STAGES = ("rules engine", "detector", "Firehose")


@dataclass
class Counts:
    published: int
    rules: int
    detector: int
    firehose: int

    def taken(self) -> tuple[int, int, int]:
        return self.rules, self.detector, self.firehose


class Fleet:
    """``devices`` fans, each sending one message of 60 one-second readings per wall second."""

    def __init__(self, host: str, port: int) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-fleet")
        self.client.max_inflight_messages_set(2000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()
        self.published = 0
        self.readings = 0
        self._seq: dict[str, int] = {}
        self._start = datetime(2026, 11, 27, tzinfo=UTC)
        self._random = random.Random(7)

    def message(self, thing: str) -> bytes:
        seq = self._seq.get(thing, 0)
        self._seq[thing] = seq + 1
        base = 1500 + 100 * (hash(thing) % 10)
        first = self._start + timedelta(seconds=seq * READINGS_PER_MESSAGE)
        readings = [
            {
                "ts": format_ts(first + timedelta(seconds=i + 1)),
                "rpm": round(base + self._random.gauss(0, 8), 1),
                "hz": round(base / 30, 3),
                "pulses": 50,
                "window_s": 1.0,
                "flags": [],
            }
            for i in range(READINGS_PER_MESSAGE)
        ]
        sent = first + timedelta(seconds=READINGS_PER_MESSAGE)
        body = {
            "schema": "fanwatch.telemetry/1",
            "thing": thing,
            "fan": "fan0",
            "boot": "bench0001",
            "seq": seq,
            "sent": format_ts(sent),
            "readings": readings,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def run(self, devices: int, seconds: float) -> None:
        """Each device publishes once a second for ``seconds``."""
        things = [f"bench-{d:04d}" for d in range(devices)]
        deadline = time.monotonic() + seconds
        tick = time.monotonic()
        while tick < deadline:
            for thing in things:
                self.client.publish(f"fanwatch/{thing}/telemetry", self.message(thing), qos=1)
                self.published += 1
                self.readings += READINGS_PER_MESSAGE
            tick += 1.0
            time.sleep(max(0.0, tick - time.monotonic()))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def counts(aws: EmbeddedAws, fleet: Fleet) -> Counts:
    assert aws.rules is not None
    firehose = next(d for name, d in aws.deliveries.items() if name.endswith("readings"))
    return Counts(
        fleet.published,
        aws.rules.stats.received,
        aws.mappings[DETECTOR].stats.records,
        firehose.stats.records,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=float, default=20.0, help="seconds per fleet size")
    parser.add_argument("--first", type=int, default=2, help="devices in the first step")
    parser.add_argument("--most", type=int, default=256, help="stop doubling here")
    parser.add_argument("--quick", action="store_true", help="two steps of 8 s")
    args = parser.parse_args()
    if args.quick:
        args.step, args.most = 8.0, args.first * 2
    out = Path(tempfile.mkdtemp(prefix="fanwatch-bench-pipeline-"))
    print(f"one process but the broker; {os.cpu_count()} cores; steps of {args.step:.0f} s; work in {out}")
    header = f"{'rules engine':>12} {'detector':>10} {'Firehose':>10}"
    print(f"{'devices':>7} {'readings/s in':>14} | {header} (readings/s taken)")
    sustained: tuple[int, float] | None = None
    bottleneck = None
    with (
        AmqttBroker(out / "broker") as broker,
        EmbeddedAws.start(
            broker=broker.observer_endpoint(), lake_dir=out / "lake", parameters={"LakeBufferSeconds": 60}
        ) as aws,
    ):
        fleet = Fleet(broker.host, broker.port)
        # warm up: the handlers' first calls import numpy and build the forests (a Lambda cold start)
        fleet.run(args.first, 5.0)
        aws.wait_idle(timeout=120, lake=False)  # Firehose reads on; its transform buffer may wait
        print(f"(warmed up: {fleet.published} messages through the rules and the functions)", flush=True)
        devices = args.first
        while devices <= args.most:
            before = counts(aws, fleet)
            started = time.monotonic()
            fleet.run(devices, args.step)
            time.sleep(1.0)  # what was published in the last second may still be on its way
            after = counts(aws, fleet)
            elapsed = time.monotonic() - started
            offered = (after.published - before.published) * READINGS_PER_MESSAGE / elapsed
            rates = [
                (a - b) * READINGS_PER_MESSAGE / elapsed
                for a, b in zip(after.taken(), before.taken(), strict=True)
            ]
            behind = [after.published - taken for taken in after.taken()]
            per_second = devices  # messages offered per second
            late = [stage for stage, b in zip(STAGES, behind, strict=True) if b > SLACK_S * per_second]
            lags = ", ".join(f"{s} {b} messages" for s, b in zip(STAGES, behind, strict=True) if s in late)
            print(
                f"{devices:>7} {offered:>14,.0f} | "
                + " ".join(f"{r:>{w},.0f}" for r, w in zip(rates, (12, 10, 10), strict=True))
                + (f"   behind: {lags}" if late else ""),
                flush=True,
            )
            if late:
                bottleneck = late[0]
                break
            sustained = (devices, offered)
            devices *= 2
        fleet.close()
        print("draining what is left ...", flush=True)
        drained = aws.wait_idle(timeout=600, lake=False)
        aws.flush_lake()  # reads the stream to its end and writes what Firehose holds
        lake = aws.lake()
        ((rows, distinct),) = lake.query(
            "SELECT count(*), count(DISTINCT (thing, seq, ts)) FROM readings"
        ).rows
    if sustained:
        print(
            f"sustained end to end: {sustained[1]:,.0f} readings/s ({sustained[0]} devices, one message of "
            f"{READINGS_PER_MESSAGE} readings per device per second)"
        )
    print(f"bottleneck: {bottleneck or 'none reached (raise --most)'}")
    print(
        f"lake: {rows:,} rows for {fleet.readings:,} readings published, {distinct:,} distinct"
        + ("" if drained else " (the stand-in did not drain within 10 minutes)")
    )
    return 0 if rows == distinct == fleet.readings else 1


if __name__ == "__main__":
    sys.exit(main())
