"""The Lambda functions and what feeds them.

All run Python 3.12 on Graviton (arm64) from one code asset (the fanwatch modules they import) and
one layer (numpy and Powertools), both built offline by :mod:`fanwatch_stack.assets`. Each function
has its own role and log group; the roles get exactly the grants their handler uses.
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration, Token
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from fanwatch import environment as variables
from fanwatch.cloud.observability import Service
from fanwatch.cloud.settings import ENVIRONMENT
from fanwatch_stack import assets, grants
from fanwatch_stack.data import DataPlane
from fanwatch_stack.parameters import Settings

__all__ = ["Functions"]


class Functions(Construct):
    def __init__(self, scope: Construct, id: str, *, data: DataPlane, settings: Settings) -> None:
        super().__init__(scope, id)
        self._settings = settings
        self._code = lambda_.Code.from_asset(str(assets.code_dir()))
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(assets.layer_dir())),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="numpy and Powertools for the fanwatch handlers: "
            + ", ".join(assets.layer_requirements()),
        )
        common = {
            variables.METRICS_NAMESPACE_VARIABLE: variables.METRICS_NAMESPACE,
            variables.DEAD_LETTER_QUEUE_VARIABLE: data.dead_letters.queue_url,
        }

        self.detector = self._function(
            "Detector",
            "fanwatch.cloud.detector.lambda_handler",
            "telemetry -> per-fan RCF -> anomalies",
            memory=Token.as_number(settings.detector_memory_mb.value_as_number),
            timeout=Duration.minutes(5),
            environment={
                **common,
                variables.SERVICE_NAME_VARIABLE: Service.DETECTOR,
                variables.MODEL_BUCKET_VARIABLE: data.models.bucket_name,
                variables.FAN_STATE_TABLE_VARIABLE: data.fan_state.table_name,
                variables.ANOMALY_STREAM_VARIABLE: data.anomalies.stream_name,
                ENVIRONMENT["score_floor"]: settings.score_floor.value_as_string,
                ENVIRONMENT["score_sigmas"]: settings.score_sigmas.value_as_string,
                ENVIRONMENT["settle_seconds"]: settings.settle_seconds.value_as_string,
                ENVIRONMENT["checkpoint_minutes"]: settings.checkpoint_minutes.value_as_string,
                ENVIRONMENT["cache_fan_state"]: settings.fan_state_cache.value_as_string,
            },
        )
        grants.objects(
            self.detector,
            data.models,
            data.key,
            "models/*",
            "s3:GetObject",
            "s3:PutObject",
            bucket_actions=("s3:ListBucket",),
        )  # without it a missing model reads as 403
        self._table(self.detector, data, data.fan_state, "dynamodb:GetItem", "dynamodb:PutItem")
        grants.stream_writer(self.detector, data.anomalies, data.key)
        self._dead_letters(self.detector, data)
        self.detector.add_event_source(self._kinesis_source(data, data.telemetry, settings))

        notifier_env = {
            **common,
            variables.SERVICE_NAME_VARIABLE: Service.NOTIFIER,
            variables.ALERT_TOPIC_VARIABLE: data.alerts.topic_arn,
            variables.COOLDOWN_TABLE_VARIABLE: data.cooldown.table_name,
            variables.COOLDOWN_MINUTES_VARIABLE: settings.cooldown_minutes.value_as_string,
        }
        self.notifier = self._function(
            "Notifier",
            "fanwatch.cloud.notifier.lambda_handler",
            "anomalies and edge alerts -> SNS, with a cooldown per fan and kind",
            memory=512,
            timeout=Duration.minutes(1),
            environment=notifier_env,
        )
        self._table(self.notifier, data, data.cooldown, "dynamodb:UpdateItem")
        self._publisher(self.notifier, data)
        self._dead_letters(self.notifier, data)
        self.notifier.add_event_source(self._kinesis_source(data, data.anomalies, settings))

        self.sweeper = self._function(
            "NotifierSweep",
            "fanwatch.cloud.notifier.sweep_handler",
            "summaries of what the cooldown held back, when no later event did",
            memory=256,
            timeout=Duration.minutes(1),
            environment=notifier_env,
        )
        self._table(self.sweeper, data, data.cooldown, "dynamodb:Scan", "dynamodb:UpdateItem")
        self._publisher(self.sweeper, data)
        events.Rule(
            self,
            "SweepSchedule",
            schedule=events.Schedule.rate(Duration.minutes(5)),
            description="fanwatch: send held-back notification summaries",
            targets=[targets.LambdaFunction(self.sweeper, retry_attempts=2)],
        )

        self.lake_transform = self._function(
            "LakeTransform",
            "fanwatch.cloud.lake.lambda_handler",
            "Firehose transformation: messages -> lake rows",
            memory=512,
            timeout=Duration.minutes(1),
            environment={variables.SERVICE_NAME_VARIABLE: Service.LAKE},
        )

    def _function(
        self,
        id: str,
        handler: str,
        description: str,
        *,
        memory: float,
        timeout: Duration,
        environment: dict[str, str],
    ) -> lambda_.Function:
        log_group = logs.LogGroup(self, f"{id}Logs")
        retention = log_group.node.default_child
        assert isinstance(retention, logs.CfnLogGroup)
        retention.retention_in_days = Token.as_number(self._settings.log_retention_days.value_as_number)
        role = iam.Role(
            self,
            f"{id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"fanwatch {id}: its log group and the grants below",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        return lambda_.Function(
            self,
            id,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            code=self._code,
            handler=handler,
            layers=[self.layer],
            memory_size=memory,
            timeout=timeout,
            description=f"fanwatch: {description}",
            environment=environment,
            role=role,
            log_group=log_group,
        )

    @staticmethod
    def _table(fn: lambda_.Function, data: DataPlane, table: dynamodb.Table, *actions: str) -> None:
        grants.allow(fn, list(actions), [table.table_arn])
        grants.kms_use(fn, data.key, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")

    @staticmethod
    def _publisher(fn: lambda_.Function, data: DataPlane) -> None:
        grants.allow(fn, ["sns:Publish"], [data.alerts.topic_arn])
        grants.kms_use(fn, data.key)

    @staticmethod
    def _dead_letters(fn: lambda_.Function, data: DataPlane) -> None:
        grants.allow(fn, ["sqs:SendMessage"], [data.dead_letters.queue_arn])
        grants.kms_use(fn, data.key)

    @staticmethod
    def _kinesis_source(
        data: DataPlane, stream: kinesis.IStream, settings: Settings
    ) -> sources.KinesisEventSource:
        """Batches of a stream with partial-failure reports, bisection and a dead-letter destination."""
        return sources.KinesisEventSource(
            stream,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=Token.as_number(settings.batch_size.value_as_number),
            max_batching_window=Duration.seconds(Token.as_number(settings.batching_window_s.value_as_number)),
            parallelization_factor=Token.as_number(settings.parallelization.value_as_number),
            retry_attempts=Token.as_number(settings.max_retries.value_as_number),
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            on_failure=_DeadLetterDestination(data),
        )


@jsii.implements(lambda_.IEventSourceDlq)
class _DeadLetterDestination:
    """The on-failure destination of a stream's event source mapping: the dead-letter queue.

    CDK's ``SqsDlq`` grants ``kms:GenerateDataKey*`` and ``kms:ReEncrypt*``; Lambda needs only to
    send the failure record to the encrypted queue.
    """

    def __init__(self, data: DataPlane) -> None:
        self._data = data

    def bind(
        self, _target: lambda_.IEventSourceMapping, target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        grants.allow(target_handler, ["sqs:SendMessage"], [self._data.dead_letters.queue_arn])
        grants.kms_use(target_handler, self._data.key)
        return lambda_.DlqDestinationConfig(destination=self._data.dead_letters.queue_arn)
