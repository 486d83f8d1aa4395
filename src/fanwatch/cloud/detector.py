"""The detector Lambda: telemetry stream -> one Random Cut Forest per fan -> anomalies stream.

Per record (one telemetry message) it parses the message against the contract, dead-letters poison,
drops duplicates, flags gaps and late arrivals, scores the new readings with the fan's forest and
grades the scores against the fan's own threshold. At the end of a batch it saves each fan's state
(optimistic locking in DynamoDB) and, every ``checkpoint_seconds``, the forests (S3).

What a forest is fed (:func:`forest_input`): the RPM of a fan whose readings carry no commanded
speed; for a speed-controlled fan (readings carry ``target_rpm``) its tracking error relative to the
target, so a commanded change is no anomaly while a fan that does not follow is one. A speed change
takes the fan a few seconds: readings within ``settle_seconds`` of a change of target are stored in
the lake but neither scored nor learned; a fan that follows is back at an error near zero after the
window, a fan that does not is far from it. The two inputs never share a forest (keys ``thing/fan``
and ``thing/fan+target``); a fan whose readings start or stop carrying a target switches forests,
and the new one waits its ``output_after`` readings (or was warmed by ``fanwatch detector backfill``).

Ordering: records of one thing share a partition key, so they arrive in order within a shard. After a
record fails for a reason a retry can fix, the rest of the batch is failed unprocessed: Lambda
retries from the lowest failed sequence number, so processing them now would only repeat them.

Speed: before the records are taken one by one, the new readings of the whole batch are scored in
one lock-step pass over every fan's forest (:class:`~fanwatch.rcf.ForestManager`), several times
faster than a forest call per message. The scores wait for their records; a record that fails keeps
its scores for the retry, so its readings are never learned twice.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, Final, Protocol

import numpy as np
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from botocore.exceptions import BotoCoreError, ClientError

from fanwatch.cloud.events import Anomaly, encode_anomaly
from fanwatch.cloud.observability import Count, Service, publish
from fanwatch.cloud.records import DeadLetter, DeadLetterQueue, PoisonRecord, record_bytes
from fanwatch.cloud.sequence import SequenceCheck, check
from fanwatch.cloud.settings import DetectorSettings
from fanwatch.cloud.stores import (
    MODEL_REQUESTS_IN_FLIGHT,
    FanState,
    FanStateStore,
    S3ModelStore,
    StaleState,
)
from fanwatch.environment import (
    ANOMALY_STREAM_VARIABLE,
    DEAD_LETTER_QUEUE_VARIABLE,
    FAN_STATE_TABLE_VARIABLE,
    LAMBDA_MEMORY_VARIABLE,
    MODEL_BUCKET_VARIABLE,
)
from fanwatch.errors import FanwatchError
from fanwatch.rcf import ScoreStats, Thresholder
from fanwatch.telemetry import ContractError, Reading, Telemetry, parse_telemetry

__all__ = [
    "MIN_TARGET_RPM",
    "AnomalyStream",
    "Detector",
    "ForestPoint",
    "Forests",
    "Inputs",
    "RetryLater",
    "ScoredReading",
    "forest_input",
    "forest_key",
    "forest_points",
    "forest_values",
    "from_environment",
    "lambda_handler",
    "thresholder_for",
    "typical_speed",
]

logger = Logger(service=Service.DETECTOR)


class Forests(Protocol):
    """What the detector needs of :class:`fanwatch.rcf.ForestManager`."""

    def process(self, keys: Sequence[str], points: np.ndarray) -> np.ndarray: ...
    def flush(self) -> None: ...
    def discard(self, key: str) -> None: ...


class RetryLater(FanwatchError, RuntimeError):
    """A record that failed for a reason a retry can fix (reported as a batch item failure)."""


class AnomalyStream:
    """Writes anomalies to the anomalies Kinesis stream, partitioned by thing like the telemetry."""

    def __init__(self, kinesis: Any, stream_name: str) -> None:
        self._kinesis = kinesis
        self._stream = stream_name

    def put(self, anomalies: Sequence[Anomaly]) -> None:
        if not anomalies:
            return
        response = self._kinesis.put_records(
            StreamName=self._stream,
            Records=[{"Data": encode_anomaly(a), "PartitionKey": a.thing} for a in anomalies],
        )
        if response.get("FailedRecordCount", 0):
            errors = {r.get("ErrorCode") for r in response["Records"] if r.get("ErrorCode")}
            refused = response["FailedRecordCount"]
            raise RetryLater(f"anomalies stream refused {refused} record(s): {sorted(errors)}")


#: A commanded speed below this (a fan told to stop) measures the tracking error against this instead.
MIN_TARGET_RPM: Final = 100.0
#: Readings after which an old one weighs half in a fan's typical speed.
_TYPICAL_HALF_LIFE: Final = 500
_TYPICAL_ALPHA: Final = 1.0 - 0.5 ** (1.0 / _TYPICAL_HALF_LIFE)


class Inputs(StrEnum):
    """What a fan's forest is fed, one value per reading."""

    RPM = "rpm"  # a fan without a commanded speed: its speed
    TRACKING = "tracking"  # a speed-controlled fan: (rpm - target) / target


