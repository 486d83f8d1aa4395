"""``fanwatch detector backfill``: a fan's forest and threshold warmed from the Parquet lake in S3 (moto),
then the real detector scoring that fan's next readings at once."""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fanwatch.cli import main
from fanwatch.cloud.detector import Detector
from fanwatch.cloud.events import parse_event
from fanwatch.cloud.shapes import kinesis_event, kinesis_record
from fanwatch.rcf import RandomCutForest
from fanwatch.telemetry import LAKE_COLUMNS, Reading, Telemetry, encode, lake_rows

LAKE = "fanwatch-lake"
T0 = datetime(2026, 11, 26, 23, 50, tzinfo=UTC)  # the history spans midnight: two dt= partitions
ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/fanwatch-telemetry"
_ARROW = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "timestamp": pa.timestamp("ms"),
    "array<string>": pa.list_(pa.string()),
}


@pytest.fixture
def lake(aws: Any, forest_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The lake bucket, and the environment the command runs in (the detector's forest shape)."""
    region = aws.client("s3").meta.region_name
    aws.client("s3").create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": region})
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "RCF_TREES": str(forest_options["num_trees"]),
        "RCF_SAMPLE_SIZE": str(forest_options["sample_size"]),
        "RCF_SHINGLE_SIZE": str(forest_options["shingle_size"]),
    }.items():
        monkeypatch.setenv(name, value)
    return aws


def _speed(t: int) -> float:
    return 1500 + 25 * math.sin(t / 40) + 6 * math.sin(t * 2.7) + 4 * math.cos(t * 1.3)


def _messages(
    seconds: range, *, thing: str = "pi-lab-01", target: float | None = None, per: int = 10
) -> list[Telemetry]:
    out = []
    for first in range(seconds.start, seconds.stop, per):
        readings = tuple(
            Reading(
                ts=T0 + timedelta(seconds=t + 1),
                rpm=0.0 if _speed(t) < 0 else _speed(t) * (1 if target is None else target / 1500),
                hz=50.0,
                pulses=50,
                window_s=1.0,
                target_rpm=target,
            )
            for t in range(first, min(first + per, seconds.stop))
        )
        out.append(
            Telemetry(
                thing=thing, fan="fan0", boot="b1", seq=first // per, sent=readings[-1].ts, readings=readings
            )
        )
    return out


def _write_lake(s3: Any, messages: list[Telemetry], *, name: str = "part-0", by_thing: bool = True) -> None:
    """The messages' rows as Firehose writes them: Parquet under dt=<day>/thing=<thing>/ (the stack's
    LakeLayout day+thing) or, ``by_thing`` False, every thing of a day in one object under dt=<day>/."""
    schema = pa.schema([(c.name, _ARROW[c.type]) for c in LAKE_COLUMNS])
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for message in messages:
        for row in lake_rows(message):
            naive = {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in row.items()}
            groups.setdefault((row["ts"].date().isoformat(), message.thing if by_thing else ""), []).append(
                naive
            )
    for (day, thing), rows in groups.items():
        body = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), body)
        folder = f"readings/dt={day}/" + (f"thing={thing}/" if thing else "")
        s3.put_object(Bucket=LAKE, Key=f"{folder}{name}.parquet", Body=body.getvalue())


