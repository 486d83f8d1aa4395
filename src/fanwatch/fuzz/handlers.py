"""Fuzz targets for the cloud handlers: Kinesis batches into the detector and the notifier, Firehose
batches into the lake transform, each handler built on real boto3 clients against a stand-in endpoint
(moto server), as the Lambda builds it against AWS.

A batch mixes valid messages with poisoned, damaged and junk ones (and records whose base64 is
broken, records too big for a dead letter, and partition keys that name another sender or hold any
character Kinesis takes, SQS refuses in an attribute ones included). Dead letters go to queues made
as SQS made them until 2025 (256 KiB), so a letter too big fails as it would there. The promise
checked on every batch: no record is reported as a batch failure, and exactly the records the
contract refuses are dead-lettered (or, in the lake, left to the error prefix) while every other
record goes through.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from hypothesis import strategies as st

from fanwatch.cloud.detector import AnomalyStream, Detector
from fanwatch.cloud.events import parse_event
from fanwatch.cloud.lake import transform
from fanwatch.cloud.notifier import Cooldown, Notifier
from fanwatch.cloud.records import MAX_LETTER_BYTES, DeadLetterQueue
from fanwatch.cloud.settings import DetectorSettings
from fanwatch.cloud.shapes import firehose_event, kinesis_event, kinesis_record
from fanwatch.cloud.stores import FanStateStore, S3ModelStore
from fanwatch.fuzz.harness import Escaped, Outcome, Target
from fanwatch.fuzz.strategies import (
    THINGS,
    alert_message,
    anomaly_message,
    dumps,
    legacy_message,
    payloads,
    telemetry_message,
)
from fanwatch.rcf import ForestManager, Thresholder
from fanwatch.telemetry import parse_telemetry

__all__ = ["StandIn", "detector_target", "handler_targets", "lake_target", "notifier_target"]

_REGION = "eu-west-1"
_ACCOUNT = "123456789012"
#: Small forests: the fuzz is about the handlers' promises, not about scoring speed.
_FOREST = {"shingle_size": 4, "num_trees": 20, "sample_size": 64, "seed": 7}

#: One record as it reaches a handler: its data (bytes to encode, or a str that is sent as it is,
#: possibly not base64) and its partition key.
Record = tuple[bytes | str, str]


@dataclass(frozen=True, slots=True)
class StandIn:
    """The handlers' data plane on an AWS stand-in, with fresh names so runs never share state."""

    endpoint: str

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=_REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="fuzz",
            aws_secret_access_key="fuzz",
        )

    def _table(self, dynamodb: Any, name: str) -> str:
        dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        return name

    def _dead_letters(self, sqs: Any, tag: str) -> DeadLetterQueue:
        attributes = {"MaximumMessageSize": str(MAX_LETTER_BYTES)}
        return DeadLetterQueue(
            sqs, sqs.create_queue(QueueName=f"dead-letters-{tag}", Attributes=attributes)["QueueUrl"]
        )

    def detector(self) -> Detector:
        tag = uuid.uuid4().hex[:8]
        kinesis, dynamodb, s3, sqs = (self.client(s) for s in ("kinesis", "dynamodb", "s3", "sqs"))
        kinesis.create_stream(StreamName=f"anomalies-{tag}", StreamModeDetails={"StreamMode": "ON_DEMAND"})
        s3.create_bucket(Bucket=f"models-{tag}", CreateBucketConfiguration={"LocationConstraint": _REGION})
        store = S3ModelStore(s3, f"models-{tag}")
        return Detector(
            forests=lambda: ForestManager(dimensions=1, store=store, **_FOREST),
            states=FanStateStore(dynamodb, self._table(dynamodb, f"fan-state-{tag}")),
            anomalies=AnomalyStream(kinesis, f"anomalies-{tag}"),
            dead_letters=self._dead_letters(sqs, tag),
            thresholder=Thresholder(floor=DetectorSettings().score_floor, z=3.0),
        )

    def notifier(self) -> Notifier:
        tag = uuid.uuid4().hex[:8]
        dynamodb, sns, sqs = (self.client(s) for s in ("dynamodb", "sns", "sqs"))
        return Notifier(
            sns=sns,
            topic_arn=sns.create_topic(Name=f"alerts-{tag}")["TopicArn"],
            cooldown=Cooldown(dynamodb, self._table(dynamodb, f"cooldown-{tag}"), seconds=900.0),
            dead_letters=self._dead_letters(sqs, tag),
        )


