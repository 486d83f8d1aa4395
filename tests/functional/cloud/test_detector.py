"""The detector handler against the embedded AWS stand-in, fed Kinesis events in the Lambda shape."""

from __future__ import annotations

import base64
import json
import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fanwatch.cloud.detector import Detector, RetryLater
from fanwatch.cloud.events import parse_event
from fanwatch.cloud.shapes import kinesis_event, kinesis_record
from fanwatch.cloud.stores import S3ModelStore
from fanwatch.rcf import ForestManager, RandomCutForest
from fanwatch.telemetry import Reading, Telemetry, encode

ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/fanwatch-telemetry"
T0 = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)


def _mixed(events_dir: Path) -> dict[str, Any]:
    return json.loads((events_dir / "kinesis" / "telemetry_mixed.json").read_text())


def _failed(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def _anomalies(aws: Any) -> list[Any]:
    return [
        parse_event(base64.b64decode(r["kinesis"]["data"]))
        for r in aws.stream_events(aws.anomaly_stream)["Records"]
    ]


def test_a_mixed_batch_keeps_the_good_drops_duplicates_and_dead_letters_the_bad_with_reasons(
    aws: Any,
    make_detector: Callable[..., Detector],
    events_dir: Path,
) -> None:
    detector = make_detector()
    response = detector.handle(_mixed(events_dir))
    assert response == {"batchItemFailures": []}
    counts = detector.last_counts
    assert (
        counts["messages"],
        counts["duplicates"],
        counts["late"],
        counts["gaps"],
        counts["missing"],
        counts["legacy"],
        counts["dead_letters"],
    ) == (6, 1, 1, 1, 1, 1, 5)
    letters = aws.dead_letters()
    reasons = sorted(letter["reason"].split(":")[0] for letter in letters)
    assert reasons == ["$", "$", "readings[0].rpm", "schema", "thing"]
    assert any("not valid base64" in letter["reason"] for letter in letters)
    assert any("'pi-lab-01' but arrived from 'pi-lab-03'" in letter["reason"] for letter in letters)
    assert {letter["source"] for letter in letters} == {"detector"}
    original = {r["kinesis"]["sequenceNumber"]: r["kinesis"]["data"] for r in _mixed(events_dir)["Records"]}
    assert all(
        original[letter["sequenceNumber"]] == letter["data"] for letter in letters
    )  # replayable as sent
    gaps = [a for a in _anomalies(aws) if a.kind == "gap"]
    assert [(g.thing, g.fan, g.missing, g.seq, g.severity) for g in gaps] == [
        ("pi-lab-01", "fan0", 1, 3, "info")
    ]


def test_a_redelivered_batch_is_all_duplicates_even_in_a_new_container(
    aws: Any,
    make_detector: Callable[..., Detector],
    events_dir: Path,
) -> None:
    make_detector().handle(_mixed(events_dir))
    aws.dead_letters()
    again = make_detector()  # a cold container: state comes from DynamoDB only
    assert again.handle(_mixed(events_dir)) == {"batchItemFailures": []}
    assert again.last_counts["duplicates"] == 5  # every numbered message; the legacy one cannot be told
    assert again.last_counts["readings"] == 0  # nothing fed to the forests twice
    assert len(aws.dead_letters()) == 5  # poison is rejected again, never silently


def test_a_failure_a_retry_can_fix_fails_the_rest_of_the_batch_and_the_retry_processes_it_once(
    aws: Any,
    make_detector: Callable[..., Detector],
    events_dir: Path,
) -> None:
    event = _mixed(events_dir)
    broken = make_detector(anomaly_stream="no-such-stream")  # the gap anomaly of record 3 cannot be put
    response = broken.handle(event)
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert _failed(response) == sequence[3:]
    assert broken.last_counts["messages"] == 4  # 0, 1, the duplicate, and the failed 3
    # Lambda retries from the lowest failed sequence number
    retry = make_detector()
    assert retry.handle(kinesis_event(event["Records"][3:])) == {"batchItemFailures": []}
    assert (retry.last_counts["gaps"], retry.last_counts["late"], retry.last_counts["duplicates"]) == (
        1,
        1,
        0,
    )
    assert len([a for a in _anomalies(aws) if a.kind == "gap"]) == 1
    assert len(aws.dead_letters()) == 5


def test_when_the_dead_letter_queue_is_gone_bad_records_fail_instead_of_vanishing(
    aws: Any,
    make_detector: Callable[..., Detector],
    events_dir: Path,
) -> None:
    event = _mixed(events_dir)
    detector = make_detector(dlq_url=f"{aws.endpoint}/123456789012/no-such-queue")
    response = detector.handle(event)
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert _failed(response) == sequence[6:]  # the first bad record and everything after it


def _message(
    seq: int,
    rpms: list[float],
    *,
    boot: str = "b1",
    per: int = 10,
    targets: list[float | None] | None = None,
    fan: str = "fan0",
) -> bytes:
    start = T0 + timedelta(seconds=seq * per)
    readings = tuple(
        Reading(
            ts=start + timedelta(seconds=i + 1),
            rpm=rpm,
            hz=rpm / 30,
            pulses=int(rpm / 30),
            window_s=1.0,
            flags=frozenset({"stalled"}) if rpm == 0 else frozenset(),
            target_rpm=None if targets is None else targets[i],
        )
        for i, rpm in enumerate(rpms)
    )
    return encode(
        Telemetry(thing="pi-lab-01", fan=fan, boot=boot, seq=seq, sent=readings[-1].ts, readings=readings)
    )


def _fan(seconds: int, *, stall_at: int | None = None) -> list[float]:
    """A fan near 1,500 RPM with a slow wobble and sensor noise; 0 RPM from ``stall_at`` on."""
    return [
        0.0
        if stall_at is not None and t >= stall_at
        else 1500 + 25 * math.sin(t / 40) + 6 * math.sin(t * 2.7) + 4 * math.cos(t * 1.3)
        for t in range(seconds)
    ]


def _batch(messages: list[bytes], first_seq: int) -> dict[str, Any]:
    return kinesis_event(
        kinesis_record(
            m,
            partition_key="pi-lab-01",
            sequence_number=f"{first_seq + i:056d}",
            arrival=T0.timestamp() + i,
            stream_arn=ARN,
        )
        for i, m in enumerate(messages)
    )


@pytest.mark.slow
def test_a_stall_after_normal_running_becomes_one_critical_anomaly_that_says_when_it_began(
    aws: Any,
    make_detector: Callable[..., Detector],
) -> None:
    rpms = _fan(800, stall_at=760)
    messages = [_message(i, rpms[i * 10 : (i + 1) * 10]) for i in range(80)]
    detector = make_detector(checkpoint_seconds=0)
    for start in range(0, 80, 20):  # four invocations, as Lambda would batch them
        assert detector.handle(_batch(messages[start : start + 20], start)) == {"batchItemFailures": []}
    found = [a for a in _anomalies(aws) if a.kind == "rcf"]
    stall_start = T0 + timedelta(seconds=761)
    during = [a for a in found if a.ts >= stall_start]
    before = [a for a in found if a.ts < stall_start]
    assert during, "the stall was not flagged"
    assert during[0].severity == "critical" and during[0].rpm == 0.0
    assert during[0].since <= stall_start + timedelta(seconds=4)
    assert during[0].typical_rpm == pytest.approx(1500, abs=40)
    assert len(before) <= 2  # at most a couple of messages of false alarms in 12 minutes of normal running
    state = aws.client("dynamodb").get_item(
        TableName=aws.fan_state_table, Key={"pk": {"S": "pi-lab-01/fan0"}}
    )
    assert int(state["Item"]["version"]["N"]) == 4  # one save per invocation
    models = aws.client("s3").list_objects_v2(Bucket=aws.model_bucket)["Contents"]
    assert [m["Key"] for m in models] == ["models/pi-lab-01/fan0.rcf"]


def test_a_fan_processed_by_another_container_meanwhile_is_taken_from_the_stored_state(
    aws: Any,
    make_detector: Callable[..., Detector],
) -> None:
    rpms = _fan(90)
    messages = [_message(i, rpms[i * 10 : (i + 1) * 10]) for i in range(9)]
    first, second = make_detector(), make_detector()
    first.handle(_batch(messages[0:3], 0))
    second.handle(_batch(messages[3:6], 3))  # the shard moved to another container for a while
    assert first.handle(_batch(messages[6:9], 6)) == {"batchItemFailures": []}
    counts = first.last_counts
    assert (counts["gaps"], counts["duplicates"], counts["late"], counts["readings"]) == (0, 0, 0, 30)
    assert counts["forest_reloads"] == 1


def test_only_the_fan_another_container_moved_is_reloaded_the_others_stay_ready(
    aws: Any,
    make_detector: Callable[..., Detector],
    forest_options: dict[str, Any],
) -> None:
    rpms = _fan(90)
    both = [_message(i, rpms[i * 10 : (i + 1) * 10], fan=f) for i in range(9) for f in ("fan0", "fan1")]
    store = S3ModelStore(aws.client("s3"), aws.model_bucket)
    forests = ForestManager(dimensions=1, store=store, **forest_options)
    first = make_detector(forests=forests, checkpoint_seconds=0)
    second = make_detector(checkpoint_seconds=0)
    first.handle(_batch(both[0:6], 0))
    second.handle(_batch(both[6:12:2], 6))  # fan0's next messages went to another container
    assert first.handle(_batch([*both[12:18:2], *both[7:18:2]], 12)) == {"batchItemFailures": []}
    counts = first.last_counts
    assert (counts["gaps"], counts["duplicates"], counts["readings"], counts["forest_reloads"]) == (
        0,
        0,
        90,
        1,
    )
    # fan0 came back from the store as the other container left it; fan1 never left this one
    assert (forests.stats["created"], forests.stats["loaded"]) == (2, 1)


def test_a_cached_fan_state_is_saved_unread_and_a_fan_moved_meanwhile_is_retried_from_the_stores(
    aws: Any,
    make_detector: Callable[..., Detector],
) -> None:
    rpms = _fan(120)
    messages = [_message(i, rpms[i * 10 : (i + 1) * 10]) for i in range(12)]
    first = make_detector(cache_states=True, checkpoint_seconds=0)
    second = make_detector(cache_states=True, checkpoint_seconds=0)
    first.handle(_batch(messages[0:3], 0))
    assert first.last_counts["states_cached"] == 0  # a new container reads
    assert first.handle(_batch(messages[3:6], 3)) == {"batchItemFailures": []}
    assert first.last_counts["states_cached"] == 1  # its own copy: no read
    second.handle(_batch(messages[6:9], 6))  # the shard moved to another container for a while
    with pytest.raises(RetryLater, match="moved 1 fan"):
        first.handle(_batch(messages[9:12], 9))  # its copy is behind: found at the save
    assert first.handle(_batch(messages[9:12], 9)) == {"batchItemFailures": []}  # Lambda's retry
    counts = first.last_counts
    assert (counts["gaps"], counts["duplicates"], counts["late"], counts["readings"]) == (0, 0, 0, 30)
    state = aws.client("dynamodb").get_item(
        TableName=aws.fan_state_table, Key={"pk": {"S": "pi-lab-01/fan0"}}
    )
    assert int(state["Item"]["version"]["N"]) == 4  # one save per batch that went through


def test_a_fan_with_fewer_readings_than_the_shingle_is_checkpointed_too(
    aws: Any,
    make_detector: Callable[..., Detector],
    events_dir: Path,
) -> None:
    legacy = [r for r in _mixed(events_dir)["Records"] if r["kinesis"]["partitionKey"] == "pi-lab-02"]
    assert make_detector(checkpoint_seconds=0).handle(kinesis_event(legacy)) == {"batchItemFailures": []}
    models = aws.client("s3").list_objects_v2(Bucket=aws.model_bucket)["Contents"]
    assert [m["Key"] for m in models] == ["models/pi-lab-02/fan1.rcf"]


def test_a_failed_record_keeps_its_scores_so_the_retry_learns_its_readings_once(
    aws: Any,
    make_detector: Callable[..., Detector],
) -> None:
    rpms = _fan(90)
    seqs = [0, 1, 2, 3, 5, 6, 7, 8]  # 4 never comes: 5 opens a gap, whose anomaly cannot be put yet
    messages = [_message(i, rpms[i * 10 : (i + 1) * 10]) for i in seqs]
    event = _batch(messages, 0)
    detector = make_detector(anomaly_stream="created-later", checkpoint_seconds=0)
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert _failed(detector.handle(event)) == sequence[4:]
    aws.client("kinesis").create_stream(StreamName="created-later", ShardCount=1)
    retry = kinesis_event(event["Records"][4:])  # Lambda retries from the failed record, same container
    assert detector.handle(retry) == {"batchItemFailures": []}
    assert (detector.last_counts["messages"], detector.last_counts["readings"]) == (4, 40)
    stored = aws.client("s3").get_object(Bucket=aws.model_bucket, Key="models/pi-lab-01/fan0.rcf")
    assert RandomCutForest.from_bytes(stored["Body"].read()).seen == 80  # each reading learned once
    records = aws.stream_events("created-later")["Records"]
    gaps = [parse_event(base64.b64decode(r["kinesis"]["data"])) for r in records]
    assert [(g.kind, g.seq, g.missing, g.since) for g in gaps] == [
        ("gap", 5, 1, T0 + timedelta(seconds=40))  # since the last reading scored before the gap
    ]


def _controlled(
    seconds: int, changes: dict[int, float], *, stuck_from: int | None = None
) -> list[tuple[float, float]]:
    """(rpm, target) of a speed-controlled fan: the target changes at ``changes`` (second -> rpm); the
    rotor follows with a 3 s time constant, or keeps its speed from ``stuck_from`` on (it no longer
    follows its controller)."""
    out, target, speed = [], 1500.0, 1500.0
    for t in range(seconds):
        target = changes.get(t, target)
        if stuck_from is None or t < stuck_from:
            speed += (target - speed) / 3.0
        out.append((speed + 6 * math.sin(t * 2.7) + 4 * math.cos(t * 1.3), target))
    return out


def _controlled_message(seq: int, points: list[tuple[float, float | None]]) -> bytes:
    return _message(seq, [rpm for rpm, _ in points], targets=[target for _, target in points])


def _run(detector: Detector, points: list[tuple[float, float | None]]) -> Counter[str]:
    messages = [_controlled_message(i, points[i * 10 : (i + 1) * 10]) for i in range(len(points) // 10)]
    totals: Counter[str] = Counter()
    for start in range(0, len(messages), 20):
        assert detector.handle(_batch(messages[start : start + 20], start)) == {"batchItemFailures": []}
        totals.update(detector.last_counts)
    return totals


def test_a_speed_controlled_fan_that_follows_its_setpoints_raises_nothing(
    aws: Any,
    make_detector: Callable[..., Detector],
) -> None:
    changes = {300: 2100.0, 500: 1200.0, 700: 1800.0, 900: 1500.0, 1100: 2100.0}
    counts = _run(make_detector(settle_seconds=20), _controlled(1200, changes))
    assert [a for a in _anomalies(aws) if a.kind == "rcf"] == []
    assert counts["settling"] == 5 * 20  # the readings of each change's window: kept, not scored
    assert counts["readings"] == 1200


def test_a_speed_controlled_fan_that_does_not_follow_a_change_is_an_anomaly_once_it_had_time(
    aws: Any,
    make_detector: Callable[..., Detector],
) -> None:
    changes = {300: 2100.0, 500: 1200.0, 700: 1800.0}
    _run(make_detector(settle_seconds=20), _controlled(900, changes, stuck_from=650))
    found = [a for a in _anomalies(aws) if a.kind == "rcf"]
    assert found, "the fan that kept 1,200 RPM when told 1,800 was not flagged"
    first = found[0]
    assert T0 + timedelta(seconds=700 + 20) < first.ts <= T0 + timedelta(seconds=700 + 30)
    assert first.rpm == pytest.approx(1200, abs=15)
    assert first.typical_rpm == 1800.0  # what it should run at: its commanded speed
    assert first.severity == "critical"


def test_a_fan_whose_readings_start_carrying_a_target_moves_to_its_own_forest(
    aws: Any,
    make_detector: Callable[..., Detector],
) -> None:
    plain = [(rpm, None) for rpm in _fan(400)]
    controlled: list[tuple[float, float | None]] = list(_controlled(400, {}))
    counts = _run(make_detector(checkpoint_seconds=0), plain + controlled)
    assert counts["inputs_changed"] == 1
    assert [a for a in _anomalies(aws) if a.kind == "rcf"] == []  # a new input is not an anomaly
    assert counts["warming_up"] >= 2 * 32  # each forest waited for its output_after (32 at 128)
    models = aws.client("s3").list_objects_v2(Bucket=aws.model_bucket)["Contents"]
    assert sorted(m["Key"] for m in models) == [
        "models/pi-lab-01/fan0+target.rcf",
        "models/pi-lab-01/fan0.rcf",
    ]
    state = json.loads(
        aws.client("dynamodb").get_item(TableName=aws.fan_state_table, Key={"pk": {"S": "pi-lab-01/fan0"}})[
            "Item"
        ]["state"]["S"]
    )
    assert state["target"] == 1500.0


def test_poison_records_are_dead_lettered_alone_while_the_rest_of_the_batch_flows(
    aws: Any,
    make_detector: Callable[..., Detector],
    events_dir: Path,
) -> None:
    """Issue 14: a poison record once failed its whole batch (and, retried, held the shard)."""
    poison = [
        c for c in json.loads((events_dir / "mqtt" / "poison.json").read_text()) if c["kind"] == "telemetry"
    ]
    rpms = _fan(10 * len(poison))
    records = []
    for i, case in enumerate(poison):
        good = _message(i, rpms[10 * i : 10 * (i + 1)])
        for data, key in ((good, "pi-lab-01"), (case["payload"].encode(), "pi-1")):
            records.append(
                kinesis_record(
                    data,
                    partition_key=key,
                    sequence_number=f"{len(records):056d}",
                    arrival=T0.timestamp(),
                    stream_arn=ARN,
                )
            )
    detector = make_detector()
    assert detector.handle(kinesis_event(records)) == {"batchItemFailures": []}
    counts = detector.last_counts
    assert (counts["messages"], counts["readings"], counts["gaps"]) == (len(poison), 10 * len(poison), 0)
    letters = aws.dead_letters()
    assert [letter["reason"].split(":")[0] for letter in letters] == [c["field"] for c in poison]
    assert [letter["sequenceNumber"] for letter in letters] == [
        r["kinesis"]["sequenceNumber"] for r in records[1::2]
    ]


def test_when_fan_state_cannot_be_read_the_scoring_pass_says_it_stops_and_the_records_retry(
    aws: Any,
    make_detector: Callable[..., Detector],
    caplog: pytest.LogCaptureFixture,
) -> None:
    detector = make_detector()
    aws.client("dynamodb").delete_table(TableName=aws.fan_state_table)
    event = _batch([b"{not json", _message(0, _fan(10)), _message(1, _fan(10))], 0)
    response = detector.handle(event)
    assert _failed(response) == [r["kinesis"]["sequenceNumber"] for r in event["Records"][1:]]
    assert (detector.last_counts["dead_letters"], detector.last_counts["scoring_stopped"]) == (1, 1)
    assert "fan state unreadable; batch scoring stops" in caplog.text
