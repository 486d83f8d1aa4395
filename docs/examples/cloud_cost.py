"""What the fanwatch cloud stack costs per month, worked out line by line from stated assumptions.

Run ``python docs/examples/cloud_cost.py`` (add ``--fans 100000 --lean``, ``--batch-seconds 10``,
``--provisioned 1``, ``--basic-ingest``, ``--scale``…); docs/cloud.md shows its output for 1,000
fans and docs/scale.md the capacity model (``capacity``) and the levers of ``LEAN`` for 1k, 10k and
100k fans. Prices are AWS list prices for us-east-1 as written in ``PRICES`` (check
https://aws.amazon.com/pricing before relying on them); free tiers are ignored.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = [
    "LEAN",
    "LIMITS",
    "PRICES",
    "Assumptions",
    "Capacity",
    "Engine",
    "FanState",
    "Lake",
    "Line",
    "Mode",
    "capacity",
    "crossover",
    "estimate",
    "flink_cheaper",
    "one_container",
    "per_fan",
    "scale_table",
    "stack_parameters",
    "state_units",
]

HOURS = 730.0  # a month
SECONDS = HOURS * 3600

#: USD list prices, us-east-1.
PRICES = {
    "iot_connect_minute": 0.08 / 1e6,
    "iot_message_5kb": 1.00 / 1e6,
    "iot_rule": 0.15 / 1e6,
    "iot_action": 0.15 / 1e6,
    "greengrass_core_month": 0.16,
    "kds_on_demand_stream_hour": 0.04,
    "kds_on_demand_ingest_gb": 0.08,
    "kds_on_demand_read_gb": 0.04,
    "kds_shard_hour": 0.015,
    "kds_put_unit_25kb": 0.014 / 1e6,
    "lambda_arm_gb_s": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "ddb_write": 0.625 / 1e6,
    "ddb_read": 0.125 / 1e6,
    "ddb_wcu_hour": 0.00065,  # provisioned capacity
    "ddb_rcu_hour": 0.00013,
    "s3_put": 0.005 / 1000,
    "s3_gb_month": 0.023,
    "firehose_ingest_gb_5kb": 0.029,
    "firehose_convert_gb": 0.018,
    "firehose_partition_gb": 0.020,
    "firehose_object": 0.005 / 1000,
    "cw_dashboard": 3.00,
    "cw_alarm": 0.10,
    "cw_metric": 0.30,
    "cw_logs_gb": 0.50,
    "kms_key": 1.00,
    "kms_request": 0.03 / 10_000,
    "s3_get": 0.0004 / 1000,
    "flink_kpu_hour": 0.11,
    "flink_storage_gb_month": 0.10,  # running application storage, 50 GB per KPU
}

#: Service limits the capacity model sizes against.
LIMITS = {
    "shard_records_per_s": 1000,  # Kinesis: writes per shard
    "shard_kb_per_s": 1000,  # Kinesis: 1 MB/s in per shard (2 MB/s out, shared by the two consumers)
    "parallelization": 10,  # concurrent detector batches per shard (event source mapping)
    "lambda_max_mb": 10240,
    "flink_kpu_mb": 4096,
}


class Mode(StrEnum):
    """Capacity mode of the streams or the fan state table; AUTO takes the cheaper for the fleet."""

    AUTO = "auto"
    ON_DEMAND = "on-demand"
    PROVISIONED = "provisioned"


class FanState(StrEnum):
    """How the detector keeps each fan's bookkeeping in DynamoDB."""

    READ_WRITE = "read-write"  # a consistent read and a conditional write per fan per batch
    CACHED = "cached"  # the container keeps the fan's state; a conditional write per fan per batch,
    # a read only when the container does not hold the fan's current version (a miss)


class Lake(StrEnum):
    """How Firehose lays out the Parquet lake: the stack's LakeLayout parameter, same values."""

    BY_THING = "day+thing"  # dynamic partitioning: one object per thing per flush, charged per GB
    BY_DAY = "day"  # a timestamp prefix (no dynamic partitioning); Athena partition projection on dt