# --- batches --------------------------------------------------------------------------------------

#: Any key Kinesis takes (1 to 256 characters), surrogates and control characters included.
_any_key = st.text(st.characters(exclude_categories=()), min_size=1, max_size=256)
_senders = st.one_of(st.sampled_from(THINGS), st.sampled_from(THINGS), st.text(max_size=40), _any_key)
#: A record over IoT Core's 128 KB whose letter, as base64 in JSON, is over SQS's 256 KiB: a producer
#: writing to the stream directly (Kinesis takes 1 MiB).
_oversized = st.builds(
    lambda size, byte: bytes([byte]) * size, st.integers(200_000, 400_000), st.integers(0, 255)
)
_not_base64 = st.one_of(st.sampled_from(["%%%", "abc", "e30", "ü", "====", ""]), st.text(max_size=20))


@st.composite
def _valid(draw: st.DrawFn, messages: Callable[..., st.SearchStrategy[dict[str, Any]]]) -> Record:
    thing = draw(st.sampled_from(THINGS))
    return dumps(draw(messages(thing=thing))), thing


def _batches(
    valid: st.SearchStrategy[Record], untrusted: st.SearchStrategy[bytes]
) -> st.SearchStrategy[list[Record]]:
    record = st.one_of(
        valid,
        valid,
        st.tuples(untrusted, _senders),
        st.tuples(_not_base64, _senders),
        st.tuples(_oversized, _senders),
    )
    return st.lists(record, min_size=1, max_size=10)


def _encoded(data: bytes | str) -> str:
    return base64.b64encode(data).decode() if isinstance(data, bytes) else data


def _refused(parse: Callable[..., Any], data: bytes | str, key: str) -> bool:
    """Whether the contract refuses this record (the oracle each handler is checked against)."""
    try:
        parse(base64.b64decode(_encoded(data), validate=True), thing=key)
    except (binascii.Error, ValueError):  # broken base64 (ContractError is a ValueError too)
        return True
    return False


class _Sequence:
    """Kinesis sequence numbers, increasing across every batch of a run, as a shard's are."""

    def __init__(self) -> None:
        self._next = itertools.count()

    def event(self, batch: list[Record], stream: str) -> dict[str, Any]:
        arn = f"arn:aws:kinesis:{_REGION}:{_ACCOUNT}:stream/{stream}"
        now = datetime.now(UTC).timestamp()
        return kinesis_event(
            kinesis_record(
                _encoded(data),
                partition_key=key,
                sequence_number=f"{next(self._next):056d}",
                arrival=now,
                stream_arn=arn,
            )
            for data, key in batch
        )


def _kinesis_outcomes(
    handle: Callable[[dict[str, Any]], dict[str, Any]],
    dead_letters: Callable[[], int],
    parse: Callable[..., Any],
    batch: list[Record],
    event: dict[str, Any],
) -> Counter[Outcome]:
    refused = sum(_refused(parse, data, key) for data, key in batch)
    response = handle(event)
    if response.get("batchItemFailures"):
        raise Escaped(f"{len(response['batchItemFailures'])} of {len(batch)} record(s) failed the batch")
    if dead_letters() != refused:
        raise Escaped(f"{dead_letters()} dead letter(s) for {refused} record(s) the contract refuses")
    return Counter({Outcome.ACCEPTED: len(batch) - refused, Outcome.REFUSED: refused})


