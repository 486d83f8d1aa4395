"""The device side of AWS IoT: the fleet's thing group, what a core device may do, how new Pis enrol,
and the rules that carry their messages into the streams.

Device permissions use policy variables, so one policy serves the whole fleet while each device may
connect only as its own thing and publish only under ``fanwatch/<its thing name>/``.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from constructs import Construct

from fanwatch.telemetry import BASIC_INGEST_PREFIX, TOPIC_ROOT, TopicKind, topic_filter
from fanwatch_stack import grants
from fanwatch_stack.data import DataPlane

__all__ = ["Fleet"]

THING = "${iot:Connection.Thing.ThingName}"


def _iot_arn(kind: str, name: str) -> str:
    return f"arn:{Aws.PARTITION}:iot:{Aws.REGION}:{Aws.ACCOUNT_ID}:{kind}/{name}"


def _statement(actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


class Fleet(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str, data: DataPlane) -> None:
        super().__init__(scope, id)
        rule_prefix = prefix.replace("-", "_")
        self.group = iot.CfnThingGroup(
            self,
            "ThingGroup",
            thing_group_name=f"{prefix}-fleet",
            thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                thing_group_description="Raspberry Pis running fanwatch"
            ),
        )

        # Token exchange: what components on a core device may do with AWS credentials.
        self.token_exchange_role = iam.Role(
            self,
            "TokenExchangeRole",
            assumed_by=iam.ServicePrincipal("credentials.iot.amazonaws.com"),
            description="Greengrass token exchange: component artifacts and Greengrass logs only",
        )
        self.token_exchange_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/greengrass/*"
                ],
            )
        )
        grants.objects(self.token_exchange_role, data.artifacts, data.key, "*", "s3:GetObject")
        self.role_alias = iot.CfnRoleAlias(
            self,
            "TokenExchangeRoleAlias",
            role_alias=f"{prefix}-token-exchange",
            role_arn=self.token_exchange_role.role_arn,
            credential_duration_seconds=3600,
        )

        device_topics = f"{TOPIC_ROOT}/{THING}/*"
        # Basic Ingest (the EdgeFilter's basicIngestRule): its own telemetry, to the telemetry rule only
        basic_ingest = (
            f"{BASIC_INGEST_PREFIX}{rule_prefix}_telemetry/{TOPIC_ROOT}/{THING}/{TopicKind.TELEMETRY}"
        )
        shadow_and_jobs = [f"$aws/things/{THING}/shadow/*", f"$aws/things/{THING}/jobs/*"]
        self.core_policy = iot.CfnPolicy(
            self,
            "CoreDevicePolicy",
            policy_name=f"{prefix}-core-device",
            policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    _statement(
                        ["iot:Connect"],
                        [_iot_arn("client", THING), _iot_arn("client", f"{THING}#*")],
                        Condition={"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
                    ),
                    _statement(
                        ["iot:Publish"],
                        [
                            _iot_arn("topic", t)
                            for t in (
                                device_topics,
                                basic_ingest,
                                *shadow_and_jobs,
                                f"$aws/things/{THING}/greengrass/health/json",
                                f"$aws/things/{THING}/greengrassv2/health/json",
                            )
                        ],
                    ),
                    _statement(
                        ["iot:Receive"], [_iot_arn("topic", t) for t in (device_topics, *shadow_and_jobs)]
                    ),
                    _statement(
                        ["iot:Subscribe"],
                        [_iot_arn("topicfilter", t) for t in (device_topics, *shadow_and_jobs)],
                    ),
                    _statement(
                        ["iot:GetThingShadow", "iot:UpdateThingShadow", "iot:DeleteThingShadow"],
                        [_iot_arn("thing", THING)],
                    ),
                    _statement(["iot:AssumeRoleWithCertificate"], [self.role_alias.attr_role_alias_arn]),
                    _statement(
                        [
                            "greengrass:GetComponentVersionArtifact",
                            "greengrass:ResolveComponentCandidates",
                            "greengrass:GetDeploymentConfiguration",
                            "greengrass:ListThingGroupsForCoreDevice",
                        ],
                        ["*"],
                    ),
                ],
            },
        )

        self._provisioning(prefix)
        self._rules(rule_prefix, data)

    def _provisioning(self, prefix: str) -> None:
        """Fleet provisioning by claim: a Pi with the shared claim certificate enrols as its own thing."""
        role = iam.Role(
            self,
            "ProvisioningRole",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="Lets IoT fleet provisioning register fanwatch devices",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "iot:CreateThing",
                    "iot:DescribeThing",
                    "iot:UpdateThing",
                    "iot:AddThingToThingGroup",
                    "iot:AttachThingPrincipal",
                    "iot:ListThingGroupsForThing",
                ],
                resources=[_iot_arn("thing", "*"), self.group.attr_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["iot:DescribeThingGroup"], resources=[self.group.attr_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iot:DescribeCertificate", "iot:UpdateCertificate", "iot:AttachPolicy"],
                resources=[_iot_arn("cert", "*"), self.core_policy.attr_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iot:RegisterThing", "iot:CreateCertificateFromCsr"], resources=["*"]
            )
        )
        template_name = f"{prefix}-fleet-provisioning"
        body = {
            "Parameters": {"ThingName": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
            "Resources": {
                "thing": {
                    "Type": "AWS::IoT::Thing",
                    "OverrideSettings": {"ThingGroups": "MERGE"},
                    "Properties": {"ThingName": {"Ref": "ThingName"}, "ThingGroups": [f"{prefix}-fleet"]},
                },
                "certificate": {
                    "Type": "AWS::IoT::Certificate",
                    "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"},
                },
                "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": f"{prefix}-core-device"}},
            },
        }
        self.template = iot.CfnProvisioningTemplate(
            self,
            "ProvisioningTemplate",
            template_name=template_name,
            enabled=True,
            description="Enrols a fanwatch Pi: its own thing in the fleet group, the core device policy",
            provisioning_role_arn=role.role_arn,
            template_body=Stack.of(self).to_json_string(body),
        )
        self.template.node.add_dependency(self.group)
        self.template.node.add_dependency(self.core_policy)
        provision = f"$aws/provisioning-templates/{template_name}/provision/*"
        create = "$aws/certificates/create/*"
        self.claim_policy = iot.CfnPolicy(
            self,
            "ClaimPolicy",
            policy_name=f"{prefix}-provisioning-claim",
            policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    _statement(["iot:Connect"], [_iot_arn("client", "*")]),
                    _statement(
                        ["iot:Publish", "iot:Receive"],
                        [_iot_arn("topic", create), _iot_arn("topic", provision)],
                    ),
                    _statement(
                        ["iot:Subscribe"],
                        [_iot_arn("topicfilter", create), _iot_arn("topicfilter", provision)],
                    ),
                ],
            },
        )

    def _rules(self, rule_prefix: str, data: DataPlane) -> None:
        """Telemetry into the telemetry stream, edge alerts into the anomalies stream (where the notifier
        reads), both keyed by thing; a failed delivery is written to the lake's error prefix."""
        role = iam.Role(
            self,
            "RuleRole",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="IoT rules: put device messages on the fanwatch streams",
        )
        grants.stream_writer(role, data.telemetry, data.key)
        grants.stream_writer(role, data.anomalies, data.key)
        grants.objects(role, data.lake, data.key, "errors/iot/*", "s3:PutObject")
        for id, kind, stream in (
            ("TelemetryRule", TopicKind.TELEMETRY, data.telemetry),
            ("AlertRule", TopicKind.ALERTS, data.anomalies),
        ):
            iot.CfnTopicRule(
                self,
                id,
                rule_name=f"{rule_prefix}_{kind}",
                topic_rule_payload={
                    "sql": f"SELECT * FROM '{topic_filter(kind)}'",
                    "awsIotSqlVersion": "2016-03-23",
                    "ruleDisabled": False,
                    "description": f"fanwatch {kind} into Kinesis, partitioned by thing",
                    "actions": [
                        {
                            "kinesis": {
                                "streamName": stream.stream_name,
                                "partitionKey": "${topic(2)}",
                                "roleArn": role.role_arn,
                            }
                        }
                    ],
                    "errorAction": {
                        "s3": {
                            "bucketName": data.lake.bucket_name,
                            "roleArn": role.role_arn,
                            "key": f"errors/iot/{kind}/${{topic(2)}}/${{timestamp()}}-${{newuuid()}}.json",
                        }
                    },
                },
            )