class Engine(StrEnum):
    """What runs the forests."""

    LAMBDA = "lambda"  # the detector Lambda behind the event source mapping (the stack)
    FLINK = "flink"  # Managed Service for Apache Flink, keyed state per fan (RocksDB)


@dataclass(frozen=True)
class Assumptions:
    """The fleet and how it is run; every figure of the estimate follows from these."""

    fans: int = 1000
    fans_per_device: int = 2
    batch_seconds: int = 60  # a telemetry message carries this many 1 Hz readings
    # readings a message carries, if not every reading of its batch_seconds (an edge deadband)
    readings_per_message: float | None = None
    basic_ingest: bool = False  # devices publish telemetry to $aws/rules/...: no IoT messaging charge
    bytes_per_reading: int = 110  # one reading in the JSON message
    parquet_bytes_per_reading: float = 12.0  # in the lake, after Snappy
    streams: Mode = Mode.ON_DEMAND
    shards: int | None = None  # provisioned shards per stream; None: as many as capacity() needs
    fan_state: FanState = FanState.READ_WRITE
    state_table: Mode = Mode.ON_DEMAND  # provisioned: capacity units sized for the steady rate + headroom
    lake: Lake = Lake.BY_THING
    engine: Engine = Engine.LAMBDA
    detector_points_per_s: float = 3300.0  # measured: bench/detector.py, handler wall time, 100 x 256
    detector_memory_gb: float = 2.0
    detector_utilization: float = 0.7  # busy share a container is sized for (headroom for bursts)
    ready_forest_mb: float = 2.18  # fanwatch.rcf.ready_forest_bytes() in MiB: a forest ready to score
    max_resident: int = 1000  # RCF_MAX_RESIDENT: models a container keeps, ready or compact
    load_ms: float = 7.0  # restore a checkpoint (version 2) into the bank
    dump_ms: float = 7.5  # write a forest into a checkpoint
    s3_get_ms: float = 20.0  # read a checkpoint from S3 (same region)
    # S3 requests the model store keeps in flight (MODEL_REQUESTS_IN_FLIGHT): a batch's reloads wait
    # for the network together, so a miss costs its share of the wait, not all of it
    model_requests: int = 16
    checkpoint_minutes: float = 15.0
    checkpoint_kb: float = 150.0
    checkpoint_versions_days: float = 7.0
    lake_buffer_seconds: int = 900
    lake_buffer_mb: int = 128
    lambda_log_gb: float = 2.0
    # Flink: scores per second per KPU (1 vCPU) assumed equal to the Lambda's; not measured here
    flink_points_per_s: float = 3300.0

    @property
    def devices(self) -> int:
        return math.ceil(self.fans / self.fans_per_device)

    @property
    def messages(self) -> float:
        return self.fans * SECONDS / self.batch_seconds

    @property
    def per_message(self) -> float:
        """Readings in one telemetry message."""
        return self.batch_seconds if self.readings_per_message is None else self.readings_per_message

    @property
    def readings(self) -> float:
        """Readings the fleet sends in a month."""
        return self.messages * self.per_message

    @property
    def message_kb(self) -> float:
        return (150 + self.per_message * self.bytes_per_reading) / 1000

    @property
    def provisioned_shards(self) -> int:
        """Shards per stream if the streams are provisioned, else 0."""
        if self.streams is Mode.ON_DEMAND:
            return 0
        shards = self.shards or capacity(self).shards
        if self.streams is Mode.PROVISIONED:
            return shards
        on_demand = sum(_streams(replace(self, streams=Mode.ON_DEMAND), 0))
        provisioned = sum(_streams(self, shards))
        return shards if provisioned < on_demand else 0


#: The stack with every cost lever (docs/scale.md): telemetry by Basic Ingest, streams provisioned
#: while cheaper, fan state cached between batches, the lake partitioned by day only.
LEAN = Assumptions(
    basic_ingest=True,
    streams=Mode.AUTO,
    fan_state=FanState.CACHED,
    state_table=Mode.AUTO,
    lake=Lake.BY_DAY,
)


