"""The fanwatch cloud stack: composition, tags, and the cdk-nag findings we accept (with why)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from fanwatch.stack.outputs import StackOutput
from fanwatch_stack.data import DataPlane
from fanwatch_stack.fleet import Fleet
from fanwatch_stack.functions import Functions
from fanwatch_stack.lake import Lake
from fanwatch_stack.monitoring import Monitoring
from fanwatch_stack.nag import acknowledge_findings
from fanwatch_stack.parameters import Settings

__all__ = ["FanwatchCloudStack"]


class FanwatchCloudStack(Stack):
    """Everything fanwatch runs in one AWS account and region; names start with ``prefix``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str = "fanwatch",
        tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            id,
            description="fanwatch: IoT Core -> Kinesis -> RCF detector -> SNS, Firehose -> Parquet lake",
            **kwargs,
        )
        self.settings = Settings(self, "Settings")
        self.data = DataPlane(self, "Data", prefix=prefix, settings=self.settings)
        self.fleet = Fleet(self, "Fleet", prefix=prefix, data=self.data)
        self.functions = Functions(self, "Functions", data=self.data, settings=self.settings)
        self.lake = Lake(
            self,
            "Lake",
            prefix=prefix,
            data=self.data,
            settings=self.settings,
            transform=self.functions.lake_transform,
        )
        fns = self.functions
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            prefix=prefix,
            data=self.data,
            settings=self.settings,
            detector=fns.detector,
            notifier=fns.notifier,
            functions=[fns.detector, fns.notifier, fns.sweeper, fns.lake_transform],
            deliveries=[self.lake.readings_delivery, self.lake.events_delivery],
        )
        for key, value in {"project": "fanwatch", "fanwatch:prefix": prefix, **(tags or {})}.items():
            Tags.of(self).add(key, value)
        outputs = {
            StackOutput.THING_GROUP: (self.fleet.group.ref, "Thing group the fleet's core devices join"),
            StackOutput.CORE_DEVICE_POLICY: (
                self.fleet.core_policy.ref,
                "IoT policy for Greengrass core devices",
            ),
            StackOutput.TOKEN_EXCHANGE_ROLE_ALIAS: (
                self.fleet.role_alias.ref,
                "Role alias for the Greengrass nucleus",
            ),
            StackOutput.PROVISIONING_TEMPLATE: (self.fleet.template.ref, "Fleet provisioning template"),
            StackOutput.CLAIM_POLICY: (
                self.fleet.claim_policy.ref,
                "IoT policy for the provisioning claim certificate",
            ),
            StackOutput.ARTIFACTS_BUCKET: (
                self.data.artifacts.bucket_name,
                "Bucket for Greengrass component artifacts",
            ),
            StackOutput.ALERT_TOPIC: (self.data.alerts.topic_arn, "Subscribe here for fan notifications"),
            StackOutput.OPERATIONS_TOPIC: (
                self.data.operations.topic_arn,
                "Subscribe here for pipeline alarms",
            ),
            StackOutput.DEAD_LETTER_QUEUE: (
                self.data.dead_letters.queue_url,
                "Rejected records, with the reason",
            ),
            StackOutput.LAKE_BUCKET: (
                self.data.lake.bucket_name,
                "Parquet lake (readings/, events/, errors/)",
            ),
            StackOutput.MODEL_BUCKET: (
                self.data.models.bucket_name,
                "Forest checkpoints (fanwatch detector backfill)",
            ),
            StackOutput.FAN_STATE_TABLE: (
                self.data.fan_state.table_name,
                "Per-fan detector state (fanwatch detector backfill)",
            ),
            StackOutput.ATHENA_WORK_GROUP: (
                self.lake.workgroup.ref,
                "Athena workgroup with the named queries",
            ),
            StackOutput.DASHBOARD: (self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard"),
            # what `fanwatch stack check` reads to find the path a reading takes
            StackOutput.TELEMETRY_STREAM: (
                self.data.telemetry.stream_name,
                "Kinesis stream the telemetry rule writes",
            ),
            StackOutput.DETECTOR_FUNCTION: (
                self.functions.detector.function_name,
                "Lambda that scores telemetry",
            ),
            StackOutput.LAKE_DATABASE: (
                self.lake.database_name,
                "Glue database of the lake's tables (Athena)",
            ),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)
        acknowledge_findings(self)
