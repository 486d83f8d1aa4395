"""Where the detector keeps what it learned: forests in S3, per-fan bookkeeping in DynamoDB.

Both stores take boto3 clients, so the same code talks to AWS and to the embedded stand-in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from fanwatch.cloud.sequence import SequenceState
from fanwatch.errors import FanwatchError
from fanwatch.rcf import ScoreStats
from fanwatch.telemetry import format_ts, parse_ts

__all__ = ["MODEL_REQUESTS_IN_FLIGHT", "FanState", "FanStateStore", "S3ModelStore", "StaleState"]

# S3 requests the detector keeps in flight when it moves many models at once: a GET of a 150 KB
# checkpoint waits ~20 ms on the network and ~1 ms on the CPU, so 16 at a time hide the wait. The
# S3 client's connection pool is sized from it (botocore's default pool is 10).
MODEL_REQUESTS_IN_FLIGHT = 16

_T = TypeVar("_T")


class S3ModelStore:
    """A :class:`fanwatch.rcf.BatchStore` over one S3 prefix; skips writing a model that did not change.

    ``in_flight``: requests :meth:`get_many` and :meth:`put_many` keep going at once (boto3 clients
    are thread-safe; the client's ``max_pool_connections`` should be at least this).
    Objects are encrypted by the bucket's default KMS key; the bucket's lifecycle expires old versions.
    """

    def __init__(
        self, s3: Any, bucket: str, *, prefix: str = "models/", in_flight: int = MODEL_REQUESTS_IN_FLIGHT
    ) -> None:
        if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
            raise ValueError(f"in_flight must be a positive integer, got {in_flight!r}")
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix
        self._digests: dict[str, bytes] = {}
        self.in_flight = in_flight
        self._pool: ThreadPoolExecutor | None = None  # made on the first batch: most stores never need one

    def _key(self, key: str) -> str:
        return f"{self._prefix}{key}.rcf"

    def get(self, key: str) -> bytes | None:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=self._key(key))
        except self._s3.exceptions.NoSuchKey:
            return None
        data: bytes = response["Body"].read()
        self._digests[key] = hashlib.blake2b(data, digest_size=16).digest()
        return data

    def put(self, key: str, data: bytes) -> None:
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if self._digests.get(key) == digest:
            return
        self._s3.put_object(
            Bucket=self._bucket, Key=self._key(key), Body=data, ContentType="application/octet-stream"
        )
        self._digests[key] = digest

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        keys = list(keys)
        return dict(zip(keys, self._each(self.get, keys), strict=True))

    def put_many(self, items: Mapping[str, bytes]) -> None:
        self._each(lambda item: self.put(*item), list(items.items()))

    def _each(self, call: Callable[[_T], Any], args: list[_T]) -> list[Any]:
        """``call`` on every arg, ``in_flight`` at a time; every call finishes before the first
        error is raised, so no request is left running behind the caller."""
        if len(args) <= 1 or self.in_flight == 1:
            return [call(arg) for arg in args]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.in_flight, thread_name_prefix="s3-models")
        futures = [self._pool.submit(call, arg) for arg in args]
        errors = [error for future in futures if (error := future.exception()) is not None]
        if errors:
            raise errors[0]
        return [future.result() for future in futures]


@dataclass(slots=True)
class FanState:
    """Everything the detector remembers about one fan between invocations, besides its forest."""

    sequence: SequenceState = field(default_factory=SequenceState)
    stats: ScoreStats = field(default_factory=ScoreStats)  # normal scores of the fan's current forest
    last_scored: datetime | None = None  # readings at or before this are not fed to the forest again
    anomaly_since: datetime | None = None  # start of the current run of anomalous readings
    typical_rpm: float | None = None  # the speed the fan normally runs at (EWMA of normal readings)
    # a speed-controlled fan: the last commanded speed its readings carried (None: it carries none)
    target: float | None = None
    settle_until: datetime | None = None  # it is following a commanded change until then: not scored
    version: int = 0  # bumped on every save; another writer's bump means our copy is stale

    def to_json(self) -> str:
        return json.dumps(
            {
                "sequence": self.sequence.to_item(),
                "stats": self.stats.to_item(),
                "last_scored": _ts(self.last_scored),
                "anomaly_since": _ts(self.anomaly_since),
                "typical_rpm": self.typical_rpm,
                "target": self.target,
                "settle_until": _ts(self.settle_until),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str, version: int) -> FanState:
        data = json.loads(text)
        stats = data["stats"]
        typical = data.get("typical_rpm", stats.get("rpm"))  # saved before it moved out of the stats
        target = data.get("target")
        return cls(
            sequence=SequenceState.from_item(data["sequence"]),
            stats=ScoreStats.from_item(stats),
            last_scored=_parse(data.get("last_scored"), "last_scored"),
            anomaly_since=_parse(data.get("anomaly_since"), "anomaly_since"),
            typical_rpm=None if typical is None else float(typical),
            target=None if target is None else float(target),
            settle_until=_parse(data.get("settle_until"), "settle_until"),
            version=version,
        )


def _ts(value: datetime | None) -> str | None:
    return None if value is None else format_ts(value)


def _parse(value: str | None, name: str) -> datetime | None:
    return None if value is None else parse_ts(value, name)


class StaleState(FanwatchError, RuntimeError):
    """Another detector saved this fan's state since we read it; the batch must be retried."""


class FanStateStore:
    """Fan states in a DynamoDB table keyed by ``pk`` (``thing/fan``), saved with optimistic locking."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def get(self, key: str) -> FanState:
        response = self._db.get_item(TableName=self._table, Key={"pk": {"S": key}}, ConsistentRead=True)
        item = response.get("Item")
        if item is None:
            return FanState()
        return FanState.from_json(item["state"]["S"], int(item["version"]["N"]))

    def put(self, key: str, state: FanState) -> None:
        """Save ``state`` if nobody saved since it was read; bumps ``state.version``."""
        condition = "attribute_not_exists(pk)" if state.version == 0 else "version = :seen"
        values = {} if state.version == 0 else {":seen": {"N": str(state.version)}}
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": key},
                    "version": {"N": str(state.version + 1)},
                    "state": {"S": state.to_json()},
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            raise StaleState(f"{key}: saved by another detector since version {state.version}") from None
        state.version += 1