def forest_input(reading: Reading) -> tuple[Inputs, float]:
    """The kind of forest ``reading`` goes to, and the value that forest takes."""
    target = reading.target_rpm
    if target is None:
        return Inputs.RPM, reading.rpm
    return Inputs.TRACKING, (reading.rpm - target) / max(target, MIN_TARGET_RPM)


def forest_key(thing: str, fan: str, inputs: Inputs) -> str:
    """The model key of a fan's forest for ``inputs`` (``+`` cannot occur in a thing or fan id)."""
    return f"{thing}/{fan}" if inputs is Inputs.RPM else f"{thing}/{fan}+target"


@dataclass(frozen=True, slots=True)
class ScoredReading:
    """One reading as the detector graded it (what ``Detector(on_score=...)`` is told, for pictures)."""

    thing: str
    fan: str
    reading: Reading
    inputs: Inputs
    score: float  # 0.0 while the fan's forest warms up
    threshold: float
    anomalous: bool


@dataclass(frozen=True, slots=True)
class ForestPoint:
    """A reading as its fan's forest takes it."""

    reading: Reading
    inputs: Inputs
    key: str
    value: float


@dataclass(frozen=True, slots=True)
class _Ahead:
    """The scores of one record's new points, from the batch's lock-step pass."""

    fan: str  # thing/fan
    stamps: tuple[datetime, ...]
    scores: np.ndarray


@dataclass(slots=True)
class _Batch:
    states: dict[str, FanState] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    parsed: dict[str, Telemetry] = field(default_factory=dict)  # by sequence number, for its turn
    done: list[str] = field(default_factory=list)  # sequence numbers of the records that went through
    cached: set[str] = field(default_factory=set)  # fans whose state came from this container's cache
    counts: Counter[str] = field(default_factory=Counter)
    failed: bool = False


