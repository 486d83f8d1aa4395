"""The names of the cloud stack's CloudFormation outputs, defined once.

The CDK app declares them; ``fanwatch stack check`` finds the path a reading takes through them,
``fanwatch fleet publish`` the artifacts bucket. A renamed output would otherwise leave a reader asking
for the old name of a deployed stack; ``tests/unit/stack/test_template.py`` holds the synthesized
template's outputs to this list.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["StackOutput"]


class StackOutput(StrEnum):
    """An output of the deployed stack (``aws cloudformation describe-stacks`` lists them)."""

    THING_GROUP = "ThingGroup"
    CORE_DEVICE_POLICY = "CoreDevicePolicy"
    TOKEN_EXCHANGE_ROLE_ALIAS = "TokenExchangeRoleAlias"
    PROVISIONING_TEMPLATE = "ProvisioningTemplate"
    CLAIM_POLICY = "ClaimPolicy"
    ARTIFACTS_BUCKET = "ArtifactsBucket"
    ALERT_TOPIC = "AlertTopic"
    OPERATIONS_TOPIC = "OperationsTopic"
    DEAD_LETTER_QUEUE = "DeadLetterQueue"
    LAKE_BUCKET = "LakeBucket"
    MODEL_BUCKET = "ModelBucket"
    FAN_STATE_TABLE = "FanStateTable"
    ATHENA_WORK_GROUP = "AthenaWorkGroup"
    DASHBOARD = "Dashboard"
    TELEMETRY_STREAM = "TelemetryStream"
    DETECTOR_FUNCTION = "DetectorFunction"
    LAKE_DATABASE = "LakeDatabase"
