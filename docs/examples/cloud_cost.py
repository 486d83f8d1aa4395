"""What the fanwatch cloud stack costs per month, worked out line by line from stated assumptions.

Run ``python docs/examples/cloud_cost.py`` (add ``--fans 5000 --batch-seconds 10 --provisioned 1
--basic-ingest``…);
docs/cloud.md shows its output for 1,000 fans. Prices are AWS list prices for us-east-1 as written
in ``PRICES`` (check https://aws.amazon.com/pricing before relying on them); free tiers are ignored.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace

__all__ = ["PRICES", "Assumptions", "Line", "estimate"]

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
}


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
    provisioned_shards: int = 0  # 0: on-demand streams (the default), else shards per stream
    detector_points_per_s: float = 3300.0  # measured: bench/detector.py, handler wall time, 100 x 256
    detector_memory_gb: float = 2.0
    checkpoint_minutes: float = 15.0
    checkpoint_kb: float = 150.0
    checkpoint_versions_days: float = 7.0
    lake_buffer_seconds: int = 900
    lambda_log_gb: float = 2.0

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


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    usd: float


def estimate(a: Assumptions, prices: dict[str, float] = PRICES) -> list[Line]:
    """The monthly bill, one line per charge."""
    p = prices
    gb = a.messages * a.message_kb / 1e6
    units_5kb = math.ceil(a.message_kb / 5)
    readings = a.readings
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
    if a.provisioned_shards:
        lines += [
            Line(
                "Kinesis",
                f"2 streams x {a.provisioned_shards} shard(s)",
                2 * a.provisioned_shards * HOURS * p["kds_shard_hour"],
            ),
            Line(
                "Kinesis",
                "PUT payload units",
                a.messages * math.ceil(a.message_kb / 25) * p["kds_put_unit_25kb"],
            ),
        ]
    else:
        lines += [
            Line("Kinesis", "2 on-demand streams", 2 * HOURS * p["kds_on_demand_stream_hour"]),
            Line("Kinesis", "ingest", gb * p["kds_on_demand_ingest_gb"]),
            Line("Kinesis", "reads (detector and Firehose)", 2 * gb * p["kds_on_demand_read_gb"]),
        ]
    detector_s = readings / a.detector_points_per_s
    lines += [
        Line("Lambda", "detector compute", detector_s * a.detector_memory_gb * p["lambda_arm_gb_s"]),
        Line("Lambda", "detector requests", a.messages / 10 * p["lambda_request"]),
        Line(
            "DynamoDB",
            "fan state: one read and one write per message",
            a.messages * (p["ddb_read"] + p["ddb_write"]),
        ),
    ]
    checkpoints = a.fans * HOURS * 60 / a.checkpoint_minutes
    kept_gb = checkpoints / (HOURS / 24) * a.checkpoint_versions_days * a.checkpoint_kb / 1e6
    lake_objects = 2 * a.devices * SECONDS / a.lake_buffer_seconds  # readings and events, per thing per flush
    lake_gb = readings * a.parquet_bytes_per_reading / 1e9
    lines += [
        Line("S3", "forest checkpoints (PUT)", checkpoints * p["s3_put"]),
        Line("S3", "forest checkpoints kept (versions)", kept_gb * p["s3_gb_month"]),
        Line(
            "Firehose", "ingest (5 KB steps)", a.messages * units_5kb * 5 / 1e6 * p["firehose_ingest_gb_5kb"]
        ),
        Line("Firehose", "Parquet conversion", gb * p["firehose_convert_gb"]),
        Line(
            "Firehose",
            "dynamic partitioning",
            gb * p["firehose_partition_gb"] + lake_objects * p["firehose_object"],
        ),
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fans", type=int, default=1000)
    parser.add_argument("--batch-seconds", type=int, default=60)
    parser.add_argument("--provisioned", type=int, default=0, metavar="SHARDS")
    parser.add_argument("--basic-ingest", action="store_true", help="telemetry on $aws/rules/... topics")
    args = parser.parse_args(argv)
    a = replace(
        Assumptions(),
        fans=args.fans,
        batch_seconds=args.batch_seconds,
        provisioned_shards=args.provisioned,
        basic_ingest=args.basic_ingest,
    )
    lines = estimate(a)
    print(
        f"{a.fans:,} fans on {a.devices:,} devices, one message per fan every {a.batch_seconds} s "
        f"({a.message_kb:.1f} KB), streams {'provisioned' if a.provisioned_shards else 'on-demand'}"
    )
    for line in lines:
        print(f"  {line.service:<11} {line.item:<48} {line.usd:>9,.2f}")
    total = sum(line.usd for line in lines)
    print(f"  {'total':<60} {total:>9,.2f} USD/month  ({total / a.fans:.3f} per fan)")


if __name__ == "__main__":
    main()
