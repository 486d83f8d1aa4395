"""Where data lives: one KMS key, the buckets, the streams, the tables, the queues and the topics.

Every store is encrypted with the stack's customer-managed key (rotated yearly), except the access-log
bucket, which S3 server access logging can only write with S3-managed keys. Buckets block public
access, refuse plain HTTP, keep versions and log access.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn, RemovalPolicy, Token
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from fanwatch.fleet.names import artifacts_bucket
from fanwatch_stack.parameters import Settings

__all__ = ["DataPlane"]


class DataPlane(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str, settings: Settings) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{prefix}-data",
            enable_key_rotation=True,
            description="fanwatch: encrypts streams, buckets, tables, queues and topics",
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch alarms publish to the encrypted operations topic.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(30)
                )
            ],
        )
        retention = Duration.days(Token.as_number(settings.lake_retention_days.value_as_number))
        self.lake = self._bucket(
            "Lake",
            [
                s3.LifecycleRule(
                    id="tiering-and-retention",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(settings.lake_ia_days.value_as_number),
                        )
                    ],
                    expiration=retention,
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
        self.models = self._bucket(
            "Models",
            [
                s3.LifecycleRule(
                    id="old-checkpoints",
                    noncurrent_version_expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        # named as `gdk component publish` names its bucket, so gdk's default lands here
        self.artifacts = self._bucket(
            "Artifacts",
            [
                s3.LifecycleRule(
                    id="old-artifact-versions",
                    noncurrent_version_expiration=Duration.days(90),
                )
            ],
            name=artifacts_bucket(Aws.REGION, Aws.ACCOUNT_ID, prefix),
        )
        self.athena_results = self._bucket(
            "AthenaResults",
            [
                s3.LifecycleRule(
                    id="query-results",
                    expiration=Duration.days(30),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
        )

        self.telemetry = self._stream("Telemetry", f"{prefix}-telemetry", settings)
        self.anomalies = self._stream("Anomalies", f"{prefix}-anomalies", settings)

        self.fan_state = self._table("FanState", ttl=None)
        # a steady fleet writes every fan once a minute: capacity units cost less than requests
        table = self.fan_state.node.default_child
        assert isinstance(table, dynamodb.CfnTable)
        provisioned = settings.fan_state_provisioned.logical_id
        table.billing_mode = Fn.condition_if(provisioned, "PROVISIONED", "PAY_PER_REQUEST").to_string()
        table.provisioned_throughput = Fn.condition_if(
            provisioned,
            {  # inside Fn::If the properties keep CloudFormation's own names
                "ReadCapacityUnits": settings.fan_state_read_units.value_as_number,
                "WriteCapacityUnits": settings.fan_state_write_units.value_as_number,
            },
            Aws.NO_VALUE,
        )
        self.cooldown = self._table("Cooldown", ttl="expires")

        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            data_key_reuse=Duration.hours(1),
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.alerts = sns.Topic(
            self, "Alerts", display_name="fanwatch alerts", master_key=self.key, enforce_ssl=True
        )
        self.operations = sns.Topic(
            self, "Operations", display_name="fanwatch operations", master_key=self.key, enforce_ssl=True
        )

    def _bucket(self, id: str, rules: list[s3.LifecycleRule], name: str | None = None) -> s3.Bucket:
        return s3.Bucket(
            self,
            id,
            bucket_name=name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{id.lower()}/",
            lifecycle_rules=rules,
        )

    def _stream(self, id: str, name: str, settings: Settings) -> kinesis.IStream:
        """A KMS-encrypted stream in the capacity mode the parameters choose."""
        cfn = kinesis.CfnStream(
            self,
            id,
            name=name,
            retention_period_hours=settings.stream_retention_hours.value_as_number,
            stream_encryption=kinesis.CfnStream.StreamEncryptionProperty(
                encryption_type="KMS", key_id=self.key.key_arn
            ),
            stream_mode_details=kinesis.CfnStream.StreamModeDetailsProperty(
                stream_mode=settings.stream_mode.value_as_string
            ),
            shard_count=Token.as_number(
                Fn.condition_if(
                    settings.provisioned.logical_id, settings.shard_count.value_as_number, Aws.NO_VALUE
                )
            ),
        )
        return kinesis.Stream.from_stream_attributes(
            self, f"{id}Ref", stream_arn=cfn.attr_arn, encryption_key=self.key
        )

    def _table(self, id: str, *, ttl: str | None) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            id,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=ttl,
            removal_policy=RemovalPolicy.RETAIN,
        )
