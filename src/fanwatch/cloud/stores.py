"""Where the detector keeps what it learned: forests in S3, per-fan bookkeeping in DynamoDB.

Both stores take boto3 clients, so the same code talks to AWS and to the embedded stand-in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fanwatch.cloud.grading import ScoreStats
from fanwatch.cloud.sequence import SequenceState
from fanwatch.telemetry import format_ts, parse_ts

__all__ = ["FanState", "FanStateStore", "S3ModelStore", "StaleState"]


class S3ModelStore:
    """A :class:`fanwatch.rcf.ModelStore` over one S3 prefix; skips writing a model that did not change.

    Objects are encrypted by the bucket's default KMS key; the bucket's lifecycle expires old versions.
    """

    def __init__(self, s3: Any, bucket: str, *, prefix: str = "models/") -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix
        self._digests: dict[str, bytes] = {}

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


@dataclass(slots=True)
class FanState:
    """Everything the detector remembers about one fan between invocations, besides its forest."""

    sequence: SequenceState = field(default_factory=SequenceState)
    stats: ScoreStats = field(default_factory=ScoreStats)
    last_scored: datetime | None = None  # readings at or before this are not fed to the forest again
    anomaly_since: datetime | None = None  # start of the current run of anomalous readings
    version: int = 0  # bumped on every save; another writer's bump means our copy is stale

    def to_json(self) -> str:
        return json.dumps(
            {
                "sequence": self.sequence.to_item(),
                "stats": self.stats.to_item(),
                "last_scored": None if self.last_scored is None else format_ts(self.last_scored),
                "anomaly_since": None if self.anomaly_since is None else format_ts(self.anomaly_since),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str, version: int) -> FanState:
        data = json.loads(text)
        last, since = data.get("last_scored"), data.get("anomaly_since")
        return cls(
            sequence=SequenceState.from_item(data["sequence"]),
            stats=ScoreStats.from_item(data["stats"]),
            last_scored=None if last is None else parse_ts(last, "last_scored"),
            anomaly_since=None if since is None else parse_ts(since, "anomaly_since"),
            version=version,
        )


class StaleState(RuntimeError):
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
