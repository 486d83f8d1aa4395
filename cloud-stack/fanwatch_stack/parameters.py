"""The stack's CloudFormation parameters: every knob an operator turns without editing code.

They are CloudFormation parameters (not CDK context) so that people deploying the synthesized
template with plain CloudFormation set them the same way as ``cdk deploy --parameters``.
"""

from __future__ import annotations

from aws_cdk import CfnCondition, CfnParameter, Fn, Stack
from constructs import Construct

from fanwatch.cloud.lake import LakeLayout
from fanwatch.cloud.settings import DEFAULT_COOLDOWN_MINUTES, DetectorSettings

__all__ = ["Settings"]

#: The retention values CloudWatch Logs accepts.
LOG_RETENTION_DAYS = [
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
]


class Settings(Construct):
    """The parameters, read as tokens by the other constructs."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)

        def number(name: str, default: float, description: str, *, low: float, high: float) -> CfnParameter:
            return CfnParameter(
                stack,
                name,
                type="Number",
                default=default,
                min_value=low,
                max_value=high,
                description=description,
            )

        self.stream_mode = CfnParameter(
            stack,
            "StreamMode",
            type="String",
            default="ON_DEMAND",
            allowed_values=["ON_DEMAND", "PROVISIONED"],
            description="Kinesis capacity mode of both streams",
        )
        self.shard_count = number(
            "ShardCount", 1, "Shards of each stream when StreamMode is PROVISIONED", low=1, high=500
        )
        self.provisioned = CfnCondition(
            stack,
            "StreamsProvisioned",
            expression=Fn.condition_equals(self.stream_mode.value_as_string, "PROVISIONED"),
        )
        # the fan state table: on demand (0) or capacity units for a steady fleet (docs/scale.md)
        self.fan_state_write_units = number(
            "FanStateWriteUnits",
            0,
            "Provisioned write units of the fan state table (0: on demand); about fans / 60 / 0.7",
            low=0,
            high=40000,
        )
        self.fan_state_read_units = number(
            "FanStateReadUnits",
            1,
            "Provisioned read units of the fan state table when FanStateWriteUnits > 0; at least "
            "fans / 300, so a new container's first reads fit in DynamoDB's burst capacity",
            low=1,
            high=40000,
        )
        self.fan_state_provisioned = CfnCondition(
            stack,
            "FanStateProvisioned",
            expression=Fn.condition_not(Fn.condition_equals(self.fan_state_write_units.value_as_string, "0")),
        )
        self.stream_retention_hours = number(
            "StreamRetentionHours", 24, "Hours the streams keep records", low=24, high=8760
        )
        detector = DetectorSettings()
        self.score_floor = number(
            "ScoreFloor",
            detector.score_floor,
            "Lowest forest score ever graded anomalous (fans read once a second: 2.5-3)",
            low=0.5,
            high=8,
        )
        self.score_sigmas = number(
            "ScoreSigmas",
            detector.score_sigmas,
            "Standard deviations above a fan's mean score that are anomalous",
            low=0,
            high=10,
        )
        self.settle_seconds = number(
            "SettleSeconds",
            detector.settle_seconds,
            "Seconds a speed-controlled fan may take to follow a commanded change (not scored meanwhile)",
            low=0,
            high=600,
        )
        self.checkpoint_minutes = number(
            "CheckpointMinutes",
            detector.checkpoint_minutes,
            "Minutes between forest checkpoints to S3 "
            "(more often costs S3 writes, less often loses more learning on a "
            "restart)",
            low=1,
            high=1440,
        )
        self.fan_state_cache = CfnParameter(
            stack,
            "FanStateCache",
            type="String",
            default=str(detector.cache_fan_state).lower(),
            allowed_values=["true", "false"],
            description="Keep each fan's state in the detector between batches and save it unread "
            "(half the DynamoDB requests while one detector container carries the fleet)",
        )
        self.cooldown_minutes = number(
            "CooldownMinutes",
            DEFAULT_COOLDOWN_MINUTES,
            "Minutes between two notifications for the same fan and kind",
            low=1,
            high=1440,
        )
        self.detector_memory_mb = number(
            "DetectorMemoryMB",
            2048,
            "Detector Lambda memory (each resident forest takes a few MB)",
            low=512,
            high=10240,
        )
        self.batch_size = number(
            "DetectorBatchSize", 100, "Telemetry messages per detector invocation", low=1, high=10000
        )
        self.batching_window_s = number(
            "DetectorBatchingWindowSeconds", 5, "Seconds to gather a batch", low=0, high=300
        )
        self.parallelization = number(
            "DetectorParallelization",
            1,
            "Concurrent detector batches per shard (order per thing is kept)",
            low=1,
            high=10,
        )
        self.max_retries = number(
            "DetectorMaxRetries",
            3,
            "Retries of a failing batch before it goes to the dead-letter queue",
            low=0,
            high=10000,
        )
        self.lake_buffer_s = number(
            "LakeBufferSeconds",
            900,
            "Seconds Firehose buffers before writing a Parquet file",
            low=60,
            high=900,
        )
        self.lake_layout = CfnParameter(
            stack,
            "LakeLayout",
            type="String",
            default=LakeLayout.DAY_AND_THING.value,
            allowed_values=[layout.value for layout in LakeLayout],
            description="Lake objects by day and thing (a thing's data is one prefix) or by day alone "
            "(one object per flush, no dynamic partitioning charge: docs/scale.md)",
        )
        self.lake_by_thing = CfnCondition(
            stack,
            "LakeByThing",
            expression=Fn.condition_equals(self.lake_layout.value_as_string, LakeLayout.DAY_AND_THING.value),
        )
        self.lake_ia_days = number(
            "LakeInfrequentAccessDays",
            90,
            "Days before lake objects move to S3 Standard-IA",
            low=30,
            high=3650,
        )
        self.lake_retention_days = number(
            "LakeRetentionDays", 730, "Days the lake keeps data", low=31, high=36500
        )
        self.log_retention_days = CfnParameter(
            stack,
            "LogRetentionDays",
            type="Number",
            default="30",
            allowed_values=[str(d) for d in LOG_RETENTION_DAYS],
            description="Days CloudWatch keeps the functions' logs",
        )
        self.iterator_age_alarm_s = number(
            "IteratorAgeAlarmSeconds", 300, "Detector lag that pages someone", low=30, high=86400
        )
        self.athena_scan_limit_bytes = number(
            "AthenaScanLimitBytes",
            10 * 2**30,
            "Largest scan (bytes) one Athena query may do",
            low=10_000_000,
            high=2**50,
        )
