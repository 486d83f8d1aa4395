"""Reading a Kinesis shard from where one left off, through refusals: what every stream consumer needs.

Both consumers of the stand-in's streams (the event source mapping and Firehose) read each shard in
order with ``get_records``. A refused read (throttling, the stand-in down for a moment, an expired
iterator) loses nothing: the cursor keeps the last sequence number it handed out and starts again
after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["READ_LIMIT", "ShardCursor", "shard_cursors"]

logger = logging.getLogger(__name__)

#: ``get_records`` returns at most this many records per call.
READ_LIMIT: Final = 10_000


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