@dataclass(frozen=True)
class Capacity:
    """What a fleet needs of each part, and why (every figure per second unless named otherwise)."""

    messages: float  # telemetry messages into the stream
    kb: float  # telemetry KB into the stream
    readings: float  # readings the forests score
    shards_by_records: int
    shards_by_bytes: int
    shards_by_detector: int  # concurrent detector batches / the parallelization a shard allows
    shards: int
    containers: int  # detector containers busy at once (the function's concurrency)
    parallelization: int  # concurrent batches per shard the mapping needs
    ready_per_container: int  # forests a container keeps ready in half its memory
    miss: float  # share of messages whose fan's current forest is not ready in the container
    reload_s: float  # time a miss costs the container
    container_points_per_s: float  # readings a container scores, misses included
    checkpoint_puts: float
    checkpoint_gets: float
    state_reads: float  # DynamoDB
    state_writes: float
    lake_gb_day: float  # Parquet added per day
    lake_objects_day: float
    kpus: int  # Flink only

    @property
    def sticky(self) -> bool:
        """One container carries the fleet: each fan's forest stays where it was learned."""
        return self.containers == 1


def capacity(a: Assumptions) -> Capacity:
    """Sizes the streams, the detector and the stores for the fleet ``a`` describes.

    The detector's containers are not sticky to fans: with more than one busy at a time a fan's next
    batch finds its current forest in the container that learned it only 1 time in ``containers``,
    and that forest must have been written to S3 after every batch (else the learning since the last
    checkpoint is lost when the fan moves). With one container the fleet's forests stay where they
    are learned; a miss is then a fan beyond the ready forests (a thaw from memory and a freeze) or
    beyond ``max_resident`` (a load from S3 and a write back).
    """
    messages = a.fans / a.batch_seconds
    kb = messages * a.message_kb
    readings = messages * a.per_message
    by_records = math.ceil(messages / LIMITS["shard_records_per_s"])
    by_bytes = math.ceil(kb / LIMITS["shard_kb_per_s"])
    ready = max(1, int(a.detector_memory_gb * 1024 * 0.5 / a.ready_forest_mb))
    per_message_s = a.per_message / a.detector_points_per_s
    s3_wait_ms = a.s3_get_ms / a.model_requests
    containers, miss, reload_s = 1, 0.0, 0.0
    for _ in range(20):  # misses slow the containers; more containers make more misses
        if containers == 1:
            if a.fans <= ready:
                miss, reload_s = 0.0, 0.0
            elif a.fans <= a.max_resident:  # LRU over a fleet that cycles: every fan thaws, freezes
                miss, reload_s = 1.0, (a.load_ms + a.dump_ms) / 1000
            else:
                miss, reload_s = 1.0, (s3_wait_ms + a.load_ms + a.dump_ms) / 1000
        else:
            miss = 1 - min(1 / containers, ready / a.fans)
            reload_s = (s3_wait_ms + a.load_ms + a.dump_ms) / 1000  # read it, write it after the batch
        busy = messages * (per_message_s + miss * reload_s)  # container-seconds per second
        needed = max(1, math.ceil(busy / a.detector_utilization))
        if needed == containers:
            break
        containers = needed
    parallelization = min(LIMITS["parallelization"], math.ceil(containers / max(by_records, by_bytes)))
    by_detector = math.ceil(containers / LIMITS["parallelization"])
    shards = max(by_records, by_bytes, by_detector)
    if a.engine is Engine.FLINK:  # keyed state: each fan's forest lives with its key, no misses
        kpu_points = a.flink_points_per_s * a.detector_utilization
        busy = readings / kpu_points + messages * (a.load_ms + a.dump_ms) / 1000  # RocksDB: state per access
        kpus = 1 + math.ceil(busy)  # one more KPU: the application's orchestration
        by_detector = 0
        shards = max(by_records, by_bytes)
        containers, miss, reload_s, parallelization = 0, 0.0, 0.0, 1
        puts = a.fans / (a.checkpoint_minutes * 60)  # incremental checkpoints, about a forest per interval
        gets = 0.0
    else:
        kpus = 0
        moved = containers > 1
        # several containers: each fan's forest is written after every batch, its next one may go elsewhere
        puts = messages if moved else a.fans / (a.checkpoint_minutes * 60)
        if not moved and a.fans > a.max_resident:
            puts += messages * miss
        gets = messages * miss if (moved or a.fans > a.max_resident) else 0.0
    state_miss = miss if containers > 1 else 0.0
    lake_gb_day = readings * 86_400 * a.parquet_bytes_per_reading / 1e9
    flushes = 86_400 / a.lake_buffer_seconds
    if a.lake is Lake.BY_THING:
        lake_objects = 2 * a.devices * flushes  # readings and events, per thing per flush
    else:  # per flush, and one more each time the buffer fills
        lake_objects = 2 * flushes * max(1, math.ceil(lake_gb_day * 1000 / flushes / a.lake_buffer_mb))
    return Capacity(
        messages=messages,
        kb=kb,
        readings=readings,
        shards_by_records=by_records,
        shards_by_bytes=by_bytes,
        shards_by_detector=by_detector,
        shards=shards,
        containers=containers,
        parallelization=parallelization,
        ready_per_container=ready,
        miss=miss,
        reload_s=reload_s,
        container_points_per_s=a.per_message / (per_message_s + miss * reload_s),
        checkpoint_puts=puts,
        checkpoint_gets=gets,
        state_reads=messages if a.fan_state is FanState.READ_WRITE else messages * state_miss,
        state_writes=messages,
        lake_gb_day=lake_gb_day,
        lake_objects_day=lake_objects,
        kpus=kpus,
    )


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    usd: float


