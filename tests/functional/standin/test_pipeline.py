"""Device messages through the embedded AWS stand-in: broker -> rule -> Kinesis -> the real detector
and notifier -> SNS -> the inbox, and Firehose -> Parquet -> the lake, with faults on the way."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from fanwatch.cloud.lake import LakeLayout
from fanwatch.core.mqtt import AmqttBroker
from fanwatch.standin import EmbeddedAws
from fanwatch.standin.aws import DETECTOR
from fanwatch.telemetry import parse_telemetry

THING = "pi-lab-01"


def _message(events_dir: Path, name: str) -> bytes:
    return (events_dir / "mqtt" / name).read_bytes()


def _telemetry(events_dir: Path, seq: int) -> bytes:
    """The shared telemetry event with another sequence number (and readings a minute later each)."""
    message = json.loads(_message(events_dir, "telemetry.json"))
    message["seq"] = seq
    for reading in message["readings"]:
        reading["ts"] = reading["ts"].replace("19:35:", f"19:{35 + seq:02d}:")
    message["sent"] = message["sent"].replace("19:35:", f"19:{35 + seq:02d}:")
    return json.dumps(message).encode()


def _publish(broker: AmqttBroker, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=THING)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_reading_and_an_alert_go_from_the_broker_to_the_lake_once_and_to_the_inbox(
    start_aws: Callable[..., EmbeddedAws], tmp_path: Path, events_dir: Path
) -> None:
    with AmqttBroker(tmp_path / "broker") as broker:
        aws = start_aws(broker=broker.observer_endpoint())
        _publish(
            broker,
            [
                (f"fanwatch/{THING}/telemetry", _message(events_dir, "telemetry.json")),
                (f"fanwatch/{THING}/alerts", _message(events_dir, "alert_stall.json")),
            ],
        )
        assert aws.wait_idle(60)
        aws.flush_lake()
    assert aws.rules is not None and aws.inbox is not None
    assert dict(aws.rules.stats.fired) == {"fanwatch_telemetry": 1, "fanwatch_alerts": 1}
    (note,) = aws.inbox.receive()
    assert (note.thing, note.fan, note.kind, note.state, note.severity, note.source) == (
        THING,
        "fan0",
        "stall",
        "raised",
        "critical",
        "edge",
    )
    assert "stalled" in note.message and "pi-lab-01" in note.message
    lake = aws.lake()
    sent = parse_telemetry(json.loads(_message(events_dir, "telemetry.json")))
    rows = lake.query("SELECT thing, fan, boot, seq, rpm FROM readings ORDER BY ts").rows
    assert rows == [(THING, "fan0", sent.boot, sent.seq, r.rpm) for r in sent.readings]
    assert lake.query("SELECT kind, state, dt FROM events").rows == [("stall", "raised", "2026-11-27")]
    assert aws.dead_letters() == []
    mirrored = sorted(
        p.relative_to(tmp_path / "lake").parts[:3] for p in (tmp_path / "lake").rglob("*.parquet")
    )
    assert mirrored == [
        ("events", "dt=2026-11-27", f"thing={THING}"),
        ("readings", "dt=2026-11-27", f"thing={THING}"),
    ]


def test_the_stack_s_lake_laid_out_by_day_holds_the_same_rows_in_one_object_per_table(
    start_aws: Callable[..., EmbeddedAws], tmp_path: Path, events_dir: Path
) -> None:
    with AmqttBroker(tmp_path / "broker") as broker:
        aws = start_aws(broker=broker.observer_endpoint(), parameters={"LakeLayout": LakeLayout.DAY.value})
        first_day = aws.clock.utc().date()
        other = _message(events_dir, "telemetry.json").replace(THING.encode(), b"pi-lab-02")
        _publish(
            broker,
            [
                (f"fanwatch/{THING}/telemetry", _message(events_dir, "telemetry.json")),
                ("fanwatch/pi-lab-02/telemetry", other),
                (f"fanwatch/{THING}/alerts", _message(events_dir, "alert_stall.json")),
            ],
        )
        assert aws.wait_idle(60)
        aws.flush_lake()
    lake = aws.lake()
    assert lake.query("SELECT thing, count(*) FROM readings GROUP BY thing ORDER BY thing").rows == [
        (THING, 5),
        ("pi-lab-02", 5),
    ]
    assert lake.query("SELECT thing, kind FROM events").rows == [(THING, "stall")]
    folders = sorted(p.parent.relative_to(tmp_path / "lake") for p in (tmp_path / "lake").rglob("*.parquet"))
    assert [f.parts[0] for f in folders] == ["events", "readings"]  # one object each: no thing= folders
    days = {date.fromisoformat(f.parts[1].removeprefix("dt=")) for f in folders}
    assert len(folders[0].parts) == 2 and all(first_day <= d <= aws.clock.utc().date() for d in days)


def test_an_action_that_fails_runs_the_error_action_with_the_original_payload(
    start_aws: Callable[..., EmbeddedAws], events_dir: Path
) -> None:
    aws = start_aws()
    assert aws.rules is not None and aws.names is not None
    aws.faults.refuse("kinesis", "PutRecord", code="ResourceNotFoundException", times=100)
    payload = _message(events_dir, "telemetry.json")
    (outcome,) = aws.rules.ingest(f"fanwatch/{THING}/telemetry", payload)
    aws.faults.clear()
    assert outcome.fired and outcome.failures and outcome.error_action_failed is None
    s3 = aws.client("s3")
    (key,) = [
        o["Key"] for o in s3.list_objects_v2(Bucket=aws.names.lake_bucket, Prefix="errors/iot/")["Contents"]
    ]
    assert key.startswith(f"errors/iot/telemetry/{THING}/") and key.endswith(".json")
    error = json.loads(s3.get_object(Bucket=aws.names.lake_bucket, Key=key)["Body"].read())
    assert error["ruleName"] == "fanwatch_telemetry" and error["topic"] == f"fanwatch/{THING}/telemetry"
    assert base64.b64decode(error["base64OriginalPayload"]) == payload
    assert error["failures"][0]["failedAction"] == "KinesisAction"
    assert error["failures"][0]["failedResource"] == aws.names.telemetry_stream


def test_a_handler_that_raises_on_one_record_bisects_and_dead_letters_only_that_record(
    start_aws: Callable[..., EmbeddedAws], events_dir: Path
) -> None:
    poison_seq = 3
    processed: list[int] = []

    def detector(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        seqs = [json.loads(base64.b64decode(r["kinesis"]["data"]))["seq"] for r in event["Records"]]
        if poison_seq in seqs:
            raise RuntimeError(f"cannot handle seq {poison_seq}")
        processed.extend(seqs)
        return {"batchItemFailures": []}

    aws = start_aws(handlers={DETECTOR: detector}, parameters={"DetectorMaxRetries": 1})
    assert aws.rules is not None
    for seq in range(8):
        aws.rules.ingest(f"fanwatch/{THING}/telemetry", _telemetry(events_dir, seq))
    assert aws.wait_idle(60)
    assert processed == [s for s in range(8) if s != poison_seq]  # each once, in order
    (letter,) = aws.dead_letters()
    info = letter["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == info["endSequenceNumber"]
    assert letter["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert letter["requestContext"]["approximateInvokeCount"] == 2  # the first try and one retry
    record = aws.client("kinesis").get_records(
        ShardIterator=aws.client("kinesis").get_shard_iterator(
            StreamName=aws.names.telemetry_stream if aws.names else "",
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"],
        Limit=1,
    )["Records"][0]
    assert json.loads(record["Data"])["seq"] == poison_seq
    stats = aws.mappings[DETECTOR].stats
    assert stats.bisections >= 1 and stats.dead_lettered_records == 1


def test_an_aws_that_throttles_refuses_and_is_slow_for_a_while_loses_and_repeats_nothing(
    start_aws: Callable[..., EmbeddedAws], events_dir: Path
) -> None:
    aws = start_aws()
    assert aws.rules is not None
    # Counted, not timed: on a loaded machine a window of seconds may pass before anyone asks.
    aws.faults.refuse("kinesis", "GetRecords", times=6)  # both consumers throttled, a few rounds each
    aws.faults.delay("dynamodb", 0.3)  # the detector's fan state slow, until cleared
    for seq in range(5):
        aws.rules.ingest(f"fanwatch/{THING}/telemetry", _telemetry(events_dir, seq))
    assert aws.wait_idle(60)
    assert aws.faults.refused == 6  # the consumers were really turned away
    assert aws.faults.delayed > 0
    aws.faults.clear()
    aws.faults.refuse("s3", "PUT", times=3)  # SlowDown, more often than the SDK retries
    refused = aws.faults.refused
    aws.flush_lake()
    assert aws.faults.refused > refused and aws.deliveries["fanwatch-readings"].stats.write_refusals > 0
    lake = aws.lake()
    assert lake.query("SELECT count(*), count(DISTINCT (seq, ts)) FROM readings").rows == [(25, 25)]
    assert sorted(r[0] for r in lake.query("SELECT DISTINCT seq FROM readings").rows) == list(range(5))
    assert aws.mappings[DETECTOR].stats.records == 5
    assert aws.dead_letters() == []


def test_a_second_stand_in_in_the_same_process_is_refused(start_aws: Callable[..., EmbeddedAws]) -> None:
    start_aws()
    with pytest.raises(RuntimeError, match="already runs"):
        start_aws()
