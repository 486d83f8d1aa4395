"""Benchmark the detector Lambda's handler at steady state: the figure behind the cost estimate.

    python bench/detector.py           # 100 fans, 60 readings a message, 10 timed batches
    python bench/detector.py --quick   # 20 fans, 3 timed batches
    python bench/detector.py --fans 1000              # a fleet: containers, routing, reloads (below)
    python bench/detector.py --fans 10000 --minutes 1 --s3-latency-ms 20

With ``--fans`` it runs a fleet as Lambda would: each fan sends one message a minute (at its own
second), records go to shards by the partition key's MD5 and to the mapping's concurrent batches
(``--parallelization``) by the key again; a batch closes at ``--batch-size`` records or after
``--window`` seconds and goes to a free container picked at random (no stickiness; a new container
when none is free, up to one per concurrent batch). Each container is a real ``Detector`` with its
own forest manager bounded by ``--memory-mb`` (``ready_forests_for``), sharing DynamoDB, the
anomalies stream and the model bucket in moto (another process). The timeline is simulated: a
batch takes as long as the real handler took on it here, so iterator age is what a steady load of
that many fans would see with containers this fast. Prints readings/s per container, reloads per
batch, the memory high-water mark and the iterator age, beside the capacity model's figures.
``--s3-latency-ms`` makes each of the handler's S3 requests wait that long before it is sent (S3's
own first-byte latency is tens of ms; moto on loopback answers in one), and ``--model-requests``
sets how many the model store keeps in flight.

Runs the real handler (``Detector.handle``: Powertools batch processing, contract parsing, sequence
checks, one forest per fan of 100 trees x 256, grading, DynamoDB state, the anomaly stream) on
Lambda-shaped Kinesis events, with real boto3 against moto server in a separate process, so that
this process's CPU time is the handler's own. Every fan starts from a checkpoint warmed on 4,000 s
of its stream (steady state, as in a running fleet). Prints readings per second, wall and CPU, the
forests alone on the same batches, and the cold start (the first batch loads every fan's model).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF lines among the figures

import boto3
import numpy as np
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples"))
from cloud_cost import Assumptions, capacity
from rcf_streams import steady_fleet

from fanwatch.cloud.detector import (
    AnomalyStream,
    Detector,
    RetryLater,
    ready_forests_for,
    thresholder_for,
)
from fanwatch.cloud.records import DeadLetterQueue
from fanwatch.cloud.settings import DetectorSettings
from fanwatch.cloud.shapes import kinesis_event, kinesis_record
from fanwatch.cloud.stores import MODEL_REQUESTS_IN_FLIGHT, FanStateStore, S3ModelStore
from fanwatch.rcf import ForestManager, RandomCutForest, ready_forest_bytes
from fanwatch.telemetry import Reading, Telemetry, encode

REGION = "eu-west-1"
ARN = f"arn:aws:kinesis:{REGION}:123456789012:stream/fanwatch-telemetry"
FOREST = {"shingle_size": 4, "num_trees": 100, "sample_size": 256}
FOREST_SHAPE = DetectorSettings().forest_shape
T0 = datetime(2026, 11, 27, tzinfo=UTC)
START = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f}s] {message}", file=sys.stderr, flush=True)


def moto_server() -> tuple[subprocess.Popen[bytes], str]:
    """moto in its own process, so that its CPU time is not counted as the handler's."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return server, endpoint
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto server did not start")


def clients(endpoint: str, s3_latency_ms: float = 0.0) -> dict[str, Any]:
    """Clients of the stand-in, the S3 one as the detector builds it, each of its requests held back
    ``s3_latency_ms`` (the wait of a real S3 request, which moto on loopback does not have)."""
    options = {
        "region_name": REGION,
        "endpoint_url": endpoint,
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
        "config": Config(max_pool_connections=MODEL_REQUESTS_IN_FLIGHT),
    }
    aws = {name: boto3.client(name, **options) for name in ("kinesis", "dynamodb", "s3", "sqs")}
    if s3_latency_ms > 0:
        aws["s3"].meta.events.register("before-send.s3.*", lambda **_: time.sleep(s3_latency_ms / 1000))
    return aws


