"""The lake's Firehose transformation: one stream message in, one lake row per reading (or event) out.

Firehose reads the telemetry and anomalies streams itself; this function flattens each message into
rows of :data:`fanwatch.telemetry.LAKE_COLUMNS` (readings) or :data:`fanwatch.cloud.events.EVENT_COLUMNS`
(anomalies and alerts), concatenated as JSON documents, which Firehose's record format conversion
turns into Parquet through the Glue tables generated from the same columns. The partition keys it
returns (``dt``, the message's UTC date, and ``thing``) drive Firehose's dynamic partitioning when the
stack lays the lake out by day and thing (:class:`LakeLayout`); laid out by day alone, Firehose names
the day from its own clock and ignores them.

A record that breaks the contract is returned as ``ProcessingFailed``: Firehose then writes it, as it
came, under the bucket's error prefix, so the lake loses nothing and keeps nothing malformed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from aws_lambda_powertools import Logger

from fanwatch.cloud.events import EVENT_COLUMNS, event_row, parse_event
from fanwatch.cloud.observability import Service
from fanwatch.telemetry import (
    LAKE_COLUMNS,
    ContractError,
    LakeColumn,
    format_ts,
    lake_rows,
    load_message,
    parse_telemetry,
)

__all__ = [
    "EVENTS_TABLE",
    "PARTITION_KEYS",
    "READINGS_TABLE",
    "LakeLayout",
    "delivery_prefix",
    "glue_columns",
    "lambda_handler",
    "transform",
    "transform_record",
]

logger = Logger(service=Service.LAKE)

#: Partition keys of both lake tables, in the order of the S3 prefix.
PARTITION_KEYS: Final = ("dt", "thing")
#: The lake's tables, each under its own prefix of the bucket: ``readings/dt=<day>/thing=<thing>/``.
READINGS_TABLE: Final = "readings"
EVENTS_TABLE: Final = "events"


class LakeLayout(StrEnum):
    """How Firehose lays out the lake's objects: the stack's ``LakeLayout`` parameter.

    Either way the Glue tables are partitioned by ``dt`` alone (projected, so no crawler) and
    ``thing`` is a column: queries read the same. What changes is the objects and their cost.
    """

    #: ``dt=<message's day>/thing=<thing>/``: a thing's data is one prefix (to export or erase it),
    #: at an object per thing per flush and dynamic partitioning's charge per GB.
    DAY_AND_THING = "day+thing"
    #: ``dt=<day Firehose received it>/``: an object per flush; a reading sent just before midnight
    #: and delivered after it lands in the next day's partition (filter on ``ts`` for exact windows).
    DAY = "day"


def delivery_prefix(table: str, layout: LakeLayout) -> str:
    """The S3 prefix of ``table``'s Firehose delivery under ``layout``."""
    if layout is LakeLayout.DAY_AND_THING:
        partitions = "/".join(f"{k}=!{{partitionKeyFromLambda:{k}}}" for k in PARTITION_KEYS)
    else:
        partitions = "dt=!{timestamp:yyyy-MM-dd}"
    return f"{table}/{partitions}/"


def glue_columns(columns: Iterable[LakeColumn]) -> list[dict[str, str]]:
    """Glue ``Column`` definitions (Name, Type, Comment) for a table of ``columns``."""
    return [{"Name": c.name, "Type": c.type, "Comment": c.comment} for c in columns]


def _json_value(value: Any) -> Any:
    return format_ts(value) if isinstance(value, datetime) else value


def _documents(rows: Iterable[Mapping[str, Any]], columns: tuple[LakeColumn, ...]) -> bytes:
    names = [c.name for c in columns]
    documents = ({n: _json_value(row.get(n)) for n in names} for row in rows)
    return b"".join(json.dumps(d, separators=(",", ":"), allow_nan=False).encode() + b"\n" for d in documents)


def transform_record(data: bytes, partition_key: str | None) -> tuple[bytes, dict[str, str]]:
    """Lake rows and partition keys for one stream message; :class:`ContractError` when it is bad."""
    head = load_message(data)
    schema = head.get("schema")
    if isinstance(schema, str) and not schema.startswith("fanwatch.telemetry/"):
        event = parse_event(head, thing=partition_key)
        return _documents([event_row(event)], EVENT_COLUMNS), {
            "dt": event.ts.date().isoformat(),
            "thing": event.thing,
        }
    message = parse_telemetry(head, thing=partition_key)
    return _documents(lake_rows(message), LAKE_COLUMNS), {
        "dt": message.sent.date().isoformat(),
        "thing": message.thing,
    }


def _decoded(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: characters outside ASCII
        raise ContractError("$", f"data is not valid base64 ({exc})") from None


def transform(event: Mapping[str, Any]) -> dict[str, Any]:
    """The Firehose data-transformation response for one invocation."""
    out = []
    failed = 0
    for record in event["records"]:
        partition_key = (record.get("kinesisRecordMetadata") or {}).get("partitionKey")
        try:
            rows, keys = transform_record(_decoded(record["data"]), partition_key)
        except ContractError as exc:
            failed += 1
            logger.warning(
                "record left to the error prefix", extra={"reason": str(exc), "record_id": record["recordId"]}
            )
            out.append({"recordId": record["recordId"], "result": "ProcessingFailed", "data": record["data"]})
            continue
        out.append(
            {
                "recordId": record["recordId"],
                "result": "Ok",
                "data": base64.b64encode(rows).decode(),
                "metadata": {"partitionKeys": keys},
            }
        )
    logger.info("transformed", extra={"records": len(out), "failed": failed})
    return {"records": out}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Firehose transformation's entry point (the stack's handler string names it): :func:`transform`."""
    return transform(event)
