"""The Kinesis event source mapping: what Lambda does between a stream and a function.

Per shard, in order: read with ``get_records``, gather a batch (up to ``BatchSize`` records, or what
came within ``MaximumBatchingWindowInSeconds``), call the function with the Lambda-shaped event
(:func:`fanwatch.cloud.shapes.from_get_records`), and act on the outcome as Lambda does:

* the function raised: with ``BisectBatchOnFunctionError`` the batch is split in two and each half
  tried in turn (splitting uses no retry); a batch that cannot be split is retried up to
  ``MaximumRetryAttempts`` times (-1: for ever), then its shard and sequence range go to the
  on-failure destination in Lambda's shape, and the shard moves on;
* with ``ReportBatchItemFailures``, the records before the lowest reported failure are done and the
  rest, from that sequence number on, is a failed batch (split in two again when bisection is on); a
  report naming a record that is not in the batch fails the whole batch, as on Lambda.

Nothing is skipped because the stand-in refused a read or the destination a write: the shard waits
and tries again. One thread serves every shard of the stream, so one shard never overtakes its own
records; ``ParallelizationFactor`` above 1 is not reproduced (batches of a shard run one at a time).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from fanwatch.cloud.shapes import from_get_records
from fanwatch.edge.clock import Clock
from fanwatch.standin.model import EventSourceMapping
from fanwatch.standin.shards import POLL_S, ShardCursor, StreamConsumer

__all__ = ["EventSourcePoller", "MappingStats", "on_failure_record"]

logger = logging.getLogger(__name__)

#: Longest wait before a failed batch is retried (Lambda backs off, doubling, from about a second).
MAX_BACKOFF_S: Final = 30.0


@dataclass(slots=True)
class MappingStats:
    """What a mapping did so far, for the demo's progress line and the tests."""

    records: int = 0
    invocations: int = 0
    function_errors: int = 0
    retries: int = 0
    bisections: int = 0
    dead_lettered_batches: int = 0
    dead_lettered_records: int = 0
    on_failure_refusals: int = 0
    failures: list[str] = field(default_factory=list)  # the last function errors, newest last


@dataclass(slots=True)
class _Shard:
    cursor: ShardCursor
    buffer: list[dict[str, Any]] = field(default_factory=list)  # read, not yet through the function
    first_buffered: float | None = None

    @property
    def shard_id(self) -> str:
        return self.cursor.shard_id


