"""Benchmark the detector Lambda's handler at steady state: the figure behind the cost estimate.

    python bench/detector.py           # 100 fans, 60 readings a message, 10 timed batches
    python bench/detector.py --quick   # 20 fans, 3 timed batches

Runs the real handler (``Detector.handle``: Powertools batch processing, contract parsing, sequence
checks, one forest per fan of 100 trees x 256, grading, DynamoDB state, the anomaly stream) on
Lambda-shaped Kinesis events, with real boto3 against moto server in a separate process, so that
this process's CPU time is the handler's own. Every fan starts from a checkpoint warmed on 4,000 s
of its stream (steady state, as in a running fleet). Prints readings per second, wall and CPU, the
forests alone on the same batches, and the cold start (the first batch loads every fan's model).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF lines among the figures

import boto3
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples"))
from cloud_cost import Assumptions
from rcf_streams import steady_fleet

from fanwatch.cloud.detector import AnomalyStream, Detector, thresholder_for
from fanwatch.cloud.records import DeadLetterQueue
from fanwatch.cloud.settings import DetectorSettings
from fanwatch.cloud.shapes import kinesis_event, kinesis_record
from fanwatch.cloud.stores import FanStateStore, S3ModelStore
from fanwatch.rcf import ForestManager, RandomCutForest
from fanwatch.telemetry import Reading, Telemetry, encode

REGION = "eu-west-1"
ARN = f"arn:aws:kinesis:{REGION}:123456789012:stream/fanwatch-telemetry"
FOREST = {"shingle_size": 4, "num_trees": 100, "sample_size": 256}
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


def clients(endpoint: str) -> dict[str, Any]:
    options = {
        "region_name": REGION,
        "endpoint_url": endpoint,
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
    }
    return {name: boto3.client(name, **options) for name in ("kinesis", "dynamodb", "s3", "sqs")}


def detector(aws: dict[str, Any]) -> Detector:
    """The handler as ``_from_environment`` builds it in the Lambda, wired to the stand-in."""
    aws["kinesis"].create_stream(StreamName="anomalies", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    aws["dynamodb"].create_table(
        TableName="fan-state",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    aws["s3"].create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
    dlq = aws["sqs"].create_queue(QueueName="dead-letters")["QueueUrl"]
    store = S3ModelStore(aws["s3"], "models")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 fans, 3 timed batches")
    args = parser.parse_args()
    fans, timed = (20, 3) if args.quick else (100, 10)
    per_message = 60
    progress(f"warming a template forest; {fans} fans, {timed} timed batches of {fans} messages")
    keys, readings, checkpoint = fleet(fans, timed + 1, per_message)
    server, endpoint = moto_server()
    try:
        aws = clients(endpoint)
        handler = detector(aws)
        for key in keys:
            aws["s3"].put_object(Bucket="models", Key=f"models/{key}.rcf", Body=checkpoint)
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
    print(f"  cold start, first batch ({fans} models from S3)    {cold_s:8.1f} s")
    print(f"  steady state, readings/s (wall)                {points / wall:8,.0f}")
    print(f"  steady state, readings/s (CPU of the handler)  {points / cpu:8,.0f}")
    print(f"  the forests alone, readings/s (CPU)            {points / alone:8,.0f}")
    print(f"  the cost estimate assumes                      {assumed:8,.0f}  (docs/examples/cloud_cost.py)")
    progress("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