class Detector:
    """Scores telemetry per fan; see the module docstring. Every collaborator is injected.

    ``forests`` builds the forest manager (one dimension) at start; when the detector finds that
    another container has processed one of its fans since (Lambda does not keep a fan on one
    container), it discards that fan's forests, and the fan's next record loads them from the store.
    ``thresholder`` grades each fan's scores against that fan's statistics;
    ``cache_states`` keeps each fan's state between batches and saves it without reading it first
    (``DetectorSettings.cache_fan_state``); a fan another container moved on is then found at the
    save, its forests and state are forgotten and the batch is retried (``RetryLater``): the fans
    saved come back as duplicates, that fan from the stores.
    ``settle_seconds`` is how long a speed-controlled fan may take to follow a commanded change;
    forests are written to their store every ``checkpoint_seconds`` of ``clock``; ``on_score``, if
    given, is told every reading scored (a report or a benchmark draws them; a record that is retried
    reports its readings again).
    """

    def __init__(
        self,
        *,
        forests: Callable[[], Forests],
        states: FanStateStore,
        anomalies: AnomalyStream,
        dead_letters: DeadLetterQueue,
        thresholder: Thresholder,
        settle_seconds: float = DetectorSettings().settle_seconds,
        checkpoint_seconds: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        on_score: Callable[[ScoredReading], None] | None = None,
        cache_states: bool = False,
    ) -> None:
        if not settle_seconds >= 0:
            raise ValueError(f"settle_seconds must be >= 0, got {settle_seconds!r}")
        self._forests = forests()
        self._states = states
        self._anomalies = anomalies
        self._dead_letters = dead_letters
        self._thresholder = thresholder
        self._on_score = on_score
        self._settle = timedelta(seconds=settle_seconds)
        self._checkpoint_seconds = checkpoint_seconds
        self._clock = clock
        self._last_checkpoint = clock()
        self._versions: dict[str, int] = {}  # state version this container last saved, per fan
        self._cache_states = cache_states
        self._cache: dict[str, FanState] = {}  # the state this container last saved, per fan
        self._ahead: dict[str, _Ahead] = {}  # by sequence number, until its record goes through
        self._batch = _Batch()
        self._processor = BatchProcessor(event_type=EventType.KinesisDataStreams)

    @property
    def last_counts(self) -> Counter[str]:
        """What the last batch did: messages, readings, duplicates, late, gaps, anomalies, dead_letters,
        settling (readings not scored while a fan followed a commanded change), warming_up (scored 0:
        the forest has not seen ``output_after`` readings yet), inputs_changed…"""
        return self._batch.counts

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Process one Kinesis batch; returns the partial-failure response for ReportBatchItemFailures."""
        self._batch = _Batch()
        self._score_ahead([KinesisStreamRecord(r) for r in event.get("Records", [])])
        response = process_partial_response(event, self.process_record, self._processor, context)
        self._finish()
        return dict(response)

    # --- per record ---------------------------------------------------------------------------

    def process_record(self, record: KinesisStreamRecord) -> None:
        if self._batch.failed:
            raise RetryLater("an earlier record of this batch failed; Lambda retries from there")
        number = record.kinesis.sequence_number
        message = self._batch.parsed.pop(number, None)
        if message is None:
            try:
                message = parse_telemetry(record_bytes(record), thing=record.kinesis.partition_key)
            except (PoisonRecord, ContractError) as exc:
                self._reject(record, str(exc))
                return
        try:
            self._score(message, number)
        except Exception:
            self._batch.failed = True
            raise
        self._batch.done.append(number)

    def _reject(self, record: KinesisStreamRecord, reason: str) -> None:
        letter = DeadLetter.of(record, reason=reason, source="detector")
        try:
            self._dead_letters.send(letter)
        except Exception:
            self._batch.failed = True
            raise
        self._batch.counts[Count.DEAD_LETTERS] += 1
        logger.warning(
            "record dead-lettered",
            extra={
                "reason": reason,
                "sequence": letter.sequence_number,
                "partition_key": letter.partition_key,
            },
        )

    def _score_ahead(self, records: list[KinesisStreamRecord]) -> None:
        """Score the batch's new readings in one pass, as the records will find them one by one."""
        numbers = {record.kinesis.sequence_number for record in records}
        # a retry brings the failed records back first; scores of records that went elsewhere go
        self._ahead = {n: a for n, a in self._ahead.items() if n in numbers}
        states: dict[str, FanState] = {}
        owners: list[tuple[str, list[ForestPoint]]] = []
        for record in records:
            try:
                message = parse_telemetry(record_bytes(record), thing=record.kinesis.partition_key)
            except (PoisonRecord, ContractError):
                continue  # dead-lettered when its turn comes
            number = record.kinesis.sequence_number
            self._batch.parsed[number] = message
            key = _key(message)
            if key not in states:
                try:
                    states[key] = copy.deepcopy(self._state(key))
                except (BotoCoreError, ClientError) as exc:
                    # The pass stops, said so: this record fails with the same error in its turn (a
                    # retry can fix that) and the records after it with it; those before still go.
                    logger.warning(
                        "fan state unreadable; batch scoring stops", extra={"fan": key, "error": str(exc)}
                    )
                    self._batch.counts["scoring_stopped"] += 1
                    break
            _, fresh = _triage(message, states[key])
            if not fresh:
                continue
            points = forest_points(
                message.thing, message.fan, fresh, states[key], settle=self._settle, counts=Counter()
            )
            states[key].last_scored = fresh[-1].ts
            if points and number not in self._ahead:
                owners.append((number, points))
        if not owners:
            return
        points = [p for _, mine in owners for p in mine]
        scores = self._forests.process([p.key for p in points], forest_values(points))
        at = 0
        for number, mine in owners:
            fan = _key(self._batch.parsed[number])
            self._ahead[number] = _Ahead(fan, tuple(p.reading.ts for p in mine), scores[at : at + len(mine)])
            at += len(mine)

    def _score(self, message: Telemetry, number: str) -> None:
        key = _key(message)
        counts = self._batch.counts
        state = copy.deepcopy(self._state(key))  # committed only once the record has gone through
        seen, fresh = _triage(message, state)
        counts["messages"] += 1
        if seen.verdict == "duplicate":
            counts[Count.DUPLICATES] += 1
            logger.info("duplicate dropped", extra={"fan": key, "boot": message.boot, "seq": message.seq})
            return
        if seen.verdict == "late":
            counts[Count.LATE] += 1
            logger.warning(
                "late message not scored", extra={"fan": key, "boot": message.boot, "seq": message.seq}
            )
            self._commit(key, state)
            return
        if seen.verdict == "unnumbered":
            counts["legacy"] += 1
        if seen.restarted:
            logger.info("device restarted", extra={"fan": key, "boot": message.boot})
        found: list[Anomaly] = []
        if seen.missing:
            counts[Count.GAPS] += 1
            counts["missing"] += seen.missing
            found.append(self._gap(message, seen.missing, state))
        counts["readings_old"] += len(message.readings) - len(fresh)
        if fresh:
            counts["readings"] += len(fresh)
            switches = counts["inputs_changed"]
            points = forest_points(
                message.thing, message.fan, fresh, state, settle=self._settle, counts=counts
            )
            if counts["inputs_changed"] > switches:
                logger.info(
                    "readings started or stopped carrying a target: the fan's other forest takes over",
                    extra={"fan": key, "carries_target": state.target is not None},
                )
            found.extend(self._grade(message, points, state, self._ahead.get(number)))
            state.last_scored = fresh[-1].ts
        self._anomalies.put(found)
        counts[Count.ANOMALIES] += sum(a.kind == "rcf" for a in found)
        self._commit(key, state)

    def _commit(self, key: str, state: FanState) -> None:
        self._batch.states[key] = state
        self._batch.changed.add(key)

    def _state(self, key: str) -> FanState:
        state = self._batch.states.get(key)
        if state is None and key in self._cache:
            state = self._batch.states[key] = copy.deepcopy(self._cache[key])
            self._batch.cached.add(key)
            self._batch.counts["states_cached"] += 1
        if state is None:
            state = self._states.get(key)
            known = self._versions.get(key)
            if known is not None and known != state.version:
                # Lambda sent this fan to another container meanwhile: our copy of its forests is
                # behind; the stored one is what the fleet has. The other fans stay as they are.
                logger.info("fan processed elsewhere since; reloading its forests", extra={"fan": key})
                self._batch.counts["forest_reloads"] += 1
                self._forget(key)
            self._batch.states[key] = state
        return state

    def _forget(self, key: str) -> None:
        """Drop what this container holds of fan ``key``: its next record takes it from the stores."""
        thing, fan = key.split("/", 1)
        for inputs in Inputs:
            self._forests.discard(forest_key(thing, fan, inputs))
        self._versions.pop(key, None)
        self._cache.pop(key, None)
        self._ahead = {n: a for n, a in self._ahead.items() if a.fan != key}

    def _grade(
        self, message: Telemetry, points: list[ForestPoint], state: FanState, ahead: _Ahead | None
    ) -> list[Anomaly]:
        if not points:
            return []
        if ahead is not None and ahead.stamps == tuple(p.reading.ts for p in points):
            scores = ahead.scores
        else:  # the batch's pass could not see this record coming
            scores = self._forests.process([p.key for p in points], forest_values(points))
        counts = self._batch.counts
        worst: tuple[float, float, ForestPoint] | None = None
        for point, score in zip(points, scores.tolist(), strict=True):
            grade = self._thresholder.grade(score, state.stats)
            if self._on_score is not None:
                self._on_score(
                    ScoredReading(
                        thing=message.thing,
                        fan=message.fan,
                        reading=point.reading,
                        inputs=point.inputs,
                        score=score,
                        threshold=grade.threshold,
                        anomalous=grade.anomalous,
                    )
                )
            if score <= 0.0:  # the forest is still filling its samples and does not score yet
                counts["warming_up"] += 1
                continue
            if not grade.anomalous:
                state.anomaly_since = None
                state.typical_rpm = typical_speed(state.typical_rpm, point.reading.rpm)
                continue
            state.anomaly_since = state.anomaly_since or point.reading.ts
            if worst is None or score / grade.threshold > worst[0] / worst[1]:
                worst = (score, grade.threshold, point)
        if worst is None:
            return []
        score, threshold, point = worst
        reading = point.reading
        return [
            Anomaly(
                thing=message.thing,
                fan=message.fan,
                kind="rcf",
                severity="critical" if score >= 2 * threshold else "warning",
                ts=reading.ts,
                since=state.anomaly_since or reading.ts,
                rpm=reading.rpm,
                score=score,
                threshold=threshold,
                # what the fan should run at: its commanded speed, else its usual one
                typical_rpm=reading.target_rpm if point.inputs is Inputs.TRACKING else state.typical_rpm,
                boot=message.boot,
                seq=message.seq,
            )
        ]

    @staticmethod
    def _gap(message: Telemetry, missing: int, state: FanState) -> Anomaly:
        first = message.readings[0]
        since = state.last_scored or first.ts
        return Anomaly(
            thing=message.thing,
            fan=message.fan,
            kind="gap",
            severity="info",
            ts=message.sent,
            since=since,
            rpm=first.rpm,
            typical_rpm=state.typical_rpm,
            missing=missing,
            boot=message.boot,
            seq=message.seq,
        )

    # --- per batch ----------------------------------------------------------------------------

    def _finish(self) -> None:
        counts = self._batch.counts
        moved = []
        for key in sorted(self._batch.changed):
            state = self._batch.states[key]
            try:
                self._states.put(key, state)
            except StaleState:
                if key not in self._batch.cached:
                    raise  # read this batch and saved by another meanwhile: a race, retry it all
                moved.append(key)  # our cached copy was behind; the others are saved all the same
                continue
            self._versions[key] = state.version
            if self._cache_states:
                self._cache[key] = copy.deepcopy(state)
        # a record that went through, state saved, has used its scores; a failed one keeps them
        for number in self._batch.done:
            self._ahead.pop(number, None)
        if self._clock() - self._last_checkpoint >= self._checkpoint_seconds:
            self._forests.flush()
            self._last_checkpoint = self._clock()
            counts["checkpoints"] += 1
        if moved:
            counts["forest_reloads"] += len(moved)
            for key in moved:
                self._forget(key)
        publish(Service.DETECTOR, counts)
        logger.info("batch done", extra={"counts": dict(counts)})
        if moved:
            raise RetryLater(
                f"another container moved {len(moved)} fan(s) on since this one cached them: {moved[:3]}"
            )