def _streams(a: Assumptions, shards: int) -> list[float]:
    """The two streams' charges: provisioned with ``shards`` each, or on-demand (``shards`` 0)."""
    p = PRICES
    if shards:
        return [
            2 * shards * HOURS * p["kds_shard_hour"],
            a.messages * math.ceil(a.message_kb / 25) * p["kds_put_unit_25kb"],
        ]
    gb = a.messages * a.message_kb / 1e6
    return [
        2 * HOURS * p["kds_on_demand_stream_hour"],
        gb * p["kds_on_demand_ingest_gb"],
        2 * gb * p["kds_on_demand_read_gb"],
    ]


def state_units(a: Assumptions) -> tuple[int, int] | None:
    """The fan state table's provisioned (read, write) units, or None: on demand (AUTO: the cheaper).

    Writes: the steady rate with ``1 / detector_utilization`` headroom. Reads: the same, and at
    least ``fans / 300``, so that a new container reading every fan within a minute stays inside
    DynamoDB's burst capacity (5 minutes of unused units)."""
    c = capacity(a)
    units = (
        max(math.ceil(c.state_reads / a.detector_utilization), math.ceil(a.fans / 300)),
        max(1, math.ceil(c.state_writes / a.detector_utilization)),
    )
    if a.state_table is Mode.ON_DEMAND:
        return None
    if a.state_table is Mode.AUTO and _state_on_demand(c) <= _state_provisioned(units):
        return None
    return units


def _state_on_demand(c: Capacity) -> float:
    return (c.state_reads * PRICES["ddb_read"] + c.state_writes * PRICES["ddb_write"]) * SECONDS


def _state_provisioned(units: tuple[int, int]) -> float:
    return HOURS * (units[0] * PRICES["ddb_rcu_hour"] + units[1] * PRICES["ddb_wcu_hour"])


def _state_table(a: Assumptions, c: Capacity) -> float:
    """The fan state table's charge: per request on demand, or the capacity units of state_units."""
    units = state_units(a)
    return _state_on_demand(c) if units is None else _state_provisioned(units)


