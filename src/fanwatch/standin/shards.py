"""Reading a Kinesis shard from where one left off, through refusals: what every stream consumer needs.

Both consumers of the stand-in's streams (the event source mapping and Firehose) read each shard in
order with ``get_records``. A refused read (throttling, the stand-in down for a moment, an expired
iterator) loses nothing: the cursor keeps the last sequence number it handed out and starts again
after it.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from fanwatch.edge.clock import Clock, MonotonicClock

__all__ = ["POLL_S", "READ_LIMIT", "ShardCursor", "StreamConsumer", "shard_cursors"]

logger = logging.getLogger(__name__)

#: ``get_records`` returns at most this many records per call.
READ_LIMIT: Final = 10_000
#: Seconds (on the consumer's clock) between rounds that found nothing to do; Lambda polls a shard
#: about once a second.
POLL_S: Final = 1.0


@dataclass(slots=True)
class ShardCursor:
    """One shard of ``stream``; :meth:`read` returns the next records, or None when refused."""

    kinesis: Any
    stream: str
    shard_id: str
    starting_position: str = "TRIM_HORIZON"
    iterator: str | None = None
    last_sequence: str | None = None
    caught_up: bool = False  # the last read returned nothing: the shard is read to its end
    refusals: int = 0

    def read(self, limit: int = READ_LIMIT) -> list[dict[str, Any]] | None:
        try:
            if self.iterator is None:
                self.iterator = self._iterator()
            response = self.kinesis.get_records(ShardIterator=self.iterator, Limit=min(limit, READ_LIMIT))
        except (ClientError, BotoCoreError) as exc:
            self.refusals += 1
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
            if code in ("ExpiredIteratorException", "InvalidArgumentException", "ResourceNotFoundException"):
                self.iterator = None
            logger.warning("reading %s %s refused (%s); trying again", self.stream, self.shard_id, code)
            return None
        self.iterator = response.get("NextShardIterator")
        records: list[dict[str, Any]] = response.get("Records", [])
        self.caught_up = not records
        if records:
            self.last_sequence = records[-1]["SequenceNumber"]
        return records

    def _iterator(self) -> str:
        if self.last_sequence is not None:
            where = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": self.last_sequence,
            }
        else:
            where = {"ShardIteratorType": self.starting_position}
        response = self.kinesis.get_shard_iterator(StreamName=self.stream, ShardId=self.shard_id, **where)
        iterator: str = response["ShardIterator"]
        return iterator


def shard_cursors(kinesis: Any, stream: str, starting_position: str = "TRIM_HORIZON") -> list[ShardCursor]:
    """A cursor per shard of ``stream`` as it is now (resharding later is not followed)."""
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    return [ShardCursor(kinesis, stream, s["ShardId"], starting_position) for s in shards]


class StreamConsumer(ABC):
    """A thread that reads every shard of ``stream`` in rounds: :meth:`_round` does one and says whether
    it found work; a round without work is followed by a pause of ``poll_s`` on ``clock``."""

    def __init__(
        self, *, stream: str, kinesis: Any, starting_position: str, clock: Clock | None, poll_s: float
    ) -> None:
        self._stream = stream
        self._kinesis = kinesis
        self._starting_position = starting_position
        self._clock = clock or MonotonicClock()
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._started(shard_cursors(self._kinesis, self._stream, self._starting_position))
        self._thread = threading.Thread(
            target=self._run, name=f"{type(self).__name__}-{self._stream}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._round():
                self._clock.sleep(self._poll_s, self._stop)

    @abstractmethod
    def _started(self, cursors: list[ShardCursor]) -> None:
        """Take the stream's shards, before the first round."""

    @abstractmethod
    def _round(self) -> bool:
        """Read and process what there is; True when there was something."""
