"""Cloud events (anomalies beside edge alerts) and the words a notification uses."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fanwatch.cloud.events import Anomaly, encode_anomaly, event_row, parse_event, severity_of
from fanwatch.cloud.wording import Suppressed, describe, subject, summary
from fanwatch.telemetry import Alert, ContractError

T = datetime(2026, 11, 27, 19, 35, 41, tzinfo=UTC)


def _anomaly(**overrides: Any) -> Anomaly:
    fields: dict[str, Any] = dict(
        thing="pi-lab-01",
        fan="fan0",
        kind="rcf",
        severity="critical",
        ts=T,
        since=T - timedelta(seconds=75),
        rpm=412.0,
        score=4.12,
        threshold=1.8,
        typical_rpm=1504.0,
        boot="b1",
        seq=8,
    )
    return Anomaly(**{**fields, **overrides})


def _alert(state: str = "raised", **overrides: Any) -> Alert:
    fields: dict[str, Any] = dict(
        thing="pi-lab-01",
        fan="fan0",
        boot="b1",
        seq=7,
        kind="stall",
        state=state,
        ts=T,
        rpm=0.0,
        since=T - timedelta(seconds=3),
        detail="no tach pulse for 3.0 s",
    )
    return Alert(**{**fields, **overrides})


def test_an_anomaly_survives_the_wire() -> None:
    anomaly = _anomaly()
    assert parse_event(encode_anomaly(anomaly), thing="pi-lab-01") == anomaly


def test_events_from_the_shared_file_parse_and_the_bad_ones_say_why(load_event: Callable[[str], Any]) -> None:
    records = load_event("kinesis/anomalies_mixed.json")["Records"]
    payloads = [base64.b64decode(r["kinesis"]["data"]) for r in records]
    parsed = [parse_event(p, thing="pi-lab-01") for p in payloads[:3]]
    assert [type(e).__name__ for e in parsed] == ["Anomaly", "Alert", "Alert"]
    with pytest.raises(ContractError, match=r"^\$: not valid JSON"):
        parse_event(payloads[3])
    with pytest.raises(ContractError, match=r"^kind: unknown alert kind 'meltdown'"):
        parse_event(payloads[4])


def test_an_event_from_another_thing_than_its_partition_key_is_refused() -> None:
    with pytest.raises(ContractError, match=r"^thing:"):
        parse_event(encode_anomaly(_anomaly()), thing="pi-lab-09")


@pytest.mark.parametrize(
    ("event", "severity"),
    [
        (_alert(), "critical"),
        (_alert(kind="over_speed"), "warning"),
        (_alert("cleared"), "info"),
        (_anomaly(kind="gap", severity="info"), "info"),
    ],
)
def test_severity(event: Any, severity: str) -> None:
    assert severity_of(event) == severity


def test_a_stall_reads_like_a_person_wrote_it() -> None:
    text = describe(_alert())
    assert text == (
        "Fan fan0 on pi-lab-01 has stalled: 0 RPM at 2026-11-27 19:35:41 UTC, since "
        "2026-11-27 19:35:38 UTC (3 s). The device says: no tach pulse for 3.0 s"
    )
    assert subject(_alert()) == "[critical] fanwatch: fan0 on pi-lab-01: stall raised"


def test_an_anomaly_says_what_was_seen_since_when_and_the_usual_speed() -> None:
    text = describe(_anomaly())
    for part in (
        "Fan fan0 on pi-lab-01",
        "412 RPM",
        "about 1,504 RPM",
        "since 2026-11-27 19:34:26 UTC",
        "(75 s)",
        "scored it 4.12",
        "threshold of 1.80",
    ):
        assert part in text


def test_a_clearance_and_a_gap_are_told_plainly() -> None:
    cleared = describe(_alert("cleared", rpm=1490.0, since=T - timedelta(minutes=4)))
    assert (
        cleared.startswith("Fan fan0 on pi-lab-01 is turning again: 1,490 RPM") and "after 4 min" in cleared
    )
    gap = describe(_anomaly(kind="gap", severity="info", missing=12))
    assert "12 telemetry message(s) never arrived" in gap


def test_the_summary_counts_what_the_cooldown_held_back() -> None:
    held = Suppressed(count=37, first=T, last=T + timedelta(minutes=14), last_rpm=0.0)
    text = summary(_alert(), held, 900)
    assert text.startswith("37 more notification(s) like this for fan fan0 on pi-lab-01")
    assert "at most one is sent every 15 min" in text and "read 0 RPM" in text


def test_subjects_fit_sns() -> None:
    assert len(subject(_anomaly(thing="t" * 128, fan="f" * 64))) == 100


def test_event_rows_fill_every_event_column() -> None:
    from fanwatch.cloud.events import EVENT_COLUMNS

    names = {c.name for c in EVENT_COLUMNS}
    assert set(event_row(_anomaly())) == names == set(event_row(_alert()))
    assert event_row(_alert())["source"] == "edge" and event_row(_anomaly())["score"] == 4.12