def _key(message: Telemetry) -> str:
    return f"{message.thing}/{message.fan}"


def forest_points(
    thing: str,
    fan: str,
    readings: Sequence[Reading],
    state: FanState,
    *,
    settle: timedelta,
    counts: Counter[str],
) -> list[ForestPoint]:
    """What the fan's forests take of its new ``readings`` (in order, none scored before).

    A speed-controlled fan's readings within ``settle`` of a change of its target have no point
    (``counts["settling"]``). ``state`` follows the fan's target; when its readings start or stop
    carrying one (``counts["inputs_changed"]``), the fan's score statistics start afresh, as the
    other forest takes over.
    """
    points = []
    carried = None if state.last_scored is None else state.target is not None
    for reading in readings:
        inputs, value = forest_input(reading)
        target = reading.target_rpm
        if carried is not None and carried != (target is not None):
            counts["inputs_changed"] += 1
            state.stats = ScoreStats()
            state.settle_until = None
        elif target is not None and state.target is not None and target != state.target:
            state.settle_until = reading.ts + settle
        carried = target is not None
        state.target = target
        if state.settle_until is not None and reading.ts < state.settle_until:
            counts["settling"] += 1
            continue
        points.append(ForestPoint(reading, inputs, forest_key(thing, fan, inputs), value))
    return points


