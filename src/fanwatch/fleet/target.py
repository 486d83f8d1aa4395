"""Where component versions are published: the artifacts bucket devices may read, and its region.

One answer for ``gdk component publish`` and ``fanwatch fleet publish`` alike, found in this order:

1. what the command line says (``--bucket``, ``--region``);
2. ``FANWATCH_ARTIFACTS_BUCKET`` (the one setting, for a stack deployed under another name, or none);
3. the ``ArtifactsBucket`` output of the deployed stack (``FANWATCH_STACK``, default ``fanwatch-cloud``);
4. gdk's own rule, ``fanwatch-components-<region>-<account>``, which is also the stack's bucket name.

The region is the AWS SDK's (``AWS_REGION``, ``AWS_DEFAULT_REGION`` or the profile's); the account is
the caller's, from STS. ``fanwatch fleet bucket --gdk-args`` prints ``--bucket B --region R`` for gdk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from fanwatch.environment import ARTIFACTS_BUCKET_VARIABLE, STACK_VARIABLE
from fanwatch.errors import FanwatchError
from fanwatch.fleet.names import DEFAULT_STACK, artifacts_bucket
from fanwatch.stack.outputs import StackOutput

__all__ = ["PublishTarget", "TargetError", "resolve_target"]

_OUTPUT: Final = StackOutput.ARTIFACTS_BUCKET


class TargetError(FanwatchError):
    """No region, or no way to tell the bucket; the message says what to set."""


@dataclass(frozen=True, slots=True)
class PublishTarget:
    """Where component versions are published (see the module docstring), and where that answer came from."""

    bucket: str
    region: str
    account: str
    source: str  # where the bucket name came from, for the user

    def gdk_args(self) -> list[str]:
        return ["--bucket", self.bucket, "--region", self.region]


def resolve_target(
    session: Any, *, bucket: str | None = None, region: str | None = None, stack: str | None = None
) -> PublishTarget:
    """The publish target for a boto3 ``session`` (see the module docstring for the order)."""
    region = region or session.region_name
    if not region:
        raise TargetError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or give --region)")
    try:
        account = str(session.client("sts", region_name=region).get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as exc:
        raise TargetError(f"cannot tell the AWS account (sts get-caller-identity): {exc}") from None
    if bucket:
        return PublishTarget(bucket, region, account, "--bucket")
    if os.environ.get(ARTIFACTS_BUCKET_VARIABLE):
        return PublishTarget(
            os.environ[ARTIFACTS_BUCKET_VARIABLE], region, account, ARTIFACTS_BUCKET_VARIABLE
        )
    stack_name = stack or os.environ.get(STACK_VARIABLE) or DEFAULT_STACK
    output = _stack_output(session, region, stack_name)
    if output:
        return PublishTarget(output, region, account, f"stack {stack_name}'s {_OUTPUT} output")
    return PublishTarget(
        artifacts_bucket(region, account), region, account, f"gdk's rule (no stack {stack_name} found)"
    )


def _stack_output(session: Any, region: str, stack: str) -> str | None:
    try:
        described = session.client("cloudformation", region_name=region).describe_stacks(StackName=stack)
    except (ClientError, BotoCoreError):
        return None
    for entry in described.get("Stacks", []):
        for output in entry.get("Outputs", []):
            if output.get("OutputKey") == _OUTPUT:
                return str(output["OutputValue"])
    return None
