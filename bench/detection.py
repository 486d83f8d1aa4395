"""What the edge and the forest catch: recall, false alarms and time to detect, per fault kind.

    python bench/detection.py           # 6 fans per fault kind (30 min), 12 healthy fans (3 h): ~5 min
    python bench/detection.py --quick   # a smoke run: one fan per case, 20 minutes each: ~30 s

Many seeded simulated fans (``fanwatch.edge.tach.SimulatedFan``: healthy ones, one group per fault
kind, speed-controlled fans whose setpoints change, and speed-controlled fans that get stuck and do
not follow a change) are read by the real tachometer code once a simulated second and run through
the REAL edge filter (``EdgeFilter``: spike filter, deadband, batching, local alerts) on a simulated
clock, once per data design. What each design sends goes, as Lambda-shaped Kinesis batches in the
order it was sent, through the REAL detector (``Detector.handle``: contract, sequence checks, one
forest per fan of 100 trees x 256, thresholds, fan state in DynamoDB, anomalies on a stream) with
real boto3 against moto, configured by the stack's defaults (``DetectorSettings``).

A fault counts as caught when an edge alert (raised) or an RCF anomaly falls between its start and
``GRACE_S`` after its end; the time to detect runs from the fault's start to the moment the cloud
can know (an edge alert: when it is raised; an anomaly: when the message that carried its reading
left the device). Every other alert or anomaly is a false alarm; those within a notification
cooldown (15 min) of each other count once, as a person would get them. The edge's under- and
over-speed thresholds are set as an operator would for each fan (80 % of its lowest and 125 % of its
highest speed); its stall alert is the recipe's default.

Prints the per-kind table for the default design, the data-design trade-off table (messages,
cost per fan from ``docs/examples/cloud_cost.py``, recall, time to detect, false alarms) and draws a
few fans with their scores to ``bench/out/detection.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import multiprocessing
import os
import random
import resource
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples"))
from cloud_cost import Assumptions, estimate

from fanwatch.cloud.detector import AnomalyStream, Detector, Forests, ScoredReading, thresholder_for
from fanwatch.cloud.events import Anomaly, parse_event
from fanwatch.cloud.records import DeadLetterQueue
from fanwatch.cloud.settings import DetectorSettings
from fanwatch.cloud.shapes import kinesis_event, kinesis_record
from fanwatch.cloud.stores import FanStateStore, S3ModelStore
from fanwatch.edge.clock import SimClock
from fanwatch.edge.config import parse_filter_config
from fanwatch.edge.prefilter import EdgeFilter
from fanwatch.edge.tach import Fault, SimulatedFan, Tachometer
from fanwatch.rcf import ForestManager
from fanwatch.telemetry import Telemetry, encode, parse_alert, parse_telemetry

START = time.perf_counter()
QUIET = logging.getLogger("bench.detection.edge")  # the alerts are counted, not logged
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False
T0 = datetime(2026, 11, 27, tzinfo=UTC)
REGION = os.environ["AWS_DEFAULT_REGION"]
ARN = f"arn:aws:kinesis:{REGION}:123456789012:stream/fanwatch-telemetry"
OUT = Path(__file__).resolve().parent / "out"
#: After a fault ends, how long its detections still count as catching it (a batch may take 120 s).
GRACE_S = 180.0
#: Alarms of one detector on one fan closer than this count once (the notifier's default cooldown).
COOLDOWN_S = 15 * 60.0
FAULT_CASES = ("stall", "bearing_wear", "hunting", "overspeed", "glitch", "dropout", "stuck")
HEALTHY_CASES = ("healthy", "setpoints")
#: The data designs compared: the edge filter's settings (the recipe's defaults otherwise).
DESIGNS: dict[str, dict[str, Any]] = {
    "every reading, 60 per message (default)": {},
    "every reading, 120 per message": {"batchSize": 120, "maxBatchAgeSeconds": 120},
    "deadband 30 rpm/1 %, heartbeat 60 s (former default)": {
        "deadbandRpm": 30,
        "deadbandPercent": 1,
        "batchSize": 30,
    },
}
DEFAULT = next(iter(DESIGNS))
#: Designs whose messages carry every reading score the same 1 Hz series as the default: only when
#: the cloud learns of an anomaly differs (when the message that carries its reading leaves).
SAME_SERIES = {"every reading, 120 per message": DEFAULT}


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f}s] {message}", file=sys.stderr, flush=True)


# ---- the fleet ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One simulated fan and what happens to it."""

    kind: str  # a fault kind, "healthy" or "setpoints"
    index: int
    seed: int
    nominal: float
    seconds: int
    faults: tuple[Fault, ...] = ()
    setpoints: tuple[tuple[float, float], ...] = ()

    @property
    def thing(self) -> str:
        return f"bench-{self.kind.replace('_', '-')}-{self.index:02d}"

    @property
    def speeds(self) -> list[float]:
        return [self.nominal, *(rpm for _, rpm in self.setpoints)]

    def edge_thresholds(self) -> dict[str, float]:
        """What an operator sets for this fan: 80 % of its lowest speed, 125 % of its highest."""
        return {
            "underSpeedRpm": round(0.8 * min(self.speeds)),
            "overSpeedRpm": round(1.25 * max(self.speeds)),
        }


