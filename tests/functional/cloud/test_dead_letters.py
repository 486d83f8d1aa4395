"""Dead letters SQS accepts whatever the record was: real boto3 against moto server.

Moto checks a message's size against the queue's MaximumMessageSize but not the characters of a
message attribute, so these tests also assert on what the handlers send (captured from boto3's own
request parameters), against the limits SQS documents.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fanwatch.cloud.detector import Detector
from fanwatch.cloud.records import MAX_LETTER_BYTES
from fanwatch.cloud.shapes import kinesis_event, kinesis_record

ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/fanwatch-telemetry"
T0 = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
#: What SQS accepts in a message body or a String attribute (the W3C XML character set).
SQS_CHARACTERS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def _sent(aws: Any) -> list[dict[str, Any]]:
    """SendMessage parameters exactly as boto3 is asked to send them, from now on."""
    sent: list[dict[str, Any]] = []
    aws.client("sqs").meta.events.register(
        "provide-client-params.sqs.SendMessage", lambda params, **_: sent.append(dict(params))
    )
    return sent


def _size(params: dict[str, Any]) -> int:
    """A message's size as SQS counts it: the body plus each attribute's name, type and value."""
    size = len(params["MessageBody"].encode())
    for name, attribute in params.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(attribute["DataType"].encode())
        size += len(attribute["StringValue"].encode("utf-8", "surrogatepass"))
    return size


def _batch(*records: tuple[bytes, str]) -> dict[str, Any]:
    return kinesis_event(
        kinesis_record(
            data, partition_key=key, sequence_number=f"{i:056d}", arrival=T0.timestamp(), stream_arn=ARN
        )
        for i, (data, key) in enumerate(records)
    )


def test_a_record_too_big_for_a_dead_letter_is_lettered_with_its_size_and_digest(
    aws: Any, make_detector: Callable[..., Detector]
) -> None:
    """Issue 14: a 1 MB record (Kinesis' limit) is ~1.4 MB as base64 in JSON: the letter failed, and
    with it the record, on every retry. The queue is made as SQS made them before 2025 (256 KiB)."""
    queue = aws.client("sqs").create_queue(
        QueueName="small-letters", Attributes={"MaximumMessageSize": str(MAX_LETTER_BYTES)}
    )["QueueUrl"]
    huge = b'{"schema": "' + b"x" * 1_000_000 + b'"}'
    sent = _sent(aws)
    detector = make_detector(dlq_url=queue)
    assert detector.handle(_batch((huge, "pi-big"), (b"not json", "pi-small"))) == {"batchItemFailures": []}
    assert detector.last_counts["dead_letters"] == 2
    assert [_size(p) <= MAX_LETTER_BYTES for p in sent] == [True, True]
    big, small = (json.loads(m["Body"]) for m in aws.queue_messages(queue))
    # Still findable in the stream, and provably the same record once found.
    assert (big["partitionKey"], big["sequenceNumber"], big["streamArn"]) == ("pi-big", f"{0:056d}", ARN)
    assert big["data"] is None
    assert big["dataOmitted"]["bytes"] == len(huge)
    assert big["dataOmitted"]["sha256"] == hashlib.sha256(huge).hexdigest()
    assert (
        base64.b64decode(big["dataOmitted"]["head"])
        == huge[: len(base64.b64decode(big["dataOmitted"]["head"]))]
    )
    assert "over IoT Core" in big["reason"]
    # A record that fits keeps its data exactly as received, and no omission.
    assert base64.b64decode(small["data"]) == b"not json"
    assert "dataOmitted" not in small


def test_a_partition_key_sqs_would_refuse_as_an_attribute_is_sent_escaped(
    aws: Any, make_detector: Callable[..., Detector]
) -> None:
    """SQS refuses a String attribute with characters outside XML's (moto takes them): a producer
    writing to the stream directly chooses the key, so the letter, and the record, failed for ever."""
    key = "pi\x00\x07-1\ud800\ufffe\\"
    sent = _sent(aws)
    assert make_detector().handle(_batch((b"not json", key))) == {"batchItemFailures": []}
    (params,) = sent
    attribute = params["MessageAttributes"]["partitionKey"]["StringValue"]
    assert SQS_CHARACTERS.fullmatch(attribute)
    assert attribute == "pi\\x00\\x07-1\\ud800\\ufffe\\\\"  # escaped, so still tells keys apart
    assert SQS_CHARACTERS.fullmatch(params["MessageBody"])
    (letter,) = aws.dead_letters()
    assert letter["partitionKey"] == key  # the body keeps the key exactly (JSON escapes it)
