"""Firehose with a Kinesis source, a transform Lambda, Parquet conversion and dynamic partitioning.

moto's Firehose never reads a Kinesis source and writes each put as raw bytes, so the stand-in does
what the template's delivery stream says, in Firehose's order:

1. read every shard of the source stream (:class:`~fanwatch.standin.shards.ShardCursor`);
2. buffer for the transform Lambda (``BufferSizeInMBs``/``BufferIntervalInSeconds`` of the processor)
   and call it with the Firehose-shaped event (:func:`fanwatch.cloud.shapes.firehose_event`); a
   function error is retried (3 attempts, as Firehose's default), then the records go to the error
   prefix as ``processing-failed``, like records the function returned as ``ProcessingFailed``;
3. convert each returned JSON document to a row of the Glue table (:mod:`fanwatch.standin.parquet`);
   a record whose documents do not fit goes to the error prefix as ``format-conversion-failed``;
4. buffer per partition (the prefix with ``!{partitionKeyFromLambda:…}`` filled in when dynamic
   partitioning is on, ``!{timestamp:…}`` from the stand-in's clock either way) until
   ``SizeInMBs`` or ``IntervalInSeconds`` on the stand-in's clock, then write one Parquet object
   there. A refused write is retried until it succeeds: nothing read is dropped.

Every object also lands under ``mirror`` (a folder) when one is given, so the lake outlives the
stand-in (``fanwatch lake query --lake <folder>``). Buffers live in memory, as in Firehose.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from fanwatch.cloud.shapes import firehose_event, from_get_records
from fanwatch.edge.clock import Clock
from fanwatch.errors import FanwatchError
from fanwatch.standin.model import Delivery
from fanwatch.standin.parquet import ConversionError, arrow_schema, parquet_bytes, to_row
from fanwatch.standin.shards import POLL_S, ShardCursor, StreamConsumer

__all__ = ["DeliveryStats", "FirehoseDelivery", "PrefixError", "expand_prefix"]

logger = logging.getLogger(__name__)

#: Attempts at a transform invocation before its records are written as processing-failed.
TRANSFORM_ATTEMPTS: Final = 3
#: Refused writes a stopping stand-in still tries before it gives an object up.
GIVE_UP_WHEN_STOPPING: Final = 30
_EXPRESSION: Final = re.compile(r"!\{([a-zA-Z]+):([^}]*)\}")
#: Java DateTimeFormatter letters Firehose prefixes use, as strftime directives.
_JAVA_DATE: Final = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))


class PrefixError(FanwatchError, ValueError):
    """A prefix expression the stand-in does not evaluate, or a partition key the transform omitted."""


def expand_prefix(
    prefix: str, *, now: datetime, partition_keys: dict[str, str] | None = None, error_type: str | None = None
) -> str:
    """Fill in a Firehose S3 prefix's ``!{namespace:value}`` expressions."""

    def one(match: re.Match[str]) -> str:
        namespace, value = match.groups()
        if namespace == "timestamp":
            pattern = value
            for java, directive in _JAVA_DATE:
                pattern = pattern.replace(java, directive)
            return now.strftime(pattern)
        if namespace == "partitionKeyFromLambda":
            if not partition_keys or value not in partition_keys:
                raise PrefixError(f"the transform returned no partition key {value!r}")
            return str(partition_keys[value])
        if namespace == "firehose" and value == "error-output-type" and error_type:
            return error_type
        if namespace == "firehose" and value == "random-string":
            return uuid.uuid4().hex[:11]
        raise PrefixError(f"the stand-in does not evaluate !{{{namespace}:{value}}} in a prefix")

    return _EXPRESSION.sub(one, prefix)


@dataclass(slots=True)
class DeliveryStats:
    """What one delivery stream has done: records read, rows and objects written (with their keys), and
    each way a record or a write went wrong; ``fanwatch stack up`` and the demo count from them."""

    records: int = 0  # read from the stream
    rows: int = 0  # written to the lake
    objects: int = 0
    processing_failed: int = 0
    conversion_failed: int = 0
    dropped: int = 0
    transform_errors: int = 0
    write_refusals: int = 0
    keys: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Partition:
    rows: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0
    since: float = 0.0


