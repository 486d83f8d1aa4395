"""The stack's Athena named queries and ``fanwatch lake query`` on a small lake the stand-in wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fanwatch.cli import main
from fanwatch.cloud.events import Anomaly, encode_anomaly
from fanwatch.standin import EmbeddedAws

TODAY = datetime.now(UTC).replace(microsecond=0)


def _dated(payload: bytes, when: datetime, seq: int) -> bytes:
    """A shared event moved to ``when`` (its day), with sequence number ``seq``."""
    message = json.loads(payload.decode().replace("2026-11-27", when.date().isoformat()))
    message["seq"] = seq
    return json.dumps(message).encode()


@pytest.fixture
def lake_aws(start_aws: Callable[..., EmbeddedAws], events_dir: Path) -> EmbeddedAws:
    """Two days of one fan: telemetry (each message twice: a redelivery), a stall and an RCF anomaly."""
    aws = start_aws()
    assert aws.rules is not None and aws.names is not None
    telemetry = (events_dir / "mqtt" / "telemetry.json").read_bytes()
    alert = (events_dir / "mqtt" / "alert_stall.json").read_bytes()
    for day, when in enumerate((TODAY - timedelta(days=1), TODAY)):
        payload = _dated(telemetry, when, seq=day)
        aws.rules.ingest("fanwatch/pi-lab-01/telemetry", payload)
        aws.rules.ingest("fanwatch/pi-lab-01/telemetry", payload)  # at least once: counted once
    aws.rules.ingest("fanwatch/pi-lab-01/alerts", _dated(alert, TODAY, seq=9))
    anomaly = Anomaly("pi-lab-01", "fan0", "rcf", "warning", TODAY, TODAY, 1200.0, score=3.1, threshold=1.8)
    aws.client("kinesis").put_record(
        StreamName=aws.names.anomaly_stream, Data=encode_anomaly(anomaly), PartitionKey="pi-lab-01"
    )
    assert aws.wait_idle(60)
    aws.flush_lake()
    return aws


def test_each_named_query_of_the_stack_runs_on_the_local_lake(lake_aws: EmbeddedAws) -> None:
    assert lake_aws.model is not None
    queries = {q.name: q.sql for q in lake_aws.model.queries}
    assert set(queries) == {"fans-by-anomaly-count", "rpm-history-of-one-fan", "fleet-health-per-day"}
    lake = lake_aws.lake()
    assert lake.rows == {"readings": 20, "events": 2}

    by_fan = lake.query(queries["fans-by-anomaly-count"]).records()
    assert [
        (r["thing"], r["fan"], r["events"], r["detector_anomalies"], r["edge_alerts"]) for r in by_fan
    ] == [("pi-lab-01", "fan0", 2, 1, 1)]
    first, last = (TODAY - timedelta(days=1)).date().isoformat(), TODAY.date().isoformat()
    history = lake.query(queries["rpm-history-of-one-fan"], ["pi-lab-01", "fan0", first, last]).records()
    assert len(history) == 10  # two messages of five readings, the redeliveries counted once
    assert [h["seq"] for h in history] == [0] * 5 + [1] * 5
    days = lake.query(queries["fleet-health-per-day"]).records()
    assert [
        (d["dt"], d["devices"], d["fans"], d["readings"], d["anomalies"], d["edge_alerts"]) for d in days
    ] == [
        (last, 1, 1, 5, 1, 1),
        (first, 1, 1, 5, 0, 0),
    ]
    assert days[0]["median_rpm"] == pytest.approx(1504.0)


def test_lake_query_reads_the_mirrored_folder_after_the_stand_in_is_gone(
    lake_aws: EmbeddedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake_aws.close()
    assert (
        main(["lake", "query", "--lake", str(tmp_path / "lake"), "SELECT count(*) AS n FROM readings"]) == 0
    )
    assert capsys.readouterr().out.split() == ["n", "--", "20", "(1", "row)"]
    assert main(["lake", "query", "--lake", str(tmp_path / "lake"), "--named", "fans-by-anomaly-count"]) == 0
    assert "pi-lab-01" in capsys.readouterr().out
    assert main(["lake", "query", "--lake", str(tmp_path / "lake"), "SELECT nonsense FROM readings"]) == 1
    assert "nonsense" in capsys.readouterr().err