def forest_values(points: Sequence[ForestPoint]) -> np.ndarray:
    """The forests' input rows of ``points``, one value each."""
    return np.array([[p.value] for p in points], dtype=np.float64)


def typical_speed(typical: float | None, rpm: float) -> float:
    """A fan's usual speed, followed as a slow moving average of the readings graded normal."""
    return rpm if typical is None else typical + _TYPICAL_ALPHA * (rpm - typical)


def _triage(message: Telemetry, state: FanState) -> tuple[SequenceCheck, list[Reading]]:
    """Where ``message`` stands in its fan's sequence (``state`` follows it), and its readings not
    scored yet."""
    seen = check(state.sequence, message.boot, message.seq)
    if seen.verdict in ("duplicate", "late"):
        return seen, []
    return seen, [r for r in message.readings if state.last_scored is None or r.ts > state.last_scored]


#: Share of the function's memory that forests ready to score may take; the rest holds the compact
#: checkpoints of the other resident fans, numpy, boto3 and the batch itself.
READY_SHARE = 0.5


def ready_forests_for(memory_mb: int, forest_bytes: int) -> int:
    """How many forests a function of ``memory_mb`` can keep ready to score without running out."""
    return max(1, int(memory_mb * 2**20 * READY_SHARE) // forest_bytes)


@cache
def _from_environment() -> Detector:
    return from_environment()


def from_environment(*, on_score: Callable[[ScoredReading], None] | None = None) -> Detector:
    """A detector configured by the environment the stack sets (the Lambda's, built once per container);
    ``on_score`` as in :class:`Detector` (the demo draws every reading's score)."""
    import os

    import boto3
    from botocore.config import Config

    from fanwatch.rcf import ForestManager, ready_forest_bytes

    env = os.environ
    settings = DetectorSettings.from_environment(env)
    # a connection per model request in flight (botocore's pool of 10 would make the rest wait)
    s3 = boto3.client("s3", config=Config(max_pool_connections=MODEL_REQUESTS_IN_FLIGHT))
    store = S3ModelStore(s3, env[MODEL_BUCKET_VARIABLE])
    memory_mb = int(env.get(LAMBDA_MEMORY_VARIABLE, "2048"))  # set by the Lambda runtime
    ready = ready_forests_for(memory_mb, ready_forest_bytes(**settings.forest_shape))

    def forests() -> Forests:
        return ForestManager(
            **settings.forest_shape, store=store, max_resident=settings.max_resident, max_hydrated=ready
        )

    return Detector(
        forests=forests,
        states=FanStateStore(boto3.client("dynamodb"), env[FAN_STATE_TABLE_VARIABLE]),
        anomalies=AnomalyStream(boto3.client("kinesis"), env[ANOMALY_STREAM_VARIABLE]),
        dead_letters=DeadLetterQueue(boto3.client("sqs"), env[DEAD_LETTER_QUEUE_VARIABLE]),
        thresholder=thresholder_for(settings),
        settle_seconds=settings.settle_seconds,
        checkpoint_seconds=60 * settings.checkpoint_minutes,
        on_score=on_score,
        cache_states=settings.cache_fan_state,
    )


def thresholder_for(settings: DetectorSettings) -> Thresholder:
    """The thresholder the detector grades with under ``settings`` (also what backfill warms)."""
    return Thresholder(floor=settings.score_floor, z=settings.score_sigmas)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The detector function's entry point (the stack's handler string names it): one batch of the
    telemetry stream, with the detector built once per container."""
    return _from_environment().handle(event, context)
