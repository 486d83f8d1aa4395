"""The lake's Firehose transformation, fed the shared Firehose events."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from fanwatch.cloud.events import EVENT_COLUMNS
from fanwatch.cloud.lake import glue_columns, transform
from fanwatch.telemetry import LAKE_COLUMNS


def _rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    text = base64.b64decode(record["data"]).decode()
    return [json.loads(line) for line in text.splitlines()]


def test_telemetry_becomes_one_row_per_reading_partitioned_by_date_and_thing(
    load_event: Callable[[str], Any],
) -> None:
    event = load_event("firehose/telemetry_transform.json")
    out = transform(event)["records"]
    assert [r["recordId"] for r in out] == [r["recordId"] for r in event["records"]]
    results = [r["result"] for r in out]
    # messages 0-5 are valid (duplicates and late ones too: the lake keeps what the device sent)
    assert results == ["Ok"] * 6 + ["ProcessingFailed"] * 5
    first = _rows(out[0])
    assert len(first) == 5 and list(first[0]) == [c.name for c in LAKE_COLUMNS]
    assert first[0]["ts"] == "2026-11-27T19:35:01.000Z" and first[0]["thing"] == "pi-lab-01"
    assert out[0]["metadata"]["partitionKeys"] == {"dt": "2026-11-27", "thing": "pi-lab-01"}
    legacy = _rows(out[5])
    assert (
        legacy[0]["schema"] == "legacy/0" and legacy[0]["boot"] is None and legacy[0]["thing"] == "pi-lab-02"
    )


def test_failed_records_go_back_unchanged_for_the_error_prefix(load_event: Callable[[str], Any]) -> None:
    event = load_event("firehose/telemetry_transform.json")
    out = transform(event)["records"]
    for sent, got in zip(event["records"], out, strict=True):
        if got["result"] == "ProcessingFailed":
            assert got["data"] == sent["data"] and "metadata" not in got


def test_events_become_event_rows(load_event: Callable[[str], Any]) -> None:
    out = transform(load_event("firehose/events_transform.json"))["records"]
    assert [r["result"] for r in out] == ["Ok", "Ok", "Ok", "ProcessingFailed", "ProcessingFailed"]
    rows = [_rows(r)[0] for r in out[:3]]
    assert [(r["source"], r["kind"], r["state"]) for r in rows] == [
        ("cloud", "rcf", "raised"),
        ("edge", "stall", "raised"),
        ("edge", "stall", "cleared"),
    ]
    assert list(rows[0]) == [c.name for c in EVENT_COLUMNS]


def test_glue_columns_are_generated_from_the_contract() -> None:
    columns = glue_columns(LAKE_COLUMNS)
    assert [c["Name"] for c in columns] == [c.name for c in LAKE_COLUMNS]
    assert {"Name": "flags", "Type": "array<string>", "Comment": "quality flags"} in columns


def test_a_poison_record_alone_is_left_to_the_error_prefix(
    load_event: Callable[[str], Any],
) -> None:
    """Issue 14: one poison record once failed the whole Firehose invocation."""
    template = load_event("firehose/telemetry_transform.json")["records"][0]
    poison = [c for c in load_event("mqtt/poison.json") if c["kind"] != "status"]
    records = []
    for i, case in enumerate(poison):
        for tag, data in (("good", base64.b64decode(template["data"])), ("poison", case["payload"].encode())):
            record = json.loads(json.dumps(template))
            record["recordId"] = f"{tag}-{i}"
            record["data"] = base64.b64encode(data).decode()
            record["kinesisRecordMetadata"]["partitionKey"] = "pi-lab-01" if tag == "good" else "pi-1"
            records.append(record)
    out = transform({**load_event("firehose/telemetry_transform.json"), "records": records})["records"]
    assert [(r["recordId"], r["result"]) for r in out] == [
        (r["recordId"], "Ok" if r["recordId"].startswith("good") else "ProcessingFailed") for r in records
    ]