def _setpoints(rng: random.Random, nominal: float, seconds: int) -> tuple[tuple[float, float], ...]:
    levels = [round(nominal * f) for f in (0.6, 0.8, 1.0)]
    out, at, current = [], rng.uniform(240, 480), nominal
    while at < seconds:
        current = rng.choice([level for level in levels if level != current])
        out.append((round(at), float(current)))
        at += rng.uniform(240, 480)
    return tuple(out)


def fleet(
    *, per_kind: int, fault_minutes: float, healthy: int, healthy_minutes: float, seed: int
) -> list[Case]:
    """The seeded fleet: ``per_kind`` fans per fault kind, ``healthy`` healthy and speed-controlled fans."""
    rng = random.Random(seed)
    cases: list[Case] = []
    fault_s = int(fault_minutes * 60)
    healthy_s = int(healthy_minutes * 60)
    for kind in HEALTHY_CASES:
        for i in range(healthy):
            nominal = rng.uniform(1500, 4000)
            changes = _setpoints(rng, nominal, healthy_s) if kind == "setpoints" else ()
            cases.append(Case(kind, i, rng.randrange(2**31), nominal, healthy_s, setpoints=changes))
    for kind in FAULT_CASES:
        for i in range(per_kind):
            nominal = rng.uniform(1500, 4000)
            start = rng.uniform(0.25, 0.45) * fault_s
            severity = round(math.exp(rng.uniform(math.log(0.5), math.log(2.0))), 2)
            end = math.inf if kind == "bearing_wear" else start + rng.uniform(0.15, 0.3) * fault_s
            points: tuple[tuple[float, float], ...] = ()
            if kind == "stuck":  # stuck 30 s before its controller commands another speed
                change = round(start + 30)
                other = round(nominal * rng.choice((0.6, 0.8)))
                points = ((change, float(other)), (round(end + 60), nominal))
                severity = 1.0
            cases.append(
                Case(
                    kind,
                    i,
                    rng.randrange(2**31),
                    nominal,
                    fault_s,
                    faults=(Fault(kind, start, end, severity),),
                    setpoints=points,
                )
            )
    return cases


# ---- the edge ----------------------------------------------------------------------------------


@dataclass
class EdgeRun:
    """What one fan's edge filter sent under each design: (sent at, payload) of telemetry, alerts."""

    case: Case
    telemetry: dict[str, list[tuple[float, bytes]]] = field(default_factory=dict)
    alerts: list[tuple[float, str]] = field(default_factory=list)  # (raised at, kind), default design
    readings: int = 0


def run_edge(case: Case) -> EdgeRun:
    """Read the fan once a simulated second through the tachometer and every design's edge filter."""
    clock = SimClock(start=T0)
    fan = SimulatedFan(
        target_rpm=case.nominal, faults=case.faults, setpoints=case.setpoints, seed=case.seed, t0=clock.now()
    )
    tach = Tachometer(fan, clock=clock)
    filters = {
        name: EdgeFilter(
            parse_filter_config({**case.edge_thresholds(), "statusIntervalSeconds": 86_400, **settings}),
            thing=case.thing,
            clock=clock,
            boot=f"b{case.seed}",
            logger=QUIET,
        )
        for name, settings in DESIGNS.items()
    }
    run = EdgeRun(case, {name: [] for name in DESIGNS})
    for second in range(case.seconds):
        clock.advance(1.0)
        reading = tach.read()
        if reading is None:
            continue
        run.readings += 1
        raw = encode(
            Telemetry(
                thing=case.thing, fan="fan0", boot="tach", seq=second, sent=reading.ts, readings=(reading,)
            )
        )
        for name, edge in filters.items():
            for p in edge.accept(raw) + edge.tick():
                _collect(run, name, clock.now(), p.topic, p.payload)
    for name, edge in filters.items():
        for p in edge.flush():
            _collect(run, name, clock.now(), p.topic, p.payload)
    return run


