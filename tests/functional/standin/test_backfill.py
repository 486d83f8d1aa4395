"""``fanwatch detector backfill`` reads the lake exactly as the stand-in's Firehose writes it (Parquet
converted with the Glue schema, dynamic partitions ``dt=``/``thing=``) and warms the fan's forest."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fanwatch.cli import main
from fanwatch.rcf import RandomCutForest
from fanwatch.standin import EmbeddedAws
from fanwatch.standin.aws import DETECTOR
from fanwatch.telemetry import Reading, Telemetry, encode, topic_for

T0 = datetime(2026, 11, 26, 23, 55, tzinfo=UTC)  # across midnight: two dt= partitions


def _messages(seconds: int, per: int = 10) -> list[Telemetry]:
    out = []
    for first in range(0, seconds, per):
        readings = tuple(
            Reading(
                ts=T0 + timedelta(seconds=t + 1),
                rpm=1500 + 25 * math.sin(t / 40) + 6 * math.sin(t * 2.7),
                hz=50.0,
                pulses=50,
                window_s=1.0,
                flags=frozenset({"simulated"}),
                label="normal",
            )
            for t in range(first, first + per)
        )
        out.append(
            Telemetry(
                thing="pi-lab-07",
                fan="fan0",
                boot="b1",
                seq=first // per,
                sent=readings[-1].ts,
                readings=readings,
            )
        )
    return out


def test_backfill_warms_a_fan_from_the_lake_the_stand_ins_firehose_wrote(
    start_aws: Callable[..., EmbeddedAws], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Any] = []

    def not_live(event: dict[str, Any], _context: Any) -> dict[str, Any]:  # the detector is not deployed yet
        seen.extend(event["Records"])
        return {"batchItemFailures": []}

    aws = start_aws(handlers={DETECTOR: not_live})
    for message in _messages(600):
        aws.rules.ingest(topic_for("telemetry", message.thing), encode(message))
    assert aws.wait_idle(timeout=60)
    aws.flush_lake()
    assert len(seen) == 60  # the stream carried every message
    assert aws.names is not None
    (state_table,) = [t for t in aws.names.tables if "state" in t.lower()]
    for name, value in aws.endpoint.environment().items():
        monkeypatch.setenv(name, value)
    code = main(
        [
            "detector",
            "backfill",
            "--lake-bucket",
            aws.names.lake_bucket,
            "--model-bucket",
            aws.names.model_bucket,
            "--state-table",
            state_table,
            "--until",
            "2026-11-27",
            "--days",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "600 row(s)" in out
    assert (
        "pi-lab-07/fan0: 600 readings 2026-11-26 23:55 .. 2026-11-27 00:05 UTC: warmed, forest ready" in out
    )
    stored = aws.client("s3").get_object(Bucket=aws.names.model_bucket, Key="models/pi-lab-07/fan0.rcf")
    forest = RandomCutForest.from_bytes(stored["Body"].read())
    assert forest.seen == 600 and forest.num_trees == 100  # the detector's own shape, from its settings
