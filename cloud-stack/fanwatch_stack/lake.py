"""The data lake: Firehose reads both streams, the transform Lambda flattens messages into rows,
Firehose writes Parquet through Glue tables generated from the column lists in the code, partitioned
by day; Athena has a workgroup and the queries operators ask.

The Glue tables project the ``dt`` partition (no crawler, no ``MSCK REPAIR``): a new day is queryable
the moment Firehose writes it. The ``LakeLayout`` parameter lays objects out ``dt=<day>/thing=<thing>/``
(the default: one device's data is one prefix, to export or erase it) or ``dt=<day>/`` (one object per
flush: the cheaper lake of docs/scale.md); Athena prunes by day and filters things on the ``thing``
column either way.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Aws, Fn, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from fanwatch.cloud.events import EVENT_COLUMNS
from fanwatch.cloud.lake import EVENTS_TABLE, READINGS_TABLE, LakeLayout, delivery_prefix, glue_columns
from fanwatch.telemetry import LAKE_COLUMNS, LakeColumn
from fanwatch_stack import grants
from fanwatch_stack.data import DataPlane
from fanwatch_stack.parameters import Settings

__all__ = ["QUERIES", "Lake"]

_PARQUET_IN = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
_PARQUET_OUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
_PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def _last_days(days: int) -> str:
    """A filter on the projected ``dt`` partition, so a query reads only the days it needs."""
    return f"dt >= date_format(current_date - interval '{days}' day, '%Y-%m-%d')"


# Devices deliver at least once: count each reading once, by its message identity and timestamp.
_DISTINCT_READINGS = "SELECT DISTINCT thing, fan, boot, seq, ts, rpm, flags, dt FROM readings"

#: Named queries: (name, description, SQL).
QUERIES: Final = (
    (
        "fans-by-anomaly-count",
        "Fans with the most anomalies and alerts over the last 7 days",
        "SELECT thing, fan, count(*) AS events,\n"
        "       count_if(source = 'cloud') AS detector_anomalies,\n"
        "       count_if(source = 'edge') AS edge_alerts,\n"
        "       count_if(severity = 'critical') AS critical,\n"
        "       max(ts) AS last_seen\n"
        f"FROM events\nWHERE {_last_days(7)} AND state = 'raised' AND kind <> 'gap'\n"
        "GROUP BY thing, fan\nORDER BY events DESC\nLIMIT 100",
    ),
    (
        "rpm-history-of-one-fan",
        "RPM of one fan over a day range: run with parameters thing, fan, first day, "
        "last day (days as YYYY-MM-DD)",
        f"WITH r AS ({_DISTINCT_READINGS})\n"
        "SELECT ts, rpm, flags, boot, seq\nFROM r\nWHERE thing = ? AND fan = ? AND dt BETWEEN ? AND ?\n"
        "ORDER BY ts",
    ),
    (
        "fleet-health-per-day",
        "Per day: devices and fans reporting, readings, stalls and sensor trouble, median speed, anomalies",
        f"WITH r AS ({_DISTINCT_READINGS} WHERE {_last_days(30)}),\n"
        "e AS (SELECT dt, count_if(source = 'cloud' AND kind = 'rcf') AS anomalies,\n"
        "             count_if(source = 'edge' AND state = 'raised') AS edge_alerts,\n"
        "             count_if(kind = 'gap') AS telemetry_gaps\n"
        f"      FROM events WHERE {_last_days(30)} GROUP BY dt)\n"
        "SELECT r.dt, count(DISTINCT r.thing) AS devices, count(DISTINCT r.thing || '/' || r.fan) AS fans,\n"
        "       count(*) AS readings,\n"
        "       count_if(contains(r.flags, 'stalled')) AS stalled_readings,\n"
        "       count_if(contains(r.flags, 'dropout') OR contains(r.flags, 'glitch')) AS sensor_trouble,\n"
        "       approx_percentile(r.rpm, 0.5) AS median_rpm,\n"
        "       coalesce(max(e.anomalies), 0) AS anomalies, coalesce(max(e.edge_alerts), 0) AS edge_alerts,\n"
        "       coalesce(max(e.telemetry_gaps), 0) AS telemetry_gaps\n"
        "FROM r LEFT JOIN e ON e.dt = r.dt\nGROUP BY r.dt\nORDER BY r.dt DESC",
    ),
)


class Lake(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        data: DataPlane,
        settings: Settings,
        transform: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, id)
        self._data = data
        self._settings = settings
        self._transform = transform
        self.database_name = f"{prefix.replace('-', '_')}_lake"
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description="fanwatch: fan readings and events"
            ),
        )
        self.readings = self._table(
            "Readings",
            READINGS_TABLE,
            LAKE_COLUMNS,
            "One row per tachometer reading, as the devices sent them",
        )
        self.events = self._table(
            "Events", EVENTS_TABLE, EVENT_COLUMNS, "One row per anomaly (cloud detector) or alert (edge)"
        )
        self.readings_delivery = self._delivery(
            "ReadingsDelivery", f"{prefix}-readings", data.telemetry, self.readings, READINGS_TABLE
        )
        self.events_delivery = self._delivery(
            "EventsDelivery", f"{prefix}-events", data.anomalies, self.events, EVENTS_TABLE
        )

        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=f"{prefix}-operators",
            state="ENABLED",
            recursive_delete_option=False,
            description="fanwatch: questions operators ask of the lake",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=settings.athena_scan_limit_bytes.value_as_number,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{data.athena_results.bucket_name}/results/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=data.key.key_arn
                    ),
                ),
            ),
        )
        for name, description, sql in QUERIES:
            athena.CfnNamedQuery(
                self,
                f"Query-{name}",
                name=name,
                description=description,
                database=self.database_name,
                query_string=sql,
                work_group=self.workgroup.ref,
            )

    def _table(self, id: str, name: str, columns: tuple[LakeColumn, ...], description: str) -> glue.CfnTable:
        location = f"s3://{self._data.lake.bucket_name}/{name}/"
        table = glue.CfnTable(
            self,
            id,
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "parquet.compression": "SNAPPY",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": "2024-01-01,NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": location + "dt=${dt}/",
                },
                partition_keys=[
                    glue.CfnTable.ColumnProperty(
                        name="dt", type="string", comment="UTC day the message was sent"
                    )
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format=_PARQUET_IN,
                    output_format=_PARQUET_OUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=_PARQUET_SERDE),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=c["Name"], type=c["Type"], comment=c["Comment"])
                        for c in glue_columns(columns)
                    ],
                ),
            ),
        )
        table.node.add_dependency(self.database)
        return table

    def _delivery(
        self, id: str, name: str, source: kinesis.IStream, table: glue.CfnTable, prefix: str
    ) -> firehose.CfnDeliveryStream:
        stack = Stack.of(self)
        log_group = logs.LogGroup(self, f"{id}Logs")
        log_stream = logs.LogStream(self, f"{id}LogStream", log_group=log_group, log_stream_name="S3Delivery")
        role = iam.Role(
            self,
            f"{id}Role",
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com"),
            description=f"Firehose {name}: read its stream, transform, write the lake",
        )
        grants.allow(
            role,
            [
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetShardIterator",
                "kinesis:GetRecords",
                "kinesis:ListShards",
            ],
            [source.stream_arn],
        )
        grants.kms_use(role, self._data.key, "kms:Decrypt")
        for pattern in (f"{prefix}/*", f"errors/{prefix}/*"):
            grants.objects(
                role,
                self._data.lake,
                self._data.key,
                pattern,
                "s3:PutObject",
                "s3:GetObject",
                "s3:AbortMultipartUpload",
                bucket_actions=("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"),
            )
        grants.allow(
            role, ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"], [self._transform.function_arn]
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(service="glue", resource="database", resource_name=self.database_name),
                    stack.format_arn(
                        service="glue", resource="table", resource_name=f"{self.database_name}/{prefix}"
                    ),
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["logs:PutLogEvents"], resources=[log_group.log_group_arn])
        )
        by_thing = self._settings.lake_by_thing
        stream = firehose.CfnDeliveryStream(
            self,
            id,
            delivery_stream_name=name,
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=firehose.CfnDeliveryStream.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=source.stream_arn, role_arn=role.role_arn
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=self._data.lake.bucket_arn,
                role_arn=role.role_arn,
                prefix=Fn.condition_if(
                    by_thing.logical_id,
                    delivery_prefix(prefix, LakeLayout.DAY_AND_THING),
                    delivery_prefix(prefix, LakeLayout.DAY),
                ).to_string(),
                error_output_prefix=f"errors/{prefix}/!{{firehose:error-output-type}}/dt=!{{timestamp:yyyy-MM-dd}}/",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    size_in_m_bs=64, interval_in_seconds=self._settings.lake_buffer_s.value_as_number
                ),
                compression_format="UNCOMPRESSED",  # Parquet compresses its pages with Snappy itself
                encryption_configuration=firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
                    kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(
                        awskms_key_arn=self._data.key.key_arn
                    )
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=log_group.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
                # by day alone the prefix names Firehose's own clock: no partitioning, no charge for it
                dynamic_partitioning_configuration=Fn.condition_if(
                    by_thing.logical_id,
                    # raw CloudFormation: CDK does not rename a property struct's keys inside Fn::If
                    {"Enabled": True, "RetryOptions": {"DurationInSeconds": 300}},
                    Aws.NO_VALUE,
                ),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        firehose.CfnDeliveryStream.ProcessorProperty(
                            type="Lambda",
                            parameters=[
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="LambdaArn", parameter_value=self._transform.function_arn
                                ),
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="BufferSizeInMBs", parameter_value="1"
                                ),
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="BufferIntervalInSeconds", parameter_value="60"
                                ),
                            ],
                        )
                    ],
                ),
                data_format_conversion_configuration=firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty(
                    enabled=True,
                    input_format_configuration=firehose.CfnDeliveryStream.InputFormatConfigurationProperty(
                        deserializer=firehose.CfnDeliveryStream.DeserializerProperty(
                            open_x_json_ser_de=firehose.CfnDeliveryStream.OpenXJsonSerDeProperty()
                        )
                    ),
                    output_format_configuration=firehose.CfnDeliveryStream.OutputFormatConfigurationProperty(
                        serializer=firehose.CfnDeliveryStream.SerializerProperty(
                            parquet_ser_de=firehose.CfnDeliveryStream.ParquetSerDeProperty(
                                compression="SNAPPY"
                            )
                        )
                    ),
                    schema_configuration=firehose.CfnDeliveryStream.SchemaConfigurationProperty(
                        catalog_id=Aws.ACCOUNT_ID,
                        database_name=self.database_name,
                        table_name=prefix,
                        region=Aws.REGION,
                        role_arn=role.role_arn,
                        version_id="LATEST",
                    ),
                ),
            ),
        )
        policy = role.node.find_child("DefaultPolicy")
        stream.node.add_dependency(policy)  # Firehose checks its permissions when it is created
        stream.node.add_dependency(table)
        return stream