def _backfill(aws: Any, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(
        [
            "detector",
            "backfill",
            "--lake-bucket",
            LAKE,
            "--model-bucket",
            aws.model_bucket,
            "--state-table",
            aws.fan_state_table,
            "--until",
            "2026-11-27",
            "--days",
            "2",
            "--endpoint-url",
            aws.endpoint,
            *extra,
        ]
    )
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _live(messages: list[Telemetry]) -> dict[str, Any]:
    return kinesis_event(
        kinesis_record(
            encode(m),
            partition_key=m.thing,
            sequence_number=f"{m.seq:056d}",
            arrival=m.sent.timestamp(),
            stream_arn=ARN,
        )
        for m in messages
    )


def test_a_fan_warmed_from_the_lake_scores_its_next_reading_and_catches_a_stall_at_once(
    lake: Any, make_detector: Callable[..., Detector], capsys: pytest.CaptureFixture[str]
) -> None:
    history = _messages(range(0, 600))
    _write_lake(lake.client("s3"), history)
    code, out = _backfill(lake, capsys)
    assert code == 0, out
    assert "2 object(s), 600 row(s)" in out
    assert (
        "pi-lab-01/fan0: 600 readings 2026-11-26 23:50 .. 2026-11-27 00:00 UTC: warmed, forest ready" in out
    )
    stored = lake.client("s3").get_object(Bucket=lake.model_bucket, Key="models/pi-lab-01/fan0.rcf")
    assert RandomCutForest.from_bytes(stored["Body"].read()).seen == 600  # each reading learned once

    live = _messages(range(600, 660))
    stalled = [
        Telemetry(
            thing=m.thing,
            fan=m.fan,
            boot=m.boot,
            seq=m.seq,
            sent=m.sent,
            readings=tuple(
                Reading(r.ts, 0.0, 0.0, 0, 2.0, flags=frozenset({"stalled"})) if i >= 5 else r
                for i, r in enumerate(m.readings)
            ),
        )
        if m.seq == 62
        else m
        for m in live
    ]
    detector = make_detector()
    assert detector.handle(_live(stalled)) == {"batchItemFailures": []}
    assert detector.last_counts["warming_up"] == 0  # no output_after to wait for
    assert detector.last_counts["readings"] == 60 and detector.last_counts["duplicates"] == 0
    records = lake.stream_events(lake.anomaly_stream)["Records"]
    found = [parse_event(base64.b64decode(r["kinesis"]["data"])) for r in records]
    first = found[0]  # then its recovery, in 63
    assert (first.kind, first.seq, first.rpm) == ("rcf", 62, 0.0)
    assert first.typical_rpm == pytest.approx(1500, abs=40)  # learned from the lake too


def test_history_already_in_the_forest_is_not_fed_again_and_a_live_fan_is_left_alone(
    lake: Any, make_detector: Callable[..., Detector], capsys: pytest.CaptureFixture[str]
) -> None:
    history = _messages(range(0, 300))
    make_detector(checkpoint_seconds=0).handle(_live(history[:20]))  # the detector saw the first 200 s
    _write_lake(lake.client("s3"), history)
    code, out = _backfill(lake, capsys)
    assert code == 0 and "pi-lab-01/fan0: 300 readings" in out and ": skipped: scored live" in out
    code, out = _backfill(lake, capsys, "--replace")
    assert code == 0 and ": warmed" in out
    state = lake.client("dynamodb").get_item(
        TableName=lake.fan_state_table, Key={"pk": {"S": "pi-lab-01/fan0"}}
    )
    saved = json.loads(state["Item"]["state"]["S"])
    assert saved["sequence"]["next_seq"] == 20  # the live numbering stays the detector's
    assert saved["last_scored"] == "2026-11-26T23:55:00.000Z"  # the lake's last reading
    detector = make_detector()
    detector.handle(_live(_messages(range(0, 310))[20:]))  # the live stream goes on from seq 20
    assert detector.last_counts["readings"] == 10 and detector.last_counts["forest_reloads"] == 0
    assert detector.last_counts["readings_old"] == 100  # in the lake and learned there: not again


def test_bad_objects_and_rows_are_skipped_and_counted_and_redelivered_rows_learned_once(
    lake: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = lake.client("s3")
    history = _messages(range(0, 200))
    _write_lake(s3, history)
    _write_lake(s3, history[:5], name="part-1")  # Firehose delivered a batch twice
    s3.put_object(Bucket=LAKE, Key="readings/dt=2026-11-27/thing=pi-lab-01/broken.parquet", Body=b"PAR1 torn")
    bad = _messages(range(200, 210))[0]
    negative = Telemetry(
        thing=bad.thing,
        fan=bad.fan,
        boot=bad.boot,
        seq=bad.seq,
        sent=bad.sent,
        readings=(bad.readings[0],),
    )
    rows = lake_rows(negative)
    rows[0]["rpm"] = -5.0
    schema = pa.schema([(c.name, _ARROW[c.type]) for c in LAKE_COLUMNS])
    body = io.BytesIO()
    naive = [
        {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in r.items()} for r in rows
    ]
    pq.write_table(pa.Table.from_pylist(naive, schema=schema), body)
    s3.put_object(Bucket=LAKE, Key="readings/dt=2026-11-27/thing=pi-lab-01/odd.parquet", Body=body.getvalue())
    code, out = _backfill(lake, capsys)
    assert code == 0, out
    assert "skipped 1 unreadable object(s), 1 bad row(s), 50 duplicate(s)" in out
    assert "pi-lab-01/fan0: 200 readings" in out and "warmed" in out
    assert "broken.parquet" in out and "rpm -5.0 is not a speed" in out  # logged with the reason


def test_a_lake_laid_out_by_day_alone_warms_only_the_things_asked_for(
    lake: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = lake.client("s3")
    _write_lake(s3, _messages(range(0, 200)) + _messages(range(0, 120), thing="pi-lab-02"), by_thing=False)
    assert all("thing=" not in o["Key"] for o in s3.list_objects_v2(Bucket=LAKE)["Contents"])
    code, out = _backfill(lake, capsys, "--thing", "pi-lab-02")
    assert code == 0, out
    assert "pi-lab-02/fan0: 120 readings" in out and "warmed" in out
    assert "pi-lab-01" not in out  # its rows share the objects, and are read past
    code, out = _backfill(lake, capsys)
    assert code == 0, out
    assert "pi-lab-01/fan0: 200 readings" in out


def test_a_speed_controlled_fans_history_warms_its_own_forest(
    lake: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_lake(lake.client("s3"), _messages(range(0, 300), target=2000.0))
    code, out = _backfill(lake, capsys)
    assert code == 0 and "warmed, forest ready" in out
    keys = [o["Key"] for o in lake.client("s3").list_objects_v2(Bucket=lake.model_bucket)["Contents"]]
    assert keys == ["models/pi-lab-01/fan0+target.rcf"]


def test_wrong_or_missing_names_are_refused_with_what_to_give(
    lake: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LAKE_BUCKET", "MODEL_BUCKET", "FAN_STATE_TABLE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["detector", "backfill", "--lake-bucket", LAKE]) == 2
    assert "give --model-bucket, --state-table (the stack's outputs)" in capsys.readouterr().err
    code, out = _backfill(lake, capsys, "--lake-bucket", "no-such-lake")
    assert code == 1 and "no bucket 'no-such-lake'" in out
