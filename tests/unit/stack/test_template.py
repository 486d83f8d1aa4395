"""CDK assertions on the synthesized template: each resource and its wiring."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from fanwatch.cloud.settings import DEFAULT_COOLDOWN_MINUTES, DetectorSettings
from fanwatch.environment import HANDLER_VARIABLES, METRICS_NAMESPACE, METRICS_NAMESPACE_VARIABLE
from fanwatch.stack.outputs import StackOutput
from fanwatch.telemetry import LAKE_COLUMNS


@pytest.fixture(scope="module")
def t(template: dict[str, Any]) -> Template:
    return Template.from_json(template)


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _one(template: dict[str, Any], kind: str, **match: Any) -> dict[str, Any]:
    found = [
        r["Properties"]
        for r in _of_type(template, kind).values()
        if all(r["Properties"].get(k) == v for k, v in match.items())
    ]
    assert len(found) == 1, f"{kind} {match}: {len(found)} found"
    return found[0]


def _text(value: Any) -> str:
    return json.dumps(value)


# --- IoT ---------------------------------------------------------------------------------------


def test_a_core_device_connects_only_as_itself_and_publishes_only_under_its_own_topics(
    template: dict[str, Any],
) -> None:
    policy = _one(template, "AWS::IoT::Policy", PolicyName="fanwatch-core-device")["PolicyDocument"]
    by_action = {tuple(s["Action"]): s for s in policy["Statement"]}
    connect = by_action[("iot:Connect",)]
    assert _text(connect["Resource"]).count("client/${iot:Connection.Thing.ThingName}") == 2
    assert connect["Condition"] == {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}
    publish = _text(by_action[("iot:Publish",)]["Resource"])
    assert "topic/fanwatch/${iot:Connection.Thing.ThingName}/*" in publish
    assert "topic/fanwatch/*" not in publish and "topic/*" not in publish
    # Basic Ingest (the EdgeFilter's basicIngestRule): its own telemetry, to the telemetry rule only
    basic = "topic/$aws/rules/fanwatch_telemetry/fanwatch/${iot:Connection.Thing.ThingName}/telemetry"
    assert basic in publish and publish.count("$aws/rules/") == 1
    for statement in policy["Statement"]:
        if statement["Action"] != [
            "greengrass:GetComponentVersionArtifact",
            "greengrass:ResolveComponentCandidates",
            "greengrass:GetDeploymentConfiguration",
            "greengrass:ListThingGroupsForCoreDevice",
        ]:
            assert statement["Resource"] != ["*"], statement


def test_greengrass_token_exchange_is_a_role_alias_over_a_narrow_role(
    t: Template, template: dict[str, Any]
) -> None:
    t.has_resource_properties(
        "AWS::IoT::RoleAlias", {"RoleAlias": "fanwatch-token-exchange", "CredentialDurationSeconds": 3600}
    )
    t.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {
                    "Statement": [
                        Match.object_like({"Principal": {"Service": "credentials.iot.amazonaws.com"}})
                    ]
                }
            )
        },
    )
    role = next(
        k
        for k, v in _of_type(template, "AWS::IAM::Role").items()
        if "credentials.iot" in _text(v["Properties"]["AssumeRolePolicyDocument"])
    )
    actions = {
        a
        for p in _of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
        "s3:GetObject",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }


def test_new_pis_enrol_through_fleet_provisioning_into_the_fleet_group(template: dict[str, Any]) -> None:
    provisioning = _one(template, "AWS::IoT::ProvisioningTemplate")
    body = json.loads(provisioning["TemplateBody"])
    assert body["Resources"]["thing"]["Properties"]["ThingGroups"] == ["fanwatch-fleet"]
    assert body["Resources"]["policy"]["Properties"]["PolicyName"] == "fanwatch-core-device"
    claim = _one(template, "AWS::IoT::Policy", PolicyName="fanwatch-provisioning-claim")["PolicyDocument"]
    assert "$aws/provisioning-templates/fanwatch-fleet-provisioning/provision/*" in _text(claim)
    assert "fanwatch/" not in _text(claim).replace(
        "fanwatch-fleet-provisioning", ""
    )  # no telemetry for claims
    _one(template, "AWS::IoT::ThingGroup", ThingGroupName="fanwatch-fleet")


@pytest.mark.parametrize(("kind", "stream"), [("telemetry", "DataTelemetry"), ("alerts", "DataAnomalies")])
def test_iot_rules_key_records_by_thing_and_keep_failures(
    template: dict[str, Any], kind: str, stream: str
) -> None:
    rule = _one(template, "AWS::IoT::TopicRule", RuleName=f"fanwatch_{kind}")["TopicRulePayload"]
    assert rule["Sql"] == f"SELECT * FROM 'fanwatch/+/{kind}'"
    (action,) = rule["Actions"]
    assert action["Kinesis"]["PartitionKey"] == "${topic(2)}"
    assert stream in _text(action["Kinesis"]["StreamName"])
    assert f"errors/iot/{kind}/${{topic(2)}}/" in rule["ErrorAction"]["S3"]["Key"]


# --- streams and processing ------------------------------------------------------------------


def test_streams_are_kms_encrypted_and_on_demand_unless_provisioned(template: dict[str, Any]) -> None:
    streams = _of_type(template, "AWS::Kinesis::Stream")
    assert len(streams) == 2
    for stream in streams.values():
        props = stream["Properties"]
        assert props["StreamEncryption"]["EncryptionType"] == "KMS"
        assert props["StreamModeDetails"] == {"StreamMode": {"Ref": "StreamMode"}}
        assert props["ShardCount"] == {
            "Fn::If": ["StreamsProvisioned", {"Ref": "ShardCount"}, {"Ref": "AWS::NoValue"}]
        }
    assert template["Parameters"]["StreamMode"]["Default"] == "ON_DEMAND"


def test_the_detector_consumes_telemetry_with_every_safety_of_the_event_source_mapping(t: Template) -> None:
    t.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": Match.object_like({"Fn::GetAtt": ["DataTelemetry9046E951", "Arn"]}),
            "BatchSize": {"Ref": "DetectorBatchSize"},
            "MaximumBatchingWindowInSeconds": {"Ref": "DetectorBatchingWindowSeconds"},
            "ParallelizationFactor": {"Ref": "DetectorParallelization"},
            "MaximumRetryAttempts": {"Ref": "DetectorMaxRetries"},
            "BisectBatchOnFunctionError": True,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "StartingPosition": "TRIM_HORIZON",
            "DestinationConfig": {
                "OnFailure": {"Destination": {"Fn::GetAtt": [Match.string_like_regexp("DeadLetters"), "Arn"]}}
            },
        },
    )


def test_functions_run_python_312_on_graviton_with_the_layer(template: dict[str, Any]) -> None:
    functions = _of_type(template, "AWS::Lambda::Function")
    handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
    assert handlers == [
        "fanwatch.cloud.detector.lambda_handler",
        "fanwatch.cloud.lake.lambda_handler",
        "fanwatch.cloud.notifier.lambda_handler",
        "fanwatch.cloud.notifier.sweep_handler",
    ]
    for function in functions.values():
        props = function["Properties"]
        assert (props["Runtime"], props["Architectures"]) == ("python3.12", ["arm64"])
        assert len(props["Layers"]) == 1
    detector = next(f["Properties"] for f in functions.values() if "detector" in f["Properties"]["Handler"])
    env = detector["Environment"]["Variables"]
    assert {
        name: env[name]
        for name in ("SCORE_FLOOR", "SCORE_SIGMAS", "SETTLE_SECONDS", "CHECKPOINT_MINUTES", "FAN_STATE_CACHE")
    } == {
        "SCORE_FLOOR": {"Ref": "ScoreFloor"},
        "SCORE_SIGMAS": {"Ref": "ScoreSigmas"},
        "SETTLE_SECONDS": {"Ref": "SettleSeconds"},
        "CHECKPOINT_MINUTES": {"Ref": "CheckpointMinutes"},
        "FAN_STATE_CACHE": {"Ref": "FanStateCache"},
    }
    defaults = DetectorSettings()  # the stack's defaults are the detector's own
    parameters = template["Parameters"]
    assert float(parameters["ScoreFloor"]["Default"]) == defaults.score_floor
    assert float(parameters["SettleSeconds"]["Default"]) == defaults.settle_seconds
    assert float(parameters["CheckpointMinutes"]["Default"]) == defaults.checkpoint_minutes
    assert parameters["FanStateCache"]["Default"] == str(defaults.cache_fan_state).lower()
    assert detector["MemorySize"] == {"Ref": "DetectorMemoryMB"}


def test_every_variable_the_stack_gives_a_function_is_named_in_fanwatch_environment(
    template: dict[str, Any],
) -> None:
    """The handlers read their settings by the names in :mod:`fanwatch.environment`; a name the stack
    typed out on its own would be set and never read."""
    for name, function in _of_type(template, "AWS::Lambda::Function").items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert set(variables) <= HANDLER_VARIABLES, (name, set(variables) - HANDLER_VARIABLES)
        if METRICS_NAMESPACE_VARIABLE in variables:
            assert variables[METRICS_NAMESPACE_VARIABLE] == METRICS_NAMESPACE, name
    assert float(template["Parameters"]["CooldownMinutes"]["Default"]) == DEFAULT_COOLDOWN_MINUTES


def test_the_fan_state_table_is_on_demand_unless_given_write_units(template: dict[str, Any]) -> None:
    tables = [r["Properties"] for r in _of_type(template, "AWS::DynamoDB::Table").values()]
    fan_state = [t for t in tables if isinstance(t["BillingMode"], dict)]
    assert len(fan_state) == 1 and all(
        t["BillingMode"] == "PAY_PER_REQUEST" for t in tables if t not in fan_state
    )
    assert fan_state[0]["BillingMode"] == {
        "Fn::If": ["FanStateProvisioned", "PROVISIONED", "PAY_PER_REQUEST"]
    }
    assert fan_state[0]["ProvisionedThroughput"]["Fn::If"][1] == {
        "ReadCapacityUnits": {"Ref": "FanStateReadUnits"},
        "WriteCapacityUnits": {"Ref": "FanStateWriteUnits"},
    }
    assert template["Parameters"]["FanStateWriteUnits"]["Default"] == 0  # on demand unless asked
    assert template["Conditions"]["FanStateProvisioned"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "FanStateWriteUnits"}, "0"]}]
    }


def test_the_stack_outputs_exactly_the_names_its_readers_use(template: dict[str, Any]) -> None:
    """``fanwatch stack check`` and ``fanwatch fleet publish`` read outputs by :class:`StackOutput`."""
    assert set(template["Outputs"]) == set(StackOutput)


def test_no_role_gets_an_action_wildcard(template: dict[str, Any]) -> None:
    for name, policy in _of_type(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            assert not [a for a in actions if "*" in a], (name, actions)


def test_the_notifier_publishes_to_an_encrypted_topic_and_cools_down_in_dynamodb(t: Template) -> None:
    t.resource_count_is("AWS::SNS::Topic", 2)
    t.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value(), "DisplayName": "fanwatch alerts"}
    )
    t.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TimeToLiveSpecification": {"AttributeName": "expires", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
        },
    )
    t.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(5 minutes)"})


# --- the lake ------------------------------------------------------------------------------------


def test_buckets_are_encrypted_private_tls_only_versioned_and_expire_data(template: dict[str, Any]) -> None:
    buckets = _of_type(template, "AWS::S3::Bucket")
    assert len(buckets) == 5
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["LifecycleConfiguration"]["Rules"], name
        algorithm = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        assert algorithm == ("AES256" if "AccessLogs" in name else "aws:kms")
    tls = [
        p
        for p in _of_type(template, "AWS::S3::BucketPolicy").values()
        if '"aws:SecureTransport": "false"' in _text(p)
    ]
    assert len(tls) == 5


def test_the_glue_tables_are_generated_from_the_telemetry_contract(template: dict[str, Any]) -> None:
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in _of_type(template, "AWS::Glue::Table").values()
    }
    readings = tables["readings"]
    columns = readings["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [(c.name, c.type) for c in LAKE_COLUMNS]
    assert readings["PartitionKeys"] == [
        {"Name": "dt", "Type": "string", "Comment": "UTC day the message was sent"}
    ]
    assert readings["Parameters"]["projection.enabled"] == "true"


def test_firehose_writes_parquet_by_day_and_thing_or_by_day_alone_with_an_error_prefix(
    template: dict[str, Any],
) -> None:
    streams = _of_type(template, "AWS::KinesisFirehose::DeliveryStream")
    assert len(streams) == 2
    readings = next(
        s["Properties"]
        for s in streams.values()
        if s["Properties"]["DeliveryStreamName"] == "fanwatch-readings"
    )
    s3 = readings["ExtendedS3DestinationConfiguration"]
    # the LakeLayout parameter: dynamic partitions by the transform's keys, or Firehose's own day
    assert s3["Prefix"] == {
        "Fn::If": [
            "LakeByThing",
            "readings/dt=!{partitionKeyFromLambda:dt}/thing=!{partitionKeyFromLambda:thing}/",
            "readings/dt=!{timestamp:yyyy-MM-dd}/",
        ]
    }
    assert s3["DynamicPartitioningConfiguration"] == {
        "Fn::If": [
            "LakeByThing",
            {"Enabled": True, "RetryOptions": {"DurationInSeconds": 300}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert template["Conditions"]["LakeByThing"] == {"Fn::Equals": [{"Ref": "LakeLayout"}, "day+thing"]}
    assert template["Parameters"]["LakeLayout"]["Default"] == "day+thing"
    assert s3["ErrorOutputPrefix"].startswith("errors/readings/!{firehose:error-output-type}/")
    conversion = s3["DataFormatConversionConfiguration"]
    assert conversion["OutputFormatConfiguration"]["Serializer"] == {
        "ParquetSerDe": {"Compression": "SNAPPY"}
    }
    assert conversion["SchemaConfiguration"]["TableName"] == "readings"
    assert s3["BufferingHints"] == {"SizeInMBs": 64, "IntervalInSeconds": {"Ref": "LakeBufferSeconds"}}
    (processor,) = s3["ProcessingConfiguration"]["Processors"]
    assert processor["Type"] == "Lambda"
    assert readings["DeliveryStreamType"] == "KinesisStreamAsSource"


def test_athena_has_an_encrypted_workgroup_and_the_operators_questions(template: dict[str, Any]) -> None:
    workgroup = _one(template, "AWS::Athena::WorkGroup", Name="fanwatch-operators")["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True
    assert workgroup["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    queries = {q["Properties"]["Name"] for q in _of_type(template, "AWS::Athena::NamedQuery").values()}
    assert queries == {"fans-by-anomaly-count", "rpm-history-of-one-fan", "fleet-health-per-day"}


# --- pictures and pages ------------------------------------------------------------------------


def test_a_dashboard_and_alarms_that_page_the_operations_topic(template: dict[str, Any]) -> None:
    (dashboard,) = _of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = _text(dashboard["Properties"]["DashboardBody"])
    for title in (
        "Ingest",
        "Lag (iterator age)",
        "Anomalies and alerts per hour",
        "Lambda errors",
        "Firehose delivery to the lake",
    ):
        assert title in body
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 9  # lag, silence, dead letters, 2 x Firehose, 4 x function errors
    for alarm in alarms.values():
        assert "Operations" in _text(alarm["Properties"]["AlarmActions"])


def test_everything_taggable_is_tagged(template: dict[str, Any]) -> None:
    for kind in ("AWS::S3::Bucket", "AWS::Lambda::Function", "AWS::DynamoDB::Table", "AWS::SQS::Queue"):
        for resource in _of_type(template, kind).values():
            assert {"Key": "project", "Value": "fanwatch"} in resource["Properties"]["Tags"]
