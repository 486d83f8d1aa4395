"""Firehose from a Kinesis source to Parquet in the S3 stand-in, with the real lake transform."""

from __future__ import annotations

import base64
import io
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from fanwatch.cloud.lake import READINGS_TABLE, LakeLayout, delivery_prefix, transform
from fanwatch.edge.clock import MonotonicClock, ScaledClock
from fanwatch.standin import AwsEndpoint
from fanwatch.standin.firehose import FirehoseDelivery, PrefixError
from fanwatch.standin.model import Delivery, GlueColumn, GlueTable
from fanwatch.telemetry import LAKE_COLUMNS

STREAM, BUCKET = "telemetry", "lake"


def _delivery(endpoint: AwsEndpoint, **changes: Any) -> Delivery:
    table = GlueTable(
        "Readings",
        "db",
        "readings",
        tuple(GlueColumn(c.name, c.type) for c in LAKE_COLUMNS),
        (GlueColumn("dt", "string"),),
        f"s3://{BUCKET}/readings/",
        {},
    )
    values: dict[str, Any] = {
        "logical_id": "Delivery",
        "name": "readings",
        "arn": endpoint.arn("firehose", "deliverystream/readings"),
        "source_arn": endpoint.arn("kinesis", f"stream/{STREAM}"),
        "bucket": BUCKET,
        "prefix": "readings/dt=!{partitionKeyFromLambda:dt}/thing=!{partitionKeyFromLambda:thing}/",
        "error_prefix": "errors/readings/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/",
        "buffer_mb": 64.0,
        "buffer_s": 300.0,  # within the stack's LakeBufferSeconds range (60-900)
        "processor": "Transform",
        "processor_buffer_mb": 1.0,
        "processor_buffer_s": 60.0,
        "table": table,
        "parquet_compression": "SNAPPY",
        "dynamic_partitioning": True,
    }
    return Delivery(**{**values, **changes})


def _start(
    endpoint: AwsEndpoint,
    messages: list[tuple[str, bytes]],
    tmp_path: Path,
    *,
    delivery: dict[str, Any] | None = None,
    **options: Any,
) -> FirehoseDelivery:
    kinesis, s3 = endpoint.client("kinesis"), endpoint.client("s3")
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    s3.create_bucket(Bucket=BUCKET)
    for key, data in messages:
        kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey=key)
    started = FirehoseDelivery(
        _delivery(endpoint, **(delivery or {})),
        stream_name=STREAM,
        kinesis=kinesis,
        s3=endpoint.client("s3", retries=1),
        transform=options.pop("transform", lambda event: transform(event)),
        clock=options.pop("clock", ScaledClock(MonotonicClock(), 100)),
        mirror=tmp_path / "mirror",
        poll_s=0.5,
        **options,
    )
    started.start()
    return started


