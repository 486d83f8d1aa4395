"""The notifier against the embedded AWS stand-in: SNS with attributes for filter policies, the
DynamoDB cooldown that turns a storm into one message and a summary, and nothing lost on failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from fanwatch.cloud.notifier import Notifier
from fanwatch.cloud.shapes import kinesis_event, kinesis_record
from fanwatch.telemetry import Alert, encode

ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/fanwatch-anomalies"
T0 = datetime(2026, 11, 27, 19, 35, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


def _mixed(events_dir: Path) -> dict[str, Any]:
    return json.loads((events_dir / "kinesis" / "anomalies_mixed.json").read_text())


def _attributes(note: dict[str, Any]) -> dict[str, str]:
    return {k: v["Value"] for k, v in note["MessageAttributes"].items()}


def _stall(seq: int, *, at: datetime, rpm: float = 0.0) -> bytes:
    return encode(
        Alert(
            thing="pi-lab-01",
            fan="fan0",
            boot="b1",
            seq=seq,
            kind="stall",
            state="raised",
            ts=at,
            rpm=rpm,
            since=T0,
            detail="no tach pulse for 3.0 s",
        )
    )


def _event(payloads: list[bytes], first: int = 0) -> dict[str, Any]:
    return kinesis_event(
        kinesis_record(
            p,
            partition_key="pi-lab-01",
            sequence_number=f"{first + i:056d}",
            arrival=T0.timestamp() + i,
            stream_arn=ARN,
        )
        for i, p in enumerate(payloads)
    )


def test_events_become_notifications_with_attributes_that_filter_policies_select(
    aws: Any,
    make_notifier: Callable[..., Notifier],
    events_dir: Path,
) -> None:
    notifier = make_notifier(clock=Clock())
    assert notifier.handle(_mixed(events_dir)) == {"batchItemFailures": []}
    everything = aws.notifications("all")
    assert [n["Subject"] for n in everything] == [
        "[critical] fanwatch: fan0 on pi-lab-01: unusual speed pattern",
        "[critical] fanwatch: fan0 on pi-lab-01: stall raised",
        "[info] fanwatch: fan0 on pi-lab-01: stall cleared",
    ]
    assert _attributes(everything[1]) == {
        "thing": "pi-lab-01",
        "fan": "fan0",
        "severity": "critical",
        "kind": "stall",
        "state": "raised",
        "source": "edge",
    }
    assert everything[1]["Message"].startswith(
        "Fan fan0 on pi-lab-01 has stalled: 0 RPM at 2026-11-27 19:35:42"
    )
    assert [n["Subject"] for n in aws.notifications("critical")] == [n["Subject"] for n in everything[:2]]
    assert [_attributes(n)["state"] for n in aws.notifications("edge-stalls")] == ["raised", "cleared"]
    letters = aws.dead_letters()
    assert [letter["reason"].split(":")[0] for letter in letters] == ["$", "kind"]
    assert {letter["source"] for letter in letters} == {"notifier"}


def test_an_alert_storm_is_one_message_then_a_summary_from_the_sweep(
    aws: Any,
    make_notifier: Callable[..., Notifier],
) -> None:
    clock = Clock()
    notifier = make_notifier(clock=clock, cooldown_s=900)
    storm = [_stall(i, at=T0 + timedelta(seconds=20 * i), rpm=float(i % 2)) for i in range(30)]
    assert notifier.handle(_event(storm)) == {"batchItemFailures": []}
    assert (notifier.counts["notifications"], notifier.counts["held_back"]) == (1, 29)
    assert len(aws.notifications()) == 1
    clock.now += 600
    assert notifier.sweep() == 0  # still cooling down: nothing to summarize yet
    clock.now += 301
    assert notifier.sweep() == 1
    assert notifier.sweep() == 0  # a summary is sent once
    (summary,) = aws.notifications()
    assert summary["Subject"] == "[critical] fanwatch: fan0 on pi-lab-01: stall raised (summary)"
    assert summary["Message"] == (
        "29 more notification(s) like this for fan fan0 on pi-lab-01 were held back between "
        "2026-11-27 19:35:20 UTC and 2026-11-27 19:44:40 UTC (at most one is sent every 15 min); "
        "the last of them read 1 RPM."
    )
    assert _attributes(summary)["severity"] == "critical"


def test_the_first_event_after_the_cooldown_carries_the_summary_itself(
    aws: Any,
    make_notifier: Callable[..., Notifier],
) -> None:
    clock = Clock()
    notifier = make_notifier(clock=clock, cooldown_s=60)
    notifier.handle(_event([_stall(i, at=T0 + timedelta(seconds=i)) for i in range(5)]))
    clock.now += 61
    notifier.handle(_event([_stall(9, at=T0 + timedelta(seconds=70))], first=5))
    first, second = aws.notifications()
    assert "held back" not in first["Message"]
    assert "4 more notification(s) like this" in second["Message"]
    assert notifier.sweep() == 0


def test_a_notification_that_cannot_be_sent_is_retried_not_held_back(
    aws: Any,
    make_notifier: Callable[..., Notifier],
) -> None:
    clock = Clock()
    missing_topic = aws.topic_arn.replace("fanwatch-alerts", "deleted-topic")
    broken = make_notifier(clock=clock, topic_arn=missing_topic)
    event = _event([_stall(0, at=T0)])
    with pytest.raises(BatchProcessingError, match="All records failed"):
        broken.handle(event)  # the whole invocation fails, so Lambda retries the batch
    assert make_notifier(clock=clock).handle(event) == {"batchItemFailures": []}
    (note,) = aws.notifications()
    assert "held back" not in note["Message"]


def test_poison_events_are_dead_lettered_alone_while_the_rest_of_the_batch_is_notified(
    aws: Any, make_notifier: Callable[..., Notifier], events_dir: Path
) -> None:
    """Issue 14: a poison alert once came back as a batch item failure, retried for ever."""
    cases = json.loads((events_dir / "mqtt" / "poison.json").read_text())
    poison = [c for c in cases if c["kind"] in {"alert", "event"}]
    payloads: list[bytes] = []
    for i, case in enumerate(poison):
        payloads += [_stall(i, at=T0 + timedelta(seconds=i)), case["payload"].encode()]
    event = _event(payloads)
    for record in event["Records"][1::2]:  # the poison names pi-1
        record["kinesis"]["partitionKey"] = "pi-1"
    notifier = make_notifier(clock=Clock())
    assert notifier.handle(event) == {"batchItemFailures": []}
    assert (notifier.counts["notifications"], notifier.counts["held_back"]) == (1, len(poison) - 1)
    assert notifier.counts["dead_letters"] == len(poison)
    letters = aws.dead_letters()
    assert [letter["reason"].split(":")[0] for letter in letters] == [c["field"] for c in poison]
    assert {letter["source"] for letter in letters} == {"notifier"}
    assert len(aws.notifications()) == 1