def detector_target(detector: Detector) -> Target:
    """Kinesis telemetry batches into the detector."""
    sequence = _Sequence()
    valid = st.one_of(_valid(telemetry_message), _valid(lambda thing: legacy_message()))
    untrusted = payloads(st.one_of(telemetry_message(), legacy_message()))

    def attempt(batch: list[Record]) -> Counter[Outcome]:
        event = sequence.event(batch, "telemetry")
        outcomes = _kinesis_outcomes(
            detector.handle, lambda: detector.last_counts["dead_letters"], parse_telemetry, batch, event
        )
        if detector.last_counts["messages"] != outcomes[Outcome.ACCEPTED]:
            raise Escaped(
                f"{detector.last_counts['messages']} processed of {outcomes[Outcome.ACCEPTED]} valid"
            )
        return outcomes

    return Target("detector (Kinesis)", _batches(valid, untrusted), attempt, unit="batches")


def notifier_target(notifier: Notifier) -> Target:
    """Kinesis batches of anomalies and edge alerts into the notifier."""
    sequence = _Sequence()
    valid = st.one_of(_valid(anomaly_message), _valid(alert_message))
    untrusted = payloads(st.one_of(anomaly_message(), alert_message()))

    def attempt(batch: list[Record]) -> Counter[Outcome]:
        event = sequence.event(batch, "anomalies")
        outcomes = _kinesis_outcomes(
            notifier.handle, lambda: notifier.counts["dead_letters"], parse_event, batch, event
        )
        sent = notifier.counts["notifications"] + notifier.counts["held_back"]
        if sent != outcomes[Outcome.ACCEPTED]:
            raise Escaped(f"{sent} notified or held back for {outcomes[Outcome.ACCEPTED]} valid event(s)")
        return outcomes

    return Target("notifier (Kinesis)", _batches(valid, untrusted), attempt, unit="batches")


def _lake_rows(data: str) -> list[dict[str, Any]]:
    def no_constants(name: str) -> None:
        raise Escaped(f"the lake wrote {name}, which is not JSON")

    lines = base64.b64decode(data, validate=True).decode().splitlines()
    return [json.loads(line, parse_constant=no_constants) for line in lines]


def lake_target() -> Target:
    """Firehose batches of telemetry, anomalies and alerts into the lake transform."""
    sequence = _Sequence()
    valid = st.one_of(_valid(telemetry_message), _valid(anomaly_message), _valid(alert_message))
    untrusted = payloads(st.one_of(telemetry_message(), legacy_message(), anomaly_message(), alert_message()))

    def attempt(batch: list[Record]) -> Counter[Outcome]:
        stream = f"arn:aws:kinesis:{_REGION}:{_ACCOUNT}:stream/telemetry"
        event = firehose_event(
            sequence.event(batch, "telemetry")["Records"],
            delivery_stream_arn=f"arn:aws:firehose:{_REGION}:{_ACCOUNT}:deliverystream/lake",
            source_stream_arn=stream,
        )
        out = transform(event)["records"]
        if [r["recordId"] for r in out] != [r["recordId"] for r in event["records"]]:
            raise Escaped("the transform did not answer every record once, in order")
        outcomes: Counter[Outcome] = Counter()
        for sent, got in zip(event["records"], out, strict=True):
            if got["result"] == "ProcessingFailed":
                if got["data"] != sent["data"]:
                    raise Escaped("a failed record was not returned as it came")
                outcomes[Outcome.REFUSED] += 1
            elif got["result"] == "Ok":
                if not _lake_rows(got["data"]) or set(got["metadata"]["partitionKeys"]) != {"dt", "thing"}:
                    raise Escaped("an Ok record without rows or partition keys")
                outcomes[Outcome.ACCEPTED] += 1
            else:
                raise Escaped(f"unknown result {got['result']!r}")
        return outcomes

    return Target("lake (Firehose)", _batches(valid, untrusted), attempt, unit="batches")


def handler_targets(endpoint: str) -> tuple[Target, ...]:
    """Every handler target, wired to the stand-in at ``endpoint``."""
    stand_in = StandIn(endpoint)
    return (detector_target(stand_in.detector()), notifier_target(stand_in.notifier()), lake_target())