def resources(aws: dict[str, Any]) -> str:
    """The stack's anomalies stream, fan state table, model bucket and dead-letter queue (its URL)."""
    aws["kinesis"].create_stream(StreamName="anomalies", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    aws["dynamodb"].create_table(
        TableName="fan-state",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    aws["s3"].create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
    return str(aws["sqs"].create_queue(QueueName="dead-letters")["QueueUrl"])


def detector(aws: dict[str, Any], dlq: str, model_requests: int) -> Detector:
    """The handler as ``_from_environment`` builds it in the Lambda, wired to the stand-in."""
    store = S3ModelStore(aws["s3"], "models", in_flight=model_requests)
    return Detector(
        forests=lambda: ForestManager(dimensions=1, store=store, **FOREST),
        states=FanStateStore(aws["dynamodb"], "fan-state"),
        anomalies=AnomalyStream(aws["kinesis"], "anomalies"),
        dead_letters=DeadLetterQueue(aws["sqs"], dlq),
        thresholder=thresholder_for(DetectorSettings()),
    )


def fleet(fans: int, batches: int, per_message: int) -> tuple[list[str], np.ndarray, bytes]:
    """Fan keys, their readings (fans x time) after the warm-up, and the warmed checkpoint."""
    warm, records = steady_fleet(fans, batches * per_message)
    template = RandomCutForest(1, **FOREST, seed=5)
    template.process(warm)
    return [f"pi-{i:04d}/fan0" for i in range(fans)], records.T, template.to_bytes()


def batch(keys: list[str], readings: np.ndarray, b: int, per_message: int) -> dict[str, Any]:
    """Batch ``b``: one telemetry message per fan with its next ``per_message`` readings (1 Hz)."""
    records = []
    for i, key in enumerate(keys):
        thing, fan = key.split("/")
        first = b * per_message
        message = Telemetry(
            thing=thing,
            fan=fan,
            boot="bench",
            seq=b,
            sent=T0 + timedelta(seconds=first + per_message),
            readings=tuple(
                Reading(T0 + timedelta(seconds=first + k), float(rpm), float(rpm) / 30, 60, 1.0)
                for k, rpm in enumerate(readings[i, first : first + per_message])
            ),
        )
        records.append(
            kinesis_record(
                encode(message),
                partition_key=thing,
                sequence_number=f"{b:08d}{i:08d}",
                arrival=(T0 + timedelta(seconds=first)).timestamp(),
                stream_arn=ARN,
            )
        )
    return kinesis_event(records)


@dataclass
class Container:
    """One Lambda execution environment: its own detector and forests, busy until a simulated time."""

    name: int
    detector: Detector
    managers: list[ForestManager]
    busy_until: float = 0.0
    busy_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time in the handler (moto runs in another)
    readings: int = 0
    batches: int = 0
    memory_high: int = 0  # bytes of forests: ready ones in the bank, compact checkpoints

    def moves(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for manager in self.managers:
            total.update(manager.stats)
        return total


@dataclass
class Lane:
    """One of a shard's concurrent batches (the mapping's parallelization): records in order."""

    queue: deque[tuple[float, dict[str, Any]]] = field(default_factory=deque)
    free_at: float = 0.0


def md5_of(key: str) -> int:
    return int.from_bytes(hashlib.md5(key.encode()).digest(), "big")


def fleet_main(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop moto (finally)
    fans, per_message, minutes = args.fans, 60, args.warmup_minutes + args.minutes
    model = replace(Assumptions(), fans=fans, detector_memory_gb=args.memory_mb / 1024)
    sized = capacity(model)
    shards = args.shards or sized.shards
    parallel = args.parallelization
    lanes_n = shards * parallel
    ready = ready_forests_for(args.memory_mb, ready_forest_bytes(**FOREST_SHAPE))
    progress(
        f"{fans:,} fans, {shards} shard(s) x parallelization {parallel}, containers of {args.memory_mb} MB "
        f"({ready} forests ready), {args.warmup_minutes} + {args.minutes} simulated minute(s)"
    )
    keys = [f"pi-{i // 2:05d}/fan{i % 2}" for i in range(fans)]
    warm, series = steady_fleet(fans, minutes * per_message)
    template = RandomCutForest(1, **FOREST, seed=5)
    template.process(warm)
    checkpoint = template.to_bytes()
    rng = random.Random(args.seed)
    offsets = [rng.uniform(0, 60) for _ in keys]  # each fan's second of the minute
    server, endpoint = moto_server()
    try:
        setup = clients(endpoint)  # not held back: storing the checkpoints is not measured
        aws = clients(endpoint, args.s3_latency_ms)
        resources(setup)
        progress(
            f"storing {fans:,} warmed checkpoints ({len(checkpoint) / 1000:.0f} KB each) in the S3 stand-in"
        )
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda k: setup["s3"].put_object(Bucket="models", Key=f"models/{k}.rcf", Body=checkpoint),
                    keys,
                )
            )
        state = FanStateStore(aws["dynamodb"], "fan-state")
        anomalies = AnomalyStream(aws["kinesis"], "anomalies")
        dlq = DeadLetterQueue(aws["sqs"], aws["sqs"].get_queue_url(QueueName="dead-letters")["QueueUrl"])
        settings = DetectorSettings()

        def container(name: int) -> Container:
            managers: list[ForestManager] = []

            def forests() -> ForestManager:
                managers.append(
                    ForestManager(
                        **FOREST_SHAPE,
                        store=S3ModelStore(aws["s3"], "models", in_flight=args.model_requests),
                        max_resident=settings.max_resident,
                        max_hydrated=ready,
                    )
                )
                return managers[-1]

            handler = Detector(
                forests=forests,
                states=state,
                anomalies=anomalies,
                dead_letters=dlq,
                thresholder=thresholder_for(settings),
                clock=lambda: now,
                cache_states=args.cache_fan_state,
            )
            return Container(name, handler, managers)

        # what each lane receives, in arrival order: (arrival, record)
        arrivals: list[tuple[float, int, int]] = sorted(
            (m * 60 + offsets[i], i, m) for m in range(minutes) for i in range(len(keys))
        )
        lanes = [Lane() for _ in range(lanes_n)]
        # the partition key (the thing) picks the shard, and the concurrent batch within it
        lane_of = [
            md5_of(t) % shards * parallel + md5_of(t) // shards % parallel
            for t in (k.split("/")[0] for k in keys)
        ]
        pool: list[Container] = []
        ages: list[tuple[float, float]] = []  # (start, iterator age)
        batches: list[dict[str, float]] = []
        measured_from = args.warmup_minutes * 60.0
        now = 0.0
        next_arrival = 0
        retried = 0
        end = minutes * 60.0
        done_readings = 0
        last_report = time.perf_counter()
        while True:
            # the earliest moment a lane can start a batch
            candidates = []
            for index, lane in enumerate(lanes):
                if not lane.queue:
                    continue
                oldest = lane.queue[0][0]
                full_at = (
                    lane.queue[args.batch_size - 1][0] if len(lane.queue) >= args.batch_size else math.inf
                )
                ready_at = max(lane.free_at, min(oldest + args.window, full_at))
                candidates.append((ready_at, index))
            start = min(candidates)[0] if candidates else math.inf
            upcoming = arrivals[next_arrival][0] if next_arrival < len(arrivals) else math.inf
            if upcoming <= start:  # a record arrives before any batch can start
                if upcoming == math.inf:
                    break
                at, i, m = arrivals[next_arrival]
                next_arrival += 1
                lanes[lane_of[i]].queue.append(
                    (at, message_record(keys[i], m, series[m * per_message : (m + 1) * per_message, i], at))
                )
                continue
            if start > end:  # the window is over: what is still queued is the backlog
                break
            index = min(candidates)[1]
            lane = lanes[index]
            now = start
            records = []
            while lane.queue and len(records) < args.batch_size and lane.queue[0][0] <= start:
                records.append(lane.queue.popleft())
            free = [c for c in pool if c.busy_until <= start]
            if free:
                box = rng.choice(free)
            else:
                box = container(len(pool))
                pool.append(box)
            before = box.moves()
            began, cpu = time.perf_counter(), time.process_time()
            event = kinesis_event([r for _, r in records])
            while True:  # Lambda retries a failed batch (FanStateCache: a fan moved on meanwhile)
                try:
                    response = box.detector.handle(event)
                    break
                except RetryLater:
                    retried += 1
            took, cpu = time.perf_counter() - began, time.process_time() - cpu
            if response["batchItemFailures"]:
                raise RuntimeError(f"the handler failed records: {response['batchItemFailures'][:3]}")
            counts = box.detector.last_counts
            moved = box.moves() - before
            box.busy_until = lane.free_at = start + took
            memory = sum(m.hydrated for m in box.managers[-1:]) * ready_forest_bytes(**FOREST_SHAPE) + (
                len(box.managers[-1]) - box.managers[-1].hydrated
            ) * len(checkpoint)
            box.memory_high = max(box.memory_high, memory)
            done_readings += counts["readings"]
            if start >= measured_from:
                ages.append((start, start - records[0][0]))
                box.busy_s += took
                box.cpu_s += cpu
                box.readings += counts["readings"]
                box.batches += 1
                batches.append(
                    {
                        "messages": len(records),
                        "loaded": moved["loaded"],
                        "thawed": moved["thawed"],
                        "frozen": moved["frozen"],
                        "stored": moved["stored"],
                        "moved": counts["forest_reloads"],
                    }
                )
            if time.perf_counter() - last_report > 10:
                last_report = time.perf_counter()
                progress(
                    f"simulated {start:6.0f} s of {end:.0f}: {done_readings:,} readings scored, "
                    f"{len(pool)} container(s), iterator age {start - records[0][0]:5.1f} s"
                )
    finally:
        server.kill()
    backlog = sum(len(lane.queue) for lane in lanes) + len(arrivals) - next_arrival
    report_fleet(args, model, sized, shards, parallel, ready, pool, batches, ages, backlog, retried)
    return 0


def report_fleet(
    args: argparse.Namespace,
    model: Assumptions,
    sized: Any,
    shards: int,
    parallel: int,
    ready: int,
    pool: list[Container],
    batches: list[dict[str, float]],
    ages: list[tuple[float, float]],
    backlog: int,
    retried: int,
) -> None:
    print(
        f"\ndetector fleet, 100 trees x 256, shingle 4: {args.fans:,} fans, one message of 60 readings a "
        f"minute each; {shards} shard(s) x parallelization {parallel}; containers of {args.memory_mb} MB "
        f"({ready} forests ready); S3 requests {args.s3_latency_ms:g} ms, {args.model_requests} in flight; "
        f"measured over {args.minutes} simulated minute(s) after {args.warmup_minutes} of warm-up\n"
    )
    print("  container  batches  readings/s (busy wall)  readings/s (CPU)  forests high-water (MB)")
    for box in pool:
        if box.batches:
            rate, cpu, high = box.readings / box.busy_s, box.readings / box.cpu_s, box.memory_high / 2**20
            print(f"  {box.name:>9}  {box.batches:>7}  {rate:>22,.0f}  {cpu:>16,.0f}  {high:>23,.0f}")
    n = max(1, len(batches))
    total = {k: sum(b[k] for b in batches) for k in batches[0]} if batches else Counter()
    readings = sum(b.readings for b in pool)
    busy = sum(b.busy_s for b in pool)

    def row(name: str, value: str) -> None:
        print(f"  {name:<52} {value}")

    print()
    row("containers used", f"{len(pool)}")
    cpu = sum(b.cpu_s for b in pool)
    row("readings/s per container, busy wall / CPU (all)", f"{readings / busy:,.0f} / {readings / cpu:,.0f}")
    row("messages per batch", f"{total['messages'] / n:.1f}")
    row("forests loaded from S3 per batch", f"{total['loaded'] / n:.1f}")
    row("forests thawed from memory per batch", f"{total['thawed'] / n:.1f}")
    row("forests frozen / stored per batch", f"{total['frozen'] / n:.1f} / {total['stored'] / n:.1f}")
    row("fans another container had moved on (reloaded)", f"{total['moved']:,.0f}")
    row(
        "messages whose forest was not ready",
        f"{(total['loaded'] + total['thawed']) / n / max(1, total['messages'] / n):.0%}",
    )
    row("process peak RSS", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    if ages:
        values = sorted(a for _, a in ages)
        half = len(ages) // 2
        first = sum(a for _, a in ages[:half]) / max(1, half)
        second = sum(a for _, a in ages[half:]) / max(1, len(ages) - half)
        row(
            "iterator age, median / max",
            f"{values[len(values) // 2]:.1f} / {values[-1]:.1f} s (mean: first half {first:.1f} s, "
            f"second half {second:.1f} s)",
        )
    row("messages not processed when the window ended", f"{backlog:,}")
    row("batches retried (a cached fan state was behind)", f"{retried:,}")
    print(
        f"\n  the capacity model (docs/examples/cloud_cost.py) for {args.fans:,} fans: "
        f"{sized.containers} container(s), {sized.container_points_per_s:,.0f} readings/s each, "
        f"{sized.miss:.0%} of messages not ready"
    )
    progress("done")


def message_record(key: str, minute: int, rpms: np.ndarray, at: float) -> dict[str, Any]:
    """A fan's telemetry message of ``minute`` as the Kinesis record the mapping delivers."""
    thing, fan = key.split("/")
    first = minute * len(rpms)
    message = Telemetry(
        thing=thing,
        fan=fan,
        boot="bench",
        seq=minute,
        sent=T0 + timedelta(seconds=first + len(rpms)),
        readings=tuple(
            Reading(T0 + timedelta(seconds=first + k), float(rpm), float(rpm) / 30, 60, 1.0)
            for k, rpm in enumerate(rpms)
        ),
    )
    return kinesis_record(
        encode(message),
        partition_key=thing,
        sequence_number=f"{int(at * 1e6):016d}{md5_of(key) % 10**8:08d}",
        arrival=T0.timestamp() + at,
        stream_arn=ARN,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 fans, 3 timed batches")
    parser.add_argument("--fans", type=int, help="run a fleet of this many fans over Lambda containers")
    parser.add_argument("--minutes", type=int, default=2, help="simulated minutes measured (fleet)")
    parser.add_argument("--warmup-minutes", type=int, default=1, help="simulated minutes not measured")
    parser.add_argument(
        "--memory-mb", type=int, default=2048, help="each container's memory (DetectorMemoryMB)"
    )
    parser.add_argument("--shards", type=int, help="default: as many as the capacity model sizes")
    parser.add_argument("--parallelization", type=int, default=1, help="DetectorParallelization")
    parser.add_argument("--batch-size", type=int, default=100, help="DetectorBatchSize")
    parser.add_argument("--window", type=float, default=5.0, help="DetectorBatchingWindowSeconds")
    parser.add_argument("--cache-fan-state", action="store_true", help="FanStateCache=true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--s3-latency-ms", type=float, default=0.0, help="each of the handler's S3 requests waits this long"
    )
    parser.add_argument(
        "--model-requests",
        type=int,
        default=MODEL_REQUESTS_IN_FLIGHT,
        help="S3 requests the model store keeps in flight (1: one at a time)",
    )
    args = parser.parse_args()
    if args.fans:
        return fleet_main(args)
    fans, timed = (20, 3) if args.quick else (100, 10)
    per_message = 60
    progress(f"warming a template forest; {fans} fans, {timed} timed batches of {fans} messages")
    keys, readings, checkpoint = fleet(fans, timed + 1, per_message)
    server, endpoint = moto_server()
    try:
        setup = clients(endpoint)
        aws = clients(endpoint, args.s3_latency_ms)
        handler = detector(aws, resources(setup), args.model_requests)
        for key in keys:
            setup["s3"].put_object(Bucket="models", Key=f"models/{key}.rcf", Body=checkpoint)
        events = [batch(keys, readings, b, per_message) for b in range(timed + 1)]

        progress("cold start: the first batch loads every fan's model from S3")
        begin = time.perf_counter()
        failures = handler.handle(events[0])["batchItemFailures"]
        cold_s = time.perf_counter() - begin
        progress(f"steady state: {timed} batches")
        wall, cpu = time.perf_counter(), time.process_time()
        for event in events[1:]:
            failures += handler.handle(event)["batchItemFailures"]
            if handler.last_counts["readings"] != fans * per_message:
                raise RuntimeError(f"a batch scored {handler.last_counts['readings']} readings")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if failures:
            raise RuntimeError(f"the handler failed records: {failures[:3]}")
    finally:
        server.kill()

    progress("the forests alone, on the same readings")
    manager = ForestManager(dimensions=1, max_hydrated=fans, **FOREST)
    for key in keys:
        manager.adopt(key, checkpoint)
    manager.process(keys * per_message, readings[:, :per_message].T.reshape(-1))
    alone = time.process_time()
    for b in range(1, timed + 1):
        chunk = readings[:, b * per_message : (b + 1) * per_message]
        manager.process(keys * per_message, chunk.T.reshape(-1))
    alone = time.process_time() - alone

    points = fans * per_message * timed
    assumed = Assumptions().detector_points_per_s
    print(f"\ndetector handler, 100 trees x 256, shingle 4: {fans} fans, {per_message} readings a message\n")
    print(
        f"  cold start, first batch ({fans} models from S3)    {cold_s:8.1f} s  "
        f"(S3 requests {args.s3_latency_ms:g} ms, {args.model_requests} in flight)"
    )
    print(f"  steady state, readings/s (wall)                {points / wall:8,.0f}")
    print(f"  steady state, readings/s (CPU of the handler)  {points / cpu:8,.0f}")
    print(f"  the forests alone, readings/s (CPU)            {points / alone:8,.0f}")
    print(f"  the cost estimate assumes                      {assumed:8,.0f}  (docs/examples/cloud_cost.py)")
    progress("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
