"""Kinesis records in, dead letters out: the one place that decides a record is poison.

A record that can never be processed (bad base64, bad JSON, a message that breaks the contract) is
not retried: retrying cannot fix it and would stall its shard. It goes to the dead-letter queue with
the reason and the original bytes, and the batch goes on. Only when the dead-letter queue itself
cannot be reached does the record count as a batch item failure, so it is retried and, after the
event source mapping's last attempt, reported by its on-failure destination: nothing is dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from fanwatch.errors import FanwatchError

__all__ = ["DeadLetter", "DeadLetterQueue", "PoisonRecord", "record_bytes"]


class PoisonRecord(FanwatchError, ValueError):
    """A record that no retry can fix; ``reason`` says why, for the dead letter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def record_bytes(record: KinesisStreamRecord) -> bytes:
    """The record's payload, or :class:`PoisonRecord` when its base64 is broken."""
    try:
        return base64.b64decode(record.kinesis.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PoisonRecord(f"$: data is not valid base64 ({exc})") from None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected record, with enough to find it in the stream and to replay it after a fix."""

    reason: str
    source: str  # which handler rejected it
    stream_arn: str
    partition_key: str
    sequence_number: str
    arrived: datetime
    data_b64: str  # the record's data exactly as received (still base64, possibly broken)

    @classmethod
    def of(cls, record: KinesisStreamRecord, *, reason: str, source: str) -> DeadLetter:
        return cls(
            reason=reason,
            source=source,
            stream_arn=record.event_source_arn,
            partition_key=record.kinesis.partition_key,
            sequence_number=record.kinesis.sequence_number,
            arrived=datetime.fromtimestamp(record.kinesis.approximate_arrival_timestamp, UTC),
            data_b64=record.kinesis.data,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "source": self.source,
            "streamArn": self.stream_arn,
            "partitionKey": self.partition_key,
            "sequenceNumber": self.sequence_number,
            "arrived": self.arrived.isoformat(),
            "data": self.data_b64,
        }


class DeadLetterQueue:
    """The SQS queue that keeps rejected records; ``sqs`` is a boto3 SQS client."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def send(self, letter: DeadLetter) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=json.dumps(letter.to_dict()),
            MessageAttributes={
                "source": {"DataType": "String", "StringValue": letter.source},
                "partitionKey": {"DataType": "String", "StringValue": letter.partition_key or "-"},
            },
        )