def estimate(a: Assumptions, prices: dict[str, float] = PRICES) -> list[Line]:
    """The monthly bill, one line per charge."""
    p = prices
    c = capacity(a)
    gb = a.messages * a.message_kb / 1e6
    units_5kb = math.ceil(a.message_kb / 5)
    readings = a.readings
    month = SECONDS  # per-second figures of the capacity model, over a month
    messaging = 0.0 if a.basic_ingest else a.messages * units_5kb * p["iot_message_5kb"]
    lines = [
        Line("IoT Core", "connectivity", a.devices * HOURS * 60 * p["iot_connect_minute"]),
        Line(
            "IoT Core",
            "messages: none, Basic Ingest" if a.basic_ingest else f"messages ({units_5kb} x 5 KB each)",
            messaging,
        ),
        Line(
            "IoT Core", "rules triggered and Kinesis actions", a.messages * (p["iot_rule"] + p["iot_action"])
        ),
        Line("Greengrass", "active core devices", a.devices * p["greengrass_core_month"]),
    ]
    shards = a.provisioned_shards
    streams = _streams(a, shards)
    if shards:
        lines += [
            Line("Kinesis", f"2 streams x {shards} shard(s)", streams[0]),
            Line("Kinesis", "PUT payload units", streams[1]),
        ]
    else:
        lines += [
            Line("Kinesis", "2 on-demand streams", streams[0]),
            Line("Kinesis", "ingest", streams[1]),
            Line("Kinesis", "reads (detector and Firehose)", streams[2]),
        ]
    if a.engine is Engine.FLINK:
        lines += [
            Line("Flink", f"{c.kpus} KPUs (1 vCPU, 4 GB each)", c.kpus * HOURS * p["flink_kpu_hour"]),
            Line(
                "Flink",
                "running application storage (50 GB a KPU)",
                c.kpus * 50 * p["flink_storage_gb_month"],
            ),
        ]
    else:
        busy_s = readings / c.container_points_per_s
        lines += [
            Line("Lambda", "detector compute", busy_s * a.detector_memory_gb * p["lambda_arm_gb_s"]),
            Line("Lambda", "detector requests", a.messages / 10 * p["lambda_request"]),
        ]
    state_item = (
        "fan state: a write per message, reads on a miss"
        if a.fan_state is FanState.CACHED
        else "fan state: one read and one write per message"
    )
    lines.append(Line("DynamoDB", state_item, _state_table(a, c)))
    kept_gb = a.fans * 24 * 60 / a.checkpoint_minutes * a.checkpoint_versions_days * a.checkpoint_kb / 1e6
    lake_gb = readings * a.parquet_bytes_per_reading / 1e9
    lake_objects = c.lake_objects_day * HOURS / 24
    if a.engine is Engine.LAMBDA:
        lines += [
            Line(
                "S3",
                "forest checkpoints (PUT)"
                if c.sticky
                else "forest checkpoints (PUT), every batch: fans move",
                c.checkpoint_puts * month * p["s3_put"],
            ),
            Line("S3", "forest checkpoints kept (versions)", kept_gb * p["s3_gb_month"]),
        ]
        if c.checkpoint_gets:
            lines.append(Line("S3", "forest reloads (GET)", c.checkpoint_gets * month * p["s3_get"]))
    lines += [
        Line(
            "Firehose", "ingest (5 KB steps)", a.messages * units_5kb * 5 / 1e6 * p["firehose_ingest_gb_5kb"]
        ),
        Line("Firehose", "Parquet conversion", gb * p["firehose_convert_gb"]),
    ]
    if a.lake is Lake.BY_THING:
        lines.append(
            Line(
                "Firehose",
                "dynamic partitioning",
                gb * p["firehose_partition_gb"] + lake_objects * p["firehose_object"],
            )
        )
    lines += [
        Line("S3", "lake objects (PUT)", lake_objects * p["s3_put"]),
        Line("S3", "lake storage added this month", lake_gb * p["s3_gb_month"]),
        Line(
            "CloudWatch",
            "dashboard, 9 alarms, 12 custom metrics",
            p["cw_dashboard"] + 9 * p["cw_alarm"] + 12 * p["cw_metric"],
        ),
        Line("CloudWatch", "Lambda logs", a.lambda_log_gb * p["cw_logs_gb"]),
        Line("KMS", "one key and its requests", p["kms_key"] + 2_000_000 * p["kms_request"]),
    ]
    return lines


