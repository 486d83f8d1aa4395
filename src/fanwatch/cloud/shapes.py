"""Lambda event shapes, built from what the stream APIs return.

Lambda hands a function Kinesis records and Firehose transformation batches in fixed shapes. The
local pipeline reads moto's streams with ``get_records`` and must call the handlers with exactly
those shapes; the tests build their events the same way.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["firehose_event", "from_get_records", "kinesis_event", "kinesis_record"]


def _arn_region(stream_arn: str) -> str:
    parts = stream_arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def kinesis_record(
    data: bytes | str,
    *,
    partition_key: str,
    sequence_number: str,
    arrival: float,
    stream_arn: str,
    shard_id: str = "shardId-000000000000",
) -> dict[str, Any]:
    """One record of a Kinesis event; ``data`` as bytes is base64-encoded, a str is taken as it is."""
    encoded = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence_number,
            "data": encoded,
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/fanwatch-local",
        "awsRegion": _arn_region(stream_arn),
        "eventSourceARN": stream_arn,
    }


def kinesis_event(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A Kinesis event as Lambda hands it to a function: the records (:func:`kinesis_record` shapes) under
    ``Records``."""
    return {"Records": [dict(r) for r in records]}


def from_get_records(
    records: Iterable[Mapping[str, Any]], *, stream_arn: str, shard_id: str
) -> dict[str, Any]:
    """A Kinesis event from the ``Records`` of a boto3 ``get_records`` response."""
    return kinesis_event(
        kinesis_record(
            r["Data"],
            partition_key=r["PartitionKey"],
            sequence_number=r["SequenceNumber"],
            arrival=r["ApproximateArrivalTimestamp"].timestamp()
            if isinstance(r["ApproximateArrivalTimestamp"], datetime)
            else float(r["ApproximateArrivalTimestamp"]),
            stream_arn=stream_arn,
            shard_id=shard_id,
        )
        for r in records
    )


def firehose_event(
    records: Iterable[Mapping[str, Any]], *, delivery_stream_arn: str, source_stream_arn: str
) -> dict[str, Any]:
    """A Firehose transformation event for Kinesis-sourced records (``kinesis_record`` shapes)."""
    out = []
    for i, record in enumerate(records):
        k = record["kinesis"]
        arrival_ms = int(k["approximateArrivalTimestamp"] * 1000)
        out.append(
            {
                "recordId": f"{i:08d}-{k['sequenceNumber']}",
                "approximateArrivalTimestamp": arrival_ms,
                "data": k["data"],
                "kinesisRecordMetadata": {
                    "shardId": record["eventID"].split(":")[0],
                    "partitionKey": k["partitionKey"],
                    "approximateArrivalTimestamp": arrival_ms,
                    "sequenceNumber": k["sequenceNumber"],
                    "subsequenceNumber": "",
                },
            }
        )
    return {
        "invocationId": "00000000-0000-4000-8000-000000000000",
        "deliveryStreamArn": delivery_stream_arn,
        "sourceKinesisStreamArn": source_stream_arn,
        "region": _arn_region(delivery_stream_arn),
        "records": out,
    }