def _objects(endpoint: AwsEndpoint, prefix: str) -> dict[str, bytes]:
    s3 = endpoint.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def _wait(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


def test_messages_become_parquet_rows_under_their_partitions_after_the_buffer_time(
    moto: AwsEndpoint, tmp_path: Path, events_dir: Path
) -> None:
    telemetry = (events_dir / "mqtt" / "telemetry.json").read_bytes()
    other = telemetry.replace(b"pi-lab-01", b"pi-lab-02")
    delivery = _start(moto, [("pi-lab-01", telemetry), ("pi-lab-02", other)], tmp_path)
    # at 100x the transform buffer (60 s) and the lake buffer (300 s) pass in 0.6 s and 3 s
    _wait(lambda: delivery.stats.objects == 2, timeout=30)
    delivery.stop()
    objects = _objects(moto, "readings/")
    assert sorted(k.rsplit("/", 1)[0] for k in objects) == [
        "readings/dt=2026-11-27/thing=pi-lab-01",
        "readings/dt=2026-11-27/thing=pi-lab-02",
    ]
    for key, body in objects.items():
        table = pq.read_table(io.BytesIO(body))
        assert [f.name for f in table.schema] == [c.name for c in LAKE_COLUMNS]
        assert table.num_rows == 5 and set(table.column("thing").to_pylist()) == {
            key.split("thing=")[1].split("/")[0]
        }
        assert (tmp_path / "mirror" / key).read_bytes() == body


def test_laid_out_by_day_alone_every_thing_of_a_flush_shares_one_object_named_by_the_arrival_day(
    moto: AwsEndpoint, tmp_path: Path, events_dir: Path
) -> None:
    telemetry = (events_dir / "mqtt" / "telemetry.json").read_bytes()
    other = telemetry.replace(b"pi-lab-01", b"pi-lab-02")
    by_day = {"prefix": delivery_prefix(READINGS_TABLE, LakeLayout.DAY), "dynamic_partitioning": False}
    clock = ScaledClock(MonotonicClock(), 100)
    first_day = clock.utc().date()
    delivery = _start(
        moto, [("pi-lab-01", telemetry), ("pi-lab-02", other)], tmp_path, delivery=by_day, clock=clock
    )
    _wait(lambda: delivery.stats.rows == 10, timeout=30)
    delivery.stop()
    (key, body), *more = _objects(moto, "readings/").items()
    assert more == []  # the transform's partition keys are not read without dynamic partitioning
    day = date.fromisoformat(key.split("/")[1].removeprefix("dt="))
    assert key.count("/") == 2 and first_day <= day <= clock.utc().date()
    table = pq.read_table(io.BytesIO(body))
    assert sorted(table.column("thing").to_pylist()) == ["pi-lab-01"] * 5 + ["pi-lab-02"] * 5


def test_a_prefix_naming_partition_keys_without_dynamic_partitioning_is_refused(moto: AwsEndpoint) -> None:
    with pytest.raises(PrefixError, match="only reads with dynamic partitioning enabled"):
        FirehoseDelivery(
            _delivery(moto, dynamic_partitioning=False),
            stream_name=STREAM,
            kinesis=moto.client("kinesis"),
            s3=moto.client("s3"),
            transform=None,
        )


def test_records_the_transform_fails_go_to_the_error_prefix_as_they_came(
    moto: AwsEndpoint, tmp_path: Path, events_dir: Path
) -> None:
    telemetry = (events_dir / "mqtt" / "telemetry.json").read_bytes()
    delivery = _start(moto, [("pi-lab-01", telemetry), ("pi-lab-01", b"garbage, not JSON")], tmp_path)
    _wait(lambda: delivery.stats.processing_failed == 1)
    delivery.flush()
    delivery.stop()
    (error,) = _objects(moto, "errors/readings/processing-failed/").values()
    line = json.loads(error)
    assert base64.b64decode(line["rawData"]) == b"garbage, not JSON"
    assert line["errorCode"] == "Lambda.ProcessingFailed" and line["partitionKey"] == "pi-lab-01"
    assert len(_objects(moto, "readings/")) == 1


def test_a_transform_that_keeps_failing_sends_its_records_to_the_error_prefix(
    moto: AwsEndpoint, tmp_path: Path, events_dir: Path
) -> None:
    def broken(event: dict[str, Any]) -> dict[str, Any]:
        raise MemoryError("out of memory")

    delivery = _start(
        moto,
        [("pi-lab-01", (events_dir / "mqtt" / "telemetry.json").read_bytes())],
        tmp_path,
        transform=broken,
    )
    _wait(lambda: delivery.stats.processing_failed == 1)
    delivery.stop()
    assert delivery.stats.transform_errors == 3
    (error,) = _objects(moto, "errors/readings/processing-failed/").values()
    assert json.loads(error)["errorCode"] == "Lambda.FunctionError"


def test_rows_that_do_not_fit_the_schema_fail_the_conversion_of_their_record_only(
    moto: AwsEndpoint, tmp_path: Path, events_dir: Path
) -> None:
    def sloppy(event: dict[str, Any]) -> dict[str, Any]:
        out = transform(event)
        first = out["records"][0]
        first["data"] = base64.b64encode(b'{"seq": "not a number", "thing": "pi-lab-01"}').decode()
        return out

    telemetry = (events_dir / "mqtt" / "telemetry.json").read_bytes()
    delivery = _start(moto, [("pi-lab-01", telemetry), ("pi-lab-01", telemetry)], tmp_path, transform=sloppy)
    _wait(lambda: delivery.stats.conversion_failed == 1)
    delivery.flush()
    delivery.stop()
    assert len(_objects(moto, "errors/readings/format-conversion-failed/")) == 1
    assert delivery.stats.rows == 5