def crossover(a: Assumptions, *, largest: int = 1_000_000) -> int | None:
    """The smallest fleet (up to ``largest`` fans) on which on-demand streams cost less than the
    shards ``capacity`` sizes; None: provisioned streams are cheaper for every steady fleet."""
    for fans in sorted({*range(100, 10_000, 100), *range(10_000, largest + 1, 10_000)}):
        at = replace(a, fans=fans, shards=None)
        if sum(_streams(at, 0)) < sum(_streams(at, capacity(at).shards)):
            return fans
    return None


def per_fan(a: Assumptions) -> float:
    """Cost per fan per month."""
    return sum(line.usd for line in estimate(a)) / a.fans


def one_container(a: Assumptions) -> int:
    """The largest fleet one detector container carries (beyond it fans move between containers)."""
    low, high = 1, 1_000_000
    while low < high:
        mid = (low + high + 1) // 2
        if capacity(replace(a, fans=mid)).containers == 1:
            low = mid
        else:
            high = mid - 1
    return low


def flink_cheaper(a: Assumptions) -> int:
    """The smallest fleet (in steps of 100 fans) on which Flink with keyed state costs less than Lambda."""
    fans = 100
    while per_fan(replace(a, fans=fans, engine=Engine.FLINK)) >= per_fan(replace(a, fans=fans)):
        fans += 100
    return fans


def scale_table(design: Assumptions, fleets: tuple[int, ...] = (1_000, 10_000, 100_000)) -> list[str]:
    """The capacity model and cost per fan for each fleet size (docs/scale.md, README)."""
    rows = [
        "| | " + " | ".join(f"{n:,} fans" for n in fleets) + " |",
        "|---|" + "---:|" * len(fleets),
    ]
    sized = [replace(design, fans=n) for n in fleets]
    caps = [capacity(a) for a in sized]
    flink = [replace(a, engine=Engine.FLINK) for a in sized]

    def row(name: str, values: list[str]) -> None:
        rows.append(f"| {name} | " + " | ".join(values) + " |")

    row("messages/s after edge batching", [f"{c.messages:,.0f}" for c in caps])
    row("KB/s into the telemetry stream", [f"{c.kb:,.0f}" for c in caps])
    row(
        "shards by records / bytes / detector",
        [f"{c.shards_by_records} / {c.shards_by_bytes} / {c.shards_by_detector}" for c in caps],
    )
    row("detector containers busy at once (Lambda)", [f"{c.containers:,}" for c in caps])
    row(
        "forests ready per container / fans",
        [f"{c.ready_per_container} / {a.fans:,}" for a, c in zip(sized, caps, strict=True)],
    )
    row("messages whose forest is not ready", [f"{c.miss:.0%}" for c in caps])
    row("checkpoint PUTs/s (Lambda)", [f"{c.checkpoint_puts:,.1f}" for c in caps])
    row("lake GB/day (Parquet)", [f"{c.lake_gb_day:,.1f}" for c in caps])
    row("Lambda: $/fan/month", [f"{per_fan(a):.3f}" for a in sized])
    row("Flink (keyed state): KPUs", [f"{capacity(a).kpus}" for a in flink])
    row("Flink: $/fan/month", [f"{per_fan(a):.3f}" for a in flink])
    return rows


