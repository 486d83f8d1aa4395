"""The shared event files are in the exact shapes Lambda delivers, and cover every case they claim."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisFirehoseEvent, KinesisStreamEvent

from fanwatch.cloud.shapes import from_get_records
from fanwatch.telemetry import ContractError, parse_telemetry


def test_the_kinesis_file_reads_through_powertools_and_matches_its_case_list(
    load_event: Callable[[str], Any],
) -> None:
    event = KinesisStreamEvent(load_event("kinesis/telemetry_mixed.json"))
    cases = load_event("kinesis/telemetry_mixed.cases.json")
    records = list(event.records)
    assert [r.kinesis.sequence_number for r in records] == [c["sequenceNumber"] for c in cases]
    outcomes = []
    for record in records:
        try:
            data = base64.b64decode(record.kinesis.data, validate=True)
            parse_telemetry(data, thing=record.kinesis.partition_key)
            outcomes.append("ok")
        except binascii.Error:
            outcomes.append("base64")
        except ContractError as exc:
            outcomes.append(exc.field)
    assert outcomes == ["ok"] * 6 + ["$", "base64", "schema", "thing", "readings[0].rpm"]
    assert all(r.event_source_arn.endswith(":stream/fanwatch-telemetry") for r in records)


def test_the_firehose_file_reads_through_powertools(load_event: Callable[[str], Any]) -> None:
    event = KinesisFirehoseEvent(load_event("firehose/telemetry_transform.json"))
    first = next(iter(event.records))
    assert first.metadata is not None and first.metadata.partition_key == "pi-lab-01"


def test_get_records_output_becomes_a_lambda_event() -> None:
    arrival = datetime(2026, 11, 27, 19, 35, tzinfo=UTC)
    event = from_get_records(
        [
            {
                "Data": b"{}",
                "PartitionKey": "pi-1",
                "SequenceNumber": "42",
                "ApproximateArrivalTimestamp": arrival,
            }
        ],
        stream_arn="arn:aws:kinesis:eu-west-1:123456789012:stream/s",
        shard_id="shardId-000000000001",
    )
    record = next(iter(KinesisStreamEvent(event).records))
    assert record.kinesis.data_as_bytes() == b"{}"
    assert record.event_id == "shardId-000000000001:42" and record.aws_region == "eu-west-1"
    assert record.kinesis.approximate_arrival_timestamp == pytest.approx(arrival.timestamp())