class FirehoseDelivery(StreamConsumer):
    """One delivery stream of the template; ``start()``, ``flush()``, ``stop()``, ``idle``."""

    def __init__(
        self,
        delivery: Delivery,
        *,
        stream_name: str,
        kinesis: Any,
        s3: Any,
        transform: Callable[[dict[str, Any]], Any] | None,
        clock: Clock | None = None,
        mirror: Path | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__(
            stream=stream_name, kinesis=kinesis, starting_position="TRIM_HORIZON", clock=clock, poll_s=poll_s
        )
        if not delivery.dynamic_partitioning and "!{partitionKeyFromLambda:" in delivery.prefix:
            raise PrefixError(
                f"delivery {delivery.name}: the prefix {delivery.prefix!r} names the transform's partition "
                "keys, which Firehose only reads with dynamic partitioning enabled"
            )
        self.delivery = delivery
        self.stats = DeliveryStats()
        self._s3 = s3
        self._transform = transform
        self._mirror = mirror
        self._schema = arrow_schema(delivery.table.columns) if delivery.table else None
        self._cursors: list[ShardCursor] = []
        self._pending: list[tuple[str, dict[str, Any]]] = []  # (shard, record) for the transform
        self._pending_size = 0
        self._pending_since = 0.0
        self._partitions: dict[str, _Partition] = {}
        self._last_transform_error = ""
        self._lock = threading.RLock()  # the loop and flush() take turns

    def _started(self, cursors: list[ShardCursor]) -> None:
        # Firehose starts at the stream's tip when it is created; the stand-in creates both together
        self._cursors = cursors

    @property
    def idle(self) -> bool:
        """Every shard read to its end and nothing waiting for the transform (the lake may still buffer)."""
        with self._lock:
            return bool(self._cursors) and all(c.caught_up for c in self._cursors) and not self._pending

    @property
    def buffered_rows(self) -> int:
        with self._lock:
            return sum(len(p.rows) for p in self._partitions.values())

    def flush(self) -> None:
        """Read what the stream holds, transform it and write every buffer now (a demo's end)."""
        with self._lock:
            self._read_all()
            self._transform_pending()
            for key in list(self._partitions):
                self._write_partition(key)

    # --- the loop ----------------------------------------------------------------------------

    def _round(self) -> bool:
        with self._lock:
            worked = self._read_all()
            if self._pending and (
                self._pending_size >= self.delivery.processor_buffer_mb * 2**20
                or self._clock.now() - self._pending_since >= self.delivery.processor_buffer_s
            ):
                self._transform_pending()
                worked = True
            for key, partition in list(self._partitions.items()):
                if (
                    partition.size >= self.delivery.buffer_mb * 2**20
                    or self._clock.now() - partition.since >= self.delivery.buffer_s
                ):
                    self._write_partition(key)
        return worked

    def _read_all(self) -> bool:
        worked = False
        for cursor in self._cursors:
            records = cursor.read()
            if not records:
                continue
            if not self._pending:
                self._pending_since = self._clock.now()
            self._pending.extend((cursor.shard_id, r) for r in records)
            self._pending_size += sum(len(r["Data"]) for r in records)
            self.stats.records += len(records)
            worked = True
        return worked

    # --- transform and conversion --------------------------------------------------------------

    def _transform_pending(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._pending_size = self._pending, [], 0
        by_id: dict[str, tuple[str, dict[str, Any]]] = {}
        lambda_records = []
        for shard_id, record in pending:
            (shaped,) = from_get_records([record], stream_arn=self.delivery.source_arn, shard_id=shard_id)[
                "Records"
            ]
            lambda_records.append(shaped)
        event = firehose_event(
            lambda_records, delivery_stream_arn=self.delivery.arn, source_stream_arn=self.delivery.source_arn
        )
        for shaped, (shard_id, record) in zip(event["records"], pending, strict=True):
            by_id[shaped["recordId"]] = (shard_id, record)
        if self._transform is None:
            results = [
                {"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in event["records"]
            ]
        else:
            returned = self._call_transform(event)
            if returned is None:  # the function kept failing: every record is processing-failed
                why = self._last_transform_error
                for _shard, record in pending:
                    self._error(record, "processing-failed", "Lambda.FunctionError", why)
                return
            results = returned
        seen = set()
        for result in results:
            record_id = result.get("recordId")
            if record_id not in by_id or record_id in seen:
                continue
            seen.add(record_id)
            self._place(result, by_id[record_id][1])
        for record_id in by_id.keys() - seen:  # Firehose fails records the function did not return
            self._error(by_id[record_id][1], "processing-failed", "Lambda.MissingRecordId", "not returned")

    def _call_transform(self, event: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The transform's records, or None when it failed every attempt."""
        assert self._transform is not None
        for _attempt in range(TRANSFORM_ATTEMPTS):
            try:
                response = self._transform(event)
                records: list[dict[str, Any]] = response["records"]
                return records
            except Exception as exc:  # a function error: Firehose retries, then gives the records up
                self.stats.transform_errors += 1
                self._last_transform_error = f"{type(exc).__name__}: {exc}"
                logger.warning("transform of %s failed: %s", self.delivery.name, self._last_transform_error)
        return None

    def _place(self, result: dict[str, Any], record: dict[str, Any]) -> None:
        status = result.get("result")
        if status == "Dropped":
            self.stats.dropped += 1
            return
        if status != "Ok":
            self._error(
                record, "processing-failed", "Lambda.ProcessingFailed", "the transform failed the record"
            )
            return
        try:
            data = base64.b64decode(result.get("data", ""), validate=True)
            # without dynamic partitioning Firehose ignores the keys the transform returns
            keys = (result.get("metadata") or {}).get("partitionKeys") or {}
            keys = keys if self.delivery.dynamic_partitioning else {}
            prefix = expand_prefix(self.delivery.prefix, now=self._clock.utc(), partition_keys=keys)
            rows = self._rows(data)
        except (binascii.Error, ValueError) as exc:  # ConversionError and PrefixError are ValueErrors
            self._error(record, "format-conversion-failed", "DataFormatConversion.MalformedData", str(exc))
            return
        partition = self._partitions.get(prefix)
        if partition is None:
            partition = self._partitions[prefix] = _Partition(since=self._clock.now())
        partition.rows.extend(rows)
        partition.size += len(data)

    def _rows(self, data: bytes) -> list[dict[str, Any]]:
        """The transform's output as rows: JSON documents, one after another (whitespace between)."""
        text = data.decode()
        decoder = json.JSONDecoder()
        documents, at = [], 0
        while True:
            while at < len(text) and text[at].isspace():
                at += 1
            if at >= len(text):
                break
            try:
                document, at = decoder.raw_decode(text, at)
            except json.JSONDecodeError as exc:
                raise ConversionError(f"not JSON at {at}: {exc}") from None
            documents.append(document)
        if self._schema is None:
            return [{"_raw": json.dumps(d)} for d in documents]
        return [to_row(d, self._schema) for d in documents]

    # --- writing -------------------------------------------------------------------------------

    def _object_name(self) -> str:
        stamp = self._clock.utc().strftime("%Y-%m-%d-%H-%M-%S")
        return f"{self.delivery.name}-1-{stamp}-{uuid.uuid4()}"

    def _write_partition(self, prefix: str) -> None:
        partition = self._partitions.pop(prefix)
        if not partition.rows:
            return
        if self._schema is not None:
            body = parquet_bytes(partition.rows, self._schema, compression=self.delivery.parquet_compression)
            key = f"{prefix}{self._object_name()}.parquet"
        else:
            body = b"".join((r["_raw"] + "\n").encode() for r in partition.rows)
            key = f"{prefix}{self._object_name()}"
        self._put(key, body)
        self.stats.rows += len(partition.rows)
        self.stats.objects += 1
        self.stats.keys.append(key)

    def _error(self, record: dict[str, Any], error_type: str, code: str, message: str) -> None:
        if error_type == "processing-failed":
            self.stats.processing_failed += 1
        else:
            self.stats.conversion_failed += 1
        now = self._clock.utc()
        arrival = record["ApproximateArrivalTimestamp"]
        arrival_ms = int((arrival.timestamp() if isinstance(arrival, datetime) else float(arrival)) * 1000)
        line = {
            "attemptsMade": TRANSFORM_ATTEMPTS if code == "Lambda.FunctionError" else 1,
            "arrivalTimestamp": arrival_ms,
            "errorCode": code,
            "errorMessage": message,
            "attemptEndingTimestamp": int(now.timestamp() * 1000),
            "rawData": base64.b64encode(record["Data"]).decode(),
            "sequenceNumber": record["SequenceNumber"],
            "partitionKey": record["PartitionKey"],
        }
        prefix = expand_prefix(self.delivery.error_prefix, now=now, error_type=error_type)
        self._put(f"{prefix}{self._object_name()}", (json.dumps(line) + "\n").encode())

    def _put(self, key: str, body: bytes) -> None:
        """Write an object, trying again until S3 takes it; only a stopping stand-in gives up (after
        ``GIVE_UP_WHEN_STOPPING`` more refusals, saying so), as a deleted delivery stream would."""
        refused = 0
        while True:
            try:
                self._s3.put_object(Bucket=self.delivery.bucket, Key=key, Body=body)
                break
            except (ClientError, BotoCoreError) as exc:
                self.stats.write_refusals += 1
                refused += 1
                if self._stop.is_set() and refused > GIVE_UP_WHEN_STOPPING:
                    logger.error("stopping: s3://%s/%s not written (%s)", self.delivery.bucket, key, exc)
                    raise
                logger.warning(
                    "writing s3://%s/%s refused (%s); trying again", self.delivery.bucket, key, exc
                )
                self._clock.sleep(1.0, None)
        if self._mirror is not None:
            path = self._mirror / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