def _collect(run: EdgeRun, design: str, now: float, topic: str, payload: bytes) -> None:
    if topic.endswith("/telemetry"):
        run.telemetry[design].append((now, payload))
    elif topic.endswith("/alerts") and design == DEFAULT:
        alert = parse_alert(payload)
        if alert.state == "raised":
            run.alerts.append((alert.ts.timestamp() - T0.timestamp(), alert.kind))


# ---- the cloud ---------------------------------------------------------------------------------


@dataclass
class CloudRun:
    anomalies: list[tuple[Anomaly, float]]  # each with when its message left the device (s from T0)
    scores: dict[str, list[tuple[float, float]]]  # per thing: (s from T0, score) of each reading scored
    counts: Counter[str]


def run_cloud(runs: list[EdgeRun], design: str, batch_s: float = 60.0) -> CloudRun:
    """Every message of ``design``, in the order sent, through the real detector against moto."""
    import boto3
    from moto import mock_aws

    settings = DetectorSettings()
    messages = sorted(
        ((sent, run.case.thing, payload) for run in runs for sent, payload in run.telemetry[design]),
        key=lambda m: (m[0], m[1]),
    )
    sent_of: dict[tuple[str, int], float] = {}
    scores: dict[str, list[tuple[float, float]]] = defaultdict(list)
    counts: Counter[str] = Counter()

    def record(scored: ScoredReading) -> None:
        scores[scored.thing].append((_relative(scored.reading.ts), scored.score))

    with mock_aws():
        clients = {
            name: boto3.client(name, region_name=REGION) for name in ("kinesis", "dynamodb", "s3", "sqs")
        }
        clients["kinesis"].create_stream(StreamName="anomalies", ShardCount=1)
        clients["dynamodb"].create_table(
            TableName="fan-state",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        clients["s3"].create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
        dlq = clients["sqs"].create_queue(QueueName="dead-letters")["QueueUrl"]
        store = S3ModelStore(clients["s3"], "models")
        now = [0.0]

        def forests() -> Forests:
            return ForestManager(**settings.forest_shape, store=store, max_hydrated=len(runs))

        detector = Detector(
            forests=forests,
            states=FanStateStore(clients["dynamodb"], "fan-state"),
            anomalies=AnomalyStream(clients["kinesis"], "anomalies"),
            dead_letters=DeadLetterQueue(clients["sqs"], dlq),
            thresholder=thresholder_for(settings),
            settle_seconds=settings.settle_seconds,
            checkpoint_seconds=60 * settings.checkpoint_minutes,
            clock=lambda: now[0],
            on_score=record,
        )
        # one invocation per batching window of sent time, as the event source mapping gathers them
        sequence = 0
        at = 0
        while at < len(messages):
            end = at
            window = messages[at][0] + batch_s
            while end < len(messages) and messages[end][0] < window and end - at < 1000:
                end += 1
            records = []
            for sent, thing, payload in messages[at:end]:
                message = parse_telemetry(payload)
                assert message.seq is not None
                sent_of[(thing, message.seq)] = sent
                records.append(
                    kinesis_record(
                        payload,
                        partition_key=thing,
                        sequence_number=f"{sequence:020d}",
                        arrival=T0.timestamp() + sent,
                        stream_arn=ARN,
                    )
                )
                sequence += 1
            now[0] = messages[end - 1][0]
            with contextlib.redirect_stdout(io.StringIO()):  # the handler's metrics (EMF log lines)
                failed = detector.handle(kinesis_event(records))["batchItemFailures"]
            if failed:
                raise RuntimeError(f"the detector failed {len(failed)} record(s)")
            counts.update(detector.last_counts)
            at = end
        anomalies = _read_stream(clients["kinesis"], "anomalies")
    found = [(a, sent_of[(a.thing, a.seq)]) for a in anomalies if a.kind == "rcf" and a.seq is not None]
    return CloudRun(found, dict(scores), counts)


def _read_stream(kinesis: Any, stream: str) -> list[Anomaly]:
    shard = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    out: list[Anomaly] = []
    while iterator:
        response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        for record in response["Records"]:
            event = parse_event(record["Data"])  # boto3 hands the data decoded
            if isinstance(event, Anomaly):
                out.append(event)
        if not response["Records"]:
            break
        iterator = response.get("NextShardIterator")
    return out


# ---- scoring the detectors ---------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """An alarm: when its evidence was measured and when the cloud could know (s from T0)."""

    at: float
    known: float


def _relative(ts: datetime) -> float:
    return (ts - T0).total_seconds()


def events_of(
    runs: list[EdgeRun], cloud: CloudRun, *, sent_in: dict[str, Callable[[float], float]] | None = None
) -> dict[str, dict[str, list[Event]]]:
    """Per thing: the edge's, the forest's and both's alarms."""
    out: dict[str, dict[str, list[Event]]] = {r.case.thing: {"edge": [], "rcf": [], "both": []} for r in runs}
    for run in runs:
        out[run.case.thing]["edge"] = [Event(at, at) for at, _ in run.alerts]
    for anomaly, sent in cloud.anomalies:
        at = _relative(anomaly.ts)
        known = sent if sent_in is None else sent_in[anomaly.thing](at)
        out[anomaly.thing]["rcf"].append(Event(at, known))
    for per in out.values():
        per["both"] = sorted(per["edge"] + per["rcf"], key=lambda e: e.known)
    return out


def carrier(run: EdgeRun, design: str) -> Callable[[float], float]:
    """When the message of ``design`` carrying the reading measured at ``at`` left the device."""
    spans = []
    for sent, payload in run.telemetry[design]:
        message = parse_telemetry(payload)
        spans.append((_relative(message.readings[-1].ts), sent))
    ends = [end for end, _ in spans]

    def sent_for(at: float) -> float:
        i = int(np.searchsorted(ends, at - 1e-6))
        return spans[min(i, len(spans) - 1)][1]

    return sent_for


@dataclass
class Score:
    caught: int = 0
    faults: int = 0
    delays: list[float] = field(default_factory=list)
    false_alarms: int = 0
    normal_s: float = 0.0

    @property
    def recall(self) -> float:
        return self.caught / self.faults if self.faults else math.nan

    @property
    def per_day(self) -> float:
        return self.false_alarms / (self.normal_s / 86_400) if self.normal_s else math.nan

    def add(self, other: Score) -> None:
        self.caught += other.caught
        self.faults += other.faults
        self.delays += other.delays
        self.false_alarms += other.false_alarms
        self.normal_s += other.normal_s


def judge(case: Case, events: list[Event]) -> Score:
    """Did ``events`` catch the case's faults, how fast, and how many false alarms otherwise."""
    score = Score()
    windows = [(f.start_s, min(f.end_s, case.seconds) + GRACE_S) for f in case.faults]
    for start, end in windows:
        score.faults += 1
        hits = [e for e in events if start <= e.at <= end]
        if hits:
            score.caught += 1
            score.delays.append(max(0.0, min(e.known for e in hits) - start))
    score.normal_s = case.seconds - sum(min(end, case.seconds) - start for start, end in windows)
    last = -math.inf
    for event in sorted(events, key=lambda e: e.at):
        if any(start <= event.at <= end for start, end in windows):
            continue
        if event.at - last >= COOLDOWN_S:
            score.false_alarms += 1
        last = event.at
    return score


def tally(runs: list[EdgeRun], events: dict[str, dict[str, list[Event]]]) -> dict[str, dict[str, Score]]:
    """Per case kind (and "all"), per detector: the summed scores."""
    table: dict[str, dict[str, Score]] = defaultdict(lambda: defaultdict(Score))
    for run in runs:
        for detector, found in events[run.case.thing].items():
            score = judge(run.case, found)
            table[run.case.kind][detector].add(score)
            table["all"][detector].add(score)
    return table


# ---- report ----------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.0f} %"


def _delay(delays: list[float]) -> str:
    return "-" if not delays else f"{statistics.median(delays):.0f} s"


def _rate(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def markdown(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A pipe table, aligned for a terminal and ready for docs (first column left, the rest right)."""
    body = [list(header), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ("-" if i == 0 else ":")) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(body[0]), rule, *(line(r) for r in body[1:])])


DETECTORS = ("edge", "rcf", "both")


def per_kind_table(table: dict[str, dict[str, Score]], runs: list[EdgeRun]) -> str:
    fans = Counter(run.case.kind for run in runs)
    header = [
        "case",
        "fans",
        *(f"recall {d}" for d in DETECTORS),
        *(f"time to detect {d}" for d in DETECTORS),
        *(f"false alarms/fan-day {d}" for d in DETECTORS),
    ]
    rows = []
    for kind in (*FAULT_CASES, *HEALTHY_CASES, "all"):
        if kind not in table:
            continue
        row = table[kind]
        rows.append(
            [
                kind,
                str(len(runs) if kind == "all" else fans[kind]),
                *(_pct(row[d].recall) for d in DETECTORS),
                *(_delay(row[d].delays) for d in DETECTORS),
                *(_rate(row[d].per_day) for d in DETECTORS),
            ]
        )
    return markdown(header, rows)


def cost_per_fan(design: str, runs: list[EdgeRun]) -> tuple[float, float, float, float]:
    """(messages per fan per day, readings per message, $ per fan per month) of ``design``, measured
    on the healthy fans, priced by docs/examples/cloud_cost.py for 1,000 fans (on-demand streams), and
    the same with Basic Ingest."""
    healthy = [r for r in runs if r.case.kind == "healthy"]
    seconds = sum(r.case.seconds for r in healthy)
    messages = sum(len(r.telemetry[design]) for r in healthy)
    readings = sum(len(parse_telemetry(p).readings) for r in healthy for _, p in r.telemetry[design])
    per_day = messages / seconds * 86_400
    per_message = readings / messages
    base = Assumptions(batch_seconds=round(86_400 / per_day), readings_per_message=per_message)
    total = sum(line.usd for line in estimate(base)) / base.fans
    basic = sum(line.usd for line in estimate(replace(base, basic_ingest=True))) / base.fans
    return per_day, per_message, total, basic


def _gaps_broken(at: np.ndarray, values: np.ndarray, gap_s: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """``at``/``values`` with a NaN wherever readings are missing (not scored while settling), so a
    line is drawn only across readings that were scored."""
    breaks = np.flatnonzero(np.diff(at) > gap_s) + 1
    return np.insert(at, breaks, np.nan), np.insert(values, breaks, np.nan)


def plot(runs: list[EdgeRun], cloud: CloudRun, path: Path) -> Path | None:
    """One fan of each kind shown: its speed (and target) with the fault shaded as scheduled and the
    edge's alerts, and beneath it the forest's score, the floor and the anomalies."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError:
        return None
    shown = [
        next(r for r in runs if r.case.kind == kind)
        for kind in ("stall", "bearing_wear", "hunting", "glitch", "stuck", "setpoints")
        if any(r.case.kind == kind for r in runs)
    ]
    figure, axes = plt.subplots(
        2 * len(shown),
        1,
        figsize=(11, 2.4 * len(shown) + 0.6),
        gridspec_kw={"height_ratios": [2, 1] * len(shown)},
    )
    floor = DetectorSettings().score_floor
    colors = {
        "rpm": "#1f4e79",
        "target": "#7f7f7f",
        "fault": "#f4b183",
        "alarm": "#c00000",
        "score": "#385723",
    }
    for n, run in enumerate(shown):
        top, bottom = axes[2 * n], axes[2 * n + 1]
        bottom.sharex(top)
        readings = [r for _, p in run.telemetry[DEFAULT] for r in parse_telemetry(p).readings]
        minutes = np.array([_relative(r.ts) / 60 for r in readings])
        top.plot(minutes, [r.rpm for r in readings], lw=0.7, color=colors["rpm"])
        if run.case.setpoints:
            targets = [np.nan if r.target_rpm is None else r.target_rpm for r in readings]
            top.plot(minutes, targets, lw=0.8, ls="--", color=colors["target"])
        for ax in (top, bottom):
            for f in run.case.faults:
                end = min(f.end_s, run.case.seconds)
                ax.axvspan(f.start_s / 60, end / 60, color=colors["fault"], alpha=0.35, lw=0)
        for at, _kind in run.alerts:
            top.axvline(at / 60, color=colors["alarm"], lw=0.9)
        top.ticklabel_format(axis="y", useOffset=False, style="plain")
        top.set_ylabel("rpm")
        top.tick_params(labelbottom=False)
        top.set_title(f"{run.case.thing}: {run.case.kind.replace('_', ' ')}", fontsize=9, loc="left")
        if cloud.scores.get(run.case.thing):
            stamps, values = _gaps_broken(*np.array(cloud.scores[run.case.thing]).T)
            bottom.plot(stamps / 60, values, lw=0.6, color=colors["score"])
        bottom.axhline(floor, color=colors["alarm"], lw=0.6, ls=":")
        found = [
            (_relative(a.ts) / 60, a.score or 0.0) for a, _ in cloud.anomalies if a.thing == run.case.thing
        ]
        if found:
            bottom.plot(*zip(*found, strict=True), "v", color=colors["alarm"], ms=4)
        bottom.set_ylim(0, 8.5)
        bottom.set_ylabel("score")
    axes[-1].set_xlabel("minutes")
    legend = [
        Line2D([], [], color=colors["rpm"], lw=1, label="rpm"),
        Line2D([], [], color=colors["target"], lw=1, ls="--", label="commanded speed"),
        Patch(color=colors["fault"], alpha=0.35, label="fault (as scheduled)"),
        Line2D([], [], color=colors["alarm"], lw=1, label="edge alert"),
        Line2D([], [], color=colors["score"], lw=1, label="forest score"),
        Line2D([], [], color=colors["alarm"], lw=1, ls=":", label=f"floor {floor:g}"),
        Line2D([], [], color=colors["alarm"], marker="v", lw=0, label="RCF anomaly"),
    ]
    figure.legend(handles=legend, loc="upper center", ncol=len(legend), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / figure.get_figheight()))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 fans per kind, short runs")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--plot", type=Path, default=OUT / "detection.png", help="where to draw a few fans")
    args = parser.parse_args()
    if args.quick:
        sizes = {"per_kind": 1, "fault_minutes": 20, "healthy": 1, "healthy_minutes": 20}
    else:
        sizes = {"per_kind": 6, "fault_minutes": 30, "healthy": 6, "healthy_minutes": 180}
    cases = fleet(**sizes, seed=args.seed)
    fan_hours = sum(c.seconds for c in cases) / 3600
    progress(f"{len(cases)} simulated fans, {fan_hours:.0f} fan-hours, through {len(DESIGNS)} edge filters")
    with multiprocessing.Pool(args.processes) as pool:
        runs = pool.map(run_edge, cases, chunksize=1)
        pool.close()
        pool.join()  # so that their CPU time is counted below
    clouds: dict[str, CloudRun] = {}
    for design in DESIGNS:
        if design in SAME_SERIES:
            continue
        sent = sum(len(r.telemetry[design]) for r in runs)
        progress(f"the detector: {design}: {sent:,} messages")
        clouds[design] = run_cloud(runs, design)
    results: dict[str, dict[str, dict[str, Score]]] = {}
    for design in DESIGNS:
        source = SAME_SERIES.get(design, design)
        timing = {r.case.thing: carrier(r, design) for r in runs} if design in SAME_SERIES else None
        results[design] = tally(runs, events_of(runs, clouds[source], sent_in=timing))

    settings = DetectorSettings()
    default = results[DEFAULT]
    counts = clouds[DEFAULT].counts
    normal_days = default["all"]["rcf"].normal_s / 86_400
    print(
        f"\nDETECTION by case, {DEFAULT}: forest {settings.num_trees} trees x {settings.sample_size}, "
        f"shingle {settings.shingle_size}, floor {settings.score_floor:g}, "
        f"settle {settings.settle_seconds:g} s\n"
        f"{len(runs)} fans, {fan_hours:.0f} fan-hours, {counts['readings']:,} readings "
        f"({counts['warming_up']:,} while forests warmed up, {counts['settling']:,} settling); "
        f"{normal_days:.1f} fan-days of normal running\n"
    )
    print(per_kind_table(default, runs))
    print("\nDATA DESIGNS (cost: docs/examples/cloud_cost.py, 1,000 fans, on-demand streams)\n")
    rows = []
    for design in DESIGNS:
        per_day, per_message, total, basic = cost_per_fan(design, runs)
        row = results[design]["all"]
        rows.append(
            [
                design,
                f"{per_day:,.0f}",
                f"{per_message:.1f}",
                f"{total:.3f}",
                f"{basic:.3f}",
                _pct(row["rcf"].recall),
                _pct(row["both"].recall),
                _delay(row["rcf"].delays),
                _rate(row["rcf"].per_day),
            ]
        )
    header = [
        "design",
        "msgs/fan/day",
        "readings/msg",
        "$/fan/month",
        "$ with Basic Ingest",
        "recall rcf",
        "recall both",
        "time to detect rcf",
        "false alarms/fan-day rcf",
    ]
    print(markdown(header, rows))
    picture = plot(runs, clouds[DEFAULT], args.plot)
    if picture:
        print(f"\nplot: {picture}")
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime
    progress(f"done: {cpu / 60:.1f} CPU-minutes in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