def on_failure_record(
    *,
    records: list[dict[str, Any]],
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    attempts: int,
    condition: str,
    error: str | None,
    now: datetime,
) -> dict[str, Any]:
    """What Lambda sends to an on-failure destination for a Kinesis batch it gave up on."""

    def arrival(record: dict[str, Any]) -> str:
        stamp = record["ApproximateArrivalTimestamp"]
        when = stamp if isinstance(stamp, datetime) else datetime.fromtimestamp(float(stamp), UTC)
        return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return {
        "requestContext": {
            "requestId": f"local-{records[0]['SequenceNumber'][-12:]}",
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled" if error else "",
        },
        "version": "1.0",
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["SequenceNumber"],
            "endSequenceNumber": records[-1]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrival(records[0]),
            "approximateArrivalOfLastRecord": arrival(records[-1]),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


class EventSourcePoller(StreamConsumer):
    """Feeds one stream to one function as ``mapping`` says; ``start()``, ``stop()``, ``idle``.

    ``invoke(event)`` calls the function (a :class:`~fanwatch.standin.functions.FunctionContainer`'s
    ``invoke``); ``on_failure(body)`` sends a record to the on-failure destination (None: none set).
    """

    def __init__(
        self,
        mapping: EventSourceMapping,
        *,
        stream_name: str,
        function_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        kinesis: Any,
        on_failure: Callable[[str], None] | None,
        clock: Clock | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__(
            stream=stream_name,
            kinesis=kinesis,
            starting_position=mapping.starting_position,
            clock=clock,
            poll_s=poll_s,
        )
        self.mapping = mapping
        self.stats = MappingStats()
        self._function_arn = function_arn
        self._invoke = invoke
        self._on_failure = on_failure
        self._shards: list[_Shard] = []
        self._busy = False

    # --- life cycle --------------------------------------------------------------------------

    def _started(self, cursors: list[ShardCursor]) -> None:
        self._shards = [_Shard(c) for c in cursors]

    @property
    def read_refusals(self) -> int:
        return sum(s.cursor.refusals for s in self._shards)

    @property
    def idle(self) -> bool:
        """Every shard read to its end, nothing buffered, no batch running."""
        return (
            not self._busy
            and bool(self._shards)
            and all(s.cursor.caught_up and not s.buffer for s in self._shards)
        )

    # --- the loop ----------------------------------------------------------------------------

    def _round(self) -> bool:
        worked = False
        for shard in self._shards:
            if self._stop.is_set():
                break
            worked |= self._read(shard)
            batch = self._ready_batch(shard)
            if batch:
                self._busy = True
                try:
                    self._deliver(shard.shard_id, batch)
                finally:
                    self._busy = False
                del shard.buffer[: len(batch)]
                shard.first_buffered = self._clock.now() if shard.buffer else None
                worked = True
        return worked

    def _read(self, shard: _Shard) -> bool:
        """Top the shard's buffer up; True when records came. A refused read is tried again later."""
        if len(shard.buffer) >= self.mapping.batch_size:
            return False
        records = shard.cursor.read()
        if not records:
            return False
        if not shard.buffer:
            shard.first_buffered = self._clock.now()
        shard.buffer.extend(records)
        return True

    def _ready_batch(self, shard: _Shard) -> list[dict[str, Any]]:
        if not shard.buffer:
            return []
        full = len(shard.buffer) >= self.mapping.batch_size
        waited = shard.first_buffered is not None and (
            self._clock.now() - shard.first_buffered >= self.mapping.batching_window_s
        )
        return shard.buffer[: self.mapping.batch_size] if full or waited else []

    # --- one batch, to the end -----------------------------------------------------------------

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        """Process ``records`` until each went through or was given up on, in order."""
        pending: list[tuple[list[dict[str, Any]], int]] = [(records, 0)]  # (batch, retries so far)
        while pending and not self._stop.is_set():
            batch, retries = pending.pop(0)
            failed_from, error = self._attempt(shard_id, batch)
            if failed_from is None:
                continue
            rest = batch[failed_from:]
            if self.mapping.bisect_on_error and len(rest) > 1:
                self.stats.bisections += 1
                half = len(rest) // 2
                pending[:0] = [(rest[:half], retries), (rest[half:], retries)]
                continue
            if self.mapping.max_retries < 0 or retries < self.mapping.max_retries:
                self.stats.retries += 1
                self._clock.sleep(min(MAX_BACKOFF_S, 2.0**retries), self._stop)
                pending.insert(0, (rest, retries + 1))
                continue
            self._give_up(shard_id, rest, retries + 1, error)

    def _attempt(self, shard_id: str, batch: list[dict[str, Any]]) -> tuple[int | None, str | None]:
        """Index of the first record to try again (None: all done) and the function's error."""
        event = from_get_records(batch, stream_arn=self.mapping.source_arn, shard_id=shard_id)
        self.stats.invocations += 1
        try:
            response = self._invoke(event)
        except Exception as exc:  # a function error, whatever the handler raised
            self.stats.function_errors += 1
            self.stats.failures = [*self.stats.failures[-9:], f"{type(exc).__name__}: {exc}"]
            logger.warning("%s raised on a batch of %d: %s", self._function_arn, len(batch), exc)
            return 0, f"{type(exc).__name__}: {exc}"
        if not self.mapping.report_item_failures or not isinstance(response, dict):
            self.stats.records += len(batch)
            return None, None
        reported = response.get("batchItemFailures") or []
        sequence = [r["SequenceNumber"] for r in batch]
        indexes = []
        for failure in reported:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if identifier not in sequence:  # Lambda fails the whole batch on a report it cannot place
                return 0, f"batchItemFailures names {identifier!r}, not a record of the batch"
            indexes.append(sequence.index(identifier))
        if not indexes:
            self.stats.records += len(batch)
            return None, None
        self.stats.records += min(indexes)
        return min(indexes), "the function reported batch item failures"

    def _give_up(
        self, shard_id: str, records: list[dict[str, Any]], attempts: int, error: str | None
    ) -> None:
        self.stats.dead_lettered_batches += 1
        self.stats.dead_lettered_records += len(records)
        if self._on_failure is None:
            logger.error(
                "%d record(s) of %s dropped: retries exhausted, no destination", len(records), shard_id
            )
            return
        body = json.dumps(
            on_failure_record(
                records=records,
                shard_id=shard_id,
                stream_arn=self.mapping.source_arn,
                function_arn=self._function_arn,
                attempts=attempts,
                condition="RetryAttemptsExhausted",
                error=error,
                now=self._clock.utc(),
            )
        )
        while not self._stop.is_set():
            try:
                self._on_failure(body)
                return
            except (ClientError, BotoCoreError) as exc:
                self.stats.on_failure_refusals += 1
                logger.warning("on-failure destination refused (%s); trying again", exc)
                self._clock.sleep(1.0, self._stop)