def stack_parameters(a: Assumptions) -> list[str]:
    """The stack's CloudFormation parameter overrides (and the edge's setting) for fleet ``a``."""
    c = capacity(a)
    shards = a.provisioned_shards
    overrides = [f"StreamMode={'PROVISIONED' if shards else 'ON_DEMAND'}"]
    if shards:
        overrides.append(f"ShardCount={shards}")
    overrides.append(f"DetectorParallelization={c.parallelization}")
    # a cached state saves a read per message while one container holds the fleet; with several,
    # each fan that moves costs a retried batch
    overrides.append(f"FanStateCache={'true' if a.fan_state is FanState.CACHED and c.sticky else 'false'}")
    units = state_units(a)
    if units is not None:
        overrides.append(f"FanStateReadUnits={units[0]} FanStateWriteUnits={units[1]}")
    if a.lake is not Lake.BY_THING:
        overrides.append(f"LakeLayout={a.lake.value}")
    edge = 'fanwatch.EdgeFilter: {"basicIngestRule": "fanwatch_telemetry"}' if a.basic_ingest else ""
    return [" ".join(overrides), *([edge] if edge else [])]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fans", type=int, default=1000)
    parser.add_argument("--batch-seconds", type=int, default=60)
    parser.add_argument("--lean", action="store_true", help="every cost lever of docs/scale.md (LEAN)")
    parser.add_argument("--streams", choices=[m.value for m in Mode], help="Kinesis capacity mode")
    parser.add_argument("--provisioned", type=int, default=0, metavar="SHARDS", help="provisioned shards")
    parser.add_argument("--basic-ingest", action="store_true", help="telemetry on $aws/rules/... topics")
    parser.add_argument("--engine", choices=[e.value for e in Engine], help="what runs the forests")
    parser.add_argument("--scale", action="store_true", help="the capacity table for 1k, 10k, 100k fans")
    parser.add_argument("--parameters", action="store_true", help="the stack's parameters for this fleet")
    args = parser.parse_args(argv)
    a = replace(LEAN if args.lean else Assumptions(), fans=args.fans, batch_seconds=args.batch_seconds)
    if args.basic_ingest:
        a = replace(a, basic_ingest=True)
    if args.streams:
        a = replace(a, streams=Mode(args.streams))
    if args.provisioned:
        a = replace(a, streams=Mode.PROVISIONED, shards=args.provisioned)
    if args.engine:
        a = replace(a, engine=Engine(args.engine))
    if args.parameters:
        print("\n".join(stack_parameters(a)))
        return
    if args.scale:
        print("\n".join(scale_table(a)))
        print(
            f"\none detector container carries up to {one_container(a):,} fans; beyond, keyed state "
            f"(Flink) costs less than Lambda from {flink_cheaper(a):,} fans"
        )
        return
    lines = estimate(a)
    c = capacity(a)
    mode = f"provisioned ({a.provisioned_shards} shard(s) each)" if a.provisioned_shards else "on-demand"
    print(
        f"{a.fans:,} fans on {a.devices:,} devices, one message per fan every {a.batch_seconds} s "
        f"({a.message_kb:.1f} KB), streams {mode}"
    )
    for line in lines:
        print(f"  {line.service:<11} {line.item:<48} {line.usd:>9,.2f}")
    total = sum(line.usd for line in lines)
    print(f"  {'total':<60} {total:>9,.2f} USD/month  ({total / a.fans:.3f} per fan)")
    print(
        f"capacity: {c.messages:,.1f} messages/s ({c.kb:,.0f} KB/s), shards {c.shards} (records "
        f"{c.shards_by_records}, bytes {c.shards_by_bytes}, detector {c.shards_by_detector}), "
        + (
            f"Flink {c.kpus} KPUs"
            if a.engine is Engine.FLINK
            else f"detector containers {c.containers} x {a.detector_memory_gb:g} GB "
            f"({c.ready_per_container} forests ready each, {c.miss:.0%} of messages miss, "
            f"{c.container_points_per_s:,.0f} readings/s each)"
        )
        + f", lake {c.lake_gb_day:,.1f} GB/day"
    )


if __name__ == "__main__":
    main()
