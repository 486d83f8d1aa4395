"""The few ``greengrassv2`` and ``iot`` questions the fleet tools ask, over boto3, with clear errors.

Everything here is a public API call, so the tools behave the same against AWS and against the
local stand-ins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fanwatch.errors import FanwatchError
from fanwatch.fleet.arns import component_version_arn

__all__ = ["FleetApi", "FleetError"]


class FleetError(FanwatchError):
    """A fleet command cannot go on; nothing was changed unless the message says so."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class FleetApi:
    """boto3 ``greengrassv2`` and ``iot`` clients of one session and region."""

    def __init__(self, session: Any, region: str | None = None) -> None:
        self.region = region or session.region_name
        if not self.region:
            raise FleetError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or give --region)")
        self.greengrass = session.client("greengrassv2", region_name=self.region)
        self.iot = session.client("iot", region_name=self.region)
        self._account: str | None = None
        self._session = session

    @property
    def account(self) -> str:
        if self._account is None:
            try:
                identity = self._session.client("sts", region_name=self.region).get_caller_identity()
            except (ClientError, BotoCoreError) as exc:
                raise FleetError(f"cannot tell the AWS account (sts get-caller-identity): {exc}") from None
            self._account = str(identity["Account"])
        return self._account

    # -- thing groups -------------------------------------------------------------------------------

    def group_arn(self, group: str) -> str:
        try:
            return str(self.iot.describe_thing_group(thingGroupName=group)["thingGroupArn"])
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                raise FleetError(f"thing group {group!r} does not exist in {self.region}") from None
            raise

    def members(self, group: str) -> list[str]:
        """Things of the group and of its child groups (a deployment reaches them all)."""
        things: set[str] = set()
        for page in self.iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=group):
            things.update(page.get("things", []))
        for page in self.iot.get_paginator("list_thing_groups").paginate(parentGroup=group):
            for child in page.get("thingGroups", []):
                if child["groupName"] != group:
                    things.update(self.members(child["groupName"]))
        return sorted(things)

    def set_members(self, group: str, things: list[str]) -> None:
        """Make ``group`` (created if missing) hold exactly ``things``."""
        try:
            self.iot.create_thing_group(thingGroupName=group)
        except ClientError as exc:
            if _code(exc) != "ResourceAlreadyExistsException":
                raise
        current = set(self.members(group))
        for thing in sorted(set(things) - current):
            self.iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        for thing in sorted(current - set(things)):
            self.iot.remove_thing_from_thing_group(thingGroupName=group, thingName=thing)

    # -- components ---------------------------------------------------------------------------------

    def component_exists(self, name: str, version: str) -> bool:
        """Published in this account, or an AWS-provided (public) component."""
        for account in (self.account, "aws"):
            try:
                self.greengrass.describe_component(
                    arn=component_version_arn(self.region, account, name, version)
                )
                return True
            except ClientError as exc:
                if _code(exc) not in {"ResourceNotFoundException", "ValidationException"}:
                    raise
        return False

    def versions(self, name: str) -> list[str]:
        arn = f"arn:aws:greengrass:{self.region}:{self.account}:components:{name}"
        found: list[str] = []
        for page in self.greengrass.get_paginator("list_component_versions").paginate(arn=arn):
            found += [v["componentVersion"] for v in page.get("componentVersions", [])]
        return found

    # -- deployments and devices --------------------------------------------------------------------

    def deployments(self, target_arn: str, *, latest_only: bool = False) -> list[dict[str, Any]]:
        """Deployments of the target, newest first."""
        found: list[dict[str, Any]] = []
        history = "LATEST_ONLY" if latest_only else "ALL"
        paginator = self.greengrass.get_paginator("list_deployments")
        for page in paginator.paginate(targetArn=target_arn, historyFilter=history):
            found += page.get("deployments", [])
        return sorted(found, key=lambda d: d["creationTimestamp"], reverse=True)

    def latest(self, target_arn: str) -> dict[str, Any] | None:
        """The target's current deployment, in full (GetDeployment), or None."""
        found = self.deployments(target_arn, latest_only=True)
        return self.deployment(found[0]["deploymentId"]) if found else None

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        return dict(self.greengrass.get_deployment(deploymentId=deployment_id))

    def create(self, request: Mapping[str, Any]) -> str:
        return str(self.greengrass.create_deployment(**request)["deploymentId"])

    def core_device(self, thing: str) -> dict[str, Any] | None:
        try:
            return dict(self.greengrass.get_core_device(coreDeviceThingName=thing))
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise

    def health(self, group_arn: str) -> dict[str, str]:
        """thing -> HEALTHY | UNHEALTHY of every core device in the group that ever reported (one listing)."""
        paginator = self.greengrass.get_paginator("list_core_devices")
        return {
            d["coreDeviceThingName"]: d["status"]
            for page in paginator.paginate(thingGroupArn=group_arn)
            for d in page["coreDevices"]
        }

    def job_statuses(self, job_id: str) -> dict[str, str]:
        """thing -> its execution's status, for every device the deployment's job reached (one listing)."""
        paginator = self.iot.get_paginator("list_job_executions_for_job")
        return {
            summary["thingArn"].rsplit("/", 1)[-1]: summary["jobExecutionSummary"]["status"]
            for page in paginator.paginate(jobId=job_id)
            for summary in page.get("executionSummaries", [])
        }

    def effective(self, thing: str) -> list[dict[str, Any]]:
        """The device's deployment jobs, newest first (empty for a device that never reported)."""
        try:
            paginator = self.greengrass.get_paginator("list_effective_deployments")
            found = [
                d
                for page in paginator.paginate(coreDeviceThingName=thing)
                for d in page["effectiveDeployments"]
            ]
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return []
            raise
        return sorted(found, key=lambda d: d["creationTimestamp"], reverse=True)

    def installed(self, thing: str) -> list[dict[str, Any]]:
        try:
            paginator = self.greengrass.get_paginator("list_installed_components")
            return [
                c
                for page in paginator.paginate(coreDeviceThingName=thing, topologyFilter="ALL")
                for c in page["installedComponents"]
            ]
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return []
            raise
