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
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from fanwatch.errors import FanwatchError

__all__ = ["MAX_LETTER_BYTES", "DeadLetter", "DeadLetterQueue", "PoisonRecord", "record_bytes", "sqs_text"]

#: The largest letter sent: SQS counts the body and every attribute's name, type and value. 256 KiB
#: was every queue's limit until 2025, so any queue takes it; a Kinesis record can be 1 MiB, ~1.4 MB
#: as base64 in JSON, more than any queue takes.
MAX_LETTER_BYTES = 256 * 1024
#: How much of an oversized record's base64 a letter keeps, to show what the producer sent.
_HEAD_CHARS = 4096
#: Characters SQS refuses in a body or a String attribute (outside XML's character set), and the
#: backslash, so an escaped value cannot be mistaken for another.
_NOT_SQS_TEXT = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|\\")


def sqs_text(value: str) -> str:
    """``value`` with what SQS refuses written as Python escapes (``\\x00``, ``\\ud800``)."""
    return _NOT_SQS_TEXT.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)


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

    def to_dict(self, *, with_data: bool = True) -> dict[str, Any]:
        """The letter's JSON; without the data, its size, digest and first bytes stand in for it."""
        letter: dict[str, Any] = {
            "reason": self.reason,
            "source": self.source,
            "streamArn": self.stream_arn,
            "partitionKey": self.partition_key,
            "sequenceNumber": self.sequence_number,
            "arrived": self.arrived.isoformat(),
            "data": self.data_b64 if with_data else None,
        }
        if not with_data:
            letter["dataOmitted"] = self._omitted()
        return letter

    def _omitted(self) -> dict[str, Any]:
        try:
            data, of = base64.b64decode(self.data_b64, validate=True), "data"
        except (binascii.Error, ValueError):
            data, of = self.data_b64.encode("utf-8", "surrogatepass"), "base64 text"
        return {
            "why": f"over the {MAX_LETTER_BYTES:,}-byte dead letter limit: read it from the stream",
            "of": of,  # what bytes and sha256 describe: the record's data, or its broken base64
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "head": self.data_b64[:_HEAD_CHARS],
        }


class DeadLetterQueue:
    """The SQS queue that keeps rejected records; ``sqs`` is a boto3 SQS client."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def send(self, letter: DeadLetter) -> None:
        """One message: the letter with the record's data when it fits, its digest when it does not.

        The body is ASCII (JSON escapes the rest) and attributes are escaped, so SQS accepts any
        record's letter: a letter refused would fail its record on every retry.
        """
        attributes = {
            "source": {"DataType": "String", "StringValue": sqs_text(letter.source)},
            "partitionKey": {"DataType": "String", "StringValue": sqs_text(letter.partition_key) or "-"},
        }
        room = MAX_LETTER_BYTES - sum(
            len(name) + len(a["DataType"]) + len(a["StringValue"].encode()) for name, a in attributes.items()
        )
        body = json.dumps(letter.to_dict())
        if len(body) > room:  # ASCII: characters are bytes
            body = json.dumps(letter.to_dict(with_data=False))
        self._sqs.send_message(QueueUrl=self._url, MessageBody=body, MessageAttributes=attributes)
