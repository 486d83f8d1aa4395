"""The local Greengrass control plane's operations: ``greengrassv2`` for people and tools, the IoT jobs
data plane and the fleet status topic for devices.

Each handler takes and returns what boto3 does; :mod:`.restjson` did the HTTP, the routing and the
model checks before and does them again after.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from fanwatch.fleet.arns import TargetArn, parse_component_arn
from fanwatch.fleet.controlplane.components import PUBLIC_ACCOUNT, ComponentRegistry
from fanwatch.fleet.controlplane.deployments import Deployment, DeploymentBook, Execution
from fanwatch.fleet.controlplane.devices import DeviceBook
from fanwatch.fleet.controlplane.registry import IotRegistry
from fanwatch.fleet.controlplane.restjson import ApiError, RestJsonService, load_service_model
from fanwatch.fleet.states import ExecutionStatus

__all__ = ["ControlPlane"]

T = TypeVar("T")
_DEFAULT_PAGE = 50


def _page(items: Sequence[T], params: dict[str, Any]) -> tuple[list[T], str | None]:
    """One page and the token of the next (tokens are offsets, base64 so they read as opaque)."""
    size = int(params.get("maxResults") or _DEFAULT_PAGE)
    start = 0
    token = params.get("nextToken")
    if token:
        try:
            start = int(base64.b64decode(token).decode())
        except (ValueError, binascii.Error):
            raise ApiError(
                "ValidationException", "nextToken is not valid", reason="FIELD_VALIDATION_FAILED"
            ) from None
    end = start + size
    next_token = base64.b64encode(str(end).encode()).decode() if end < len(items) else None
    return list(items[start:end]), next_token


def _paged(key: str, items: Sequence[Any], params: dict[str, Any]) -> dict[str, Any]:
    page, token = _page(items, params)
    out: dict[str, Any] = {key: page}
    if token:
        out["nextToken"] = token
    return out


class ControlPlane:
    """The state (components, deployments, devices) and the three services that serve it."""

    def __init__(
        self,
        *,
        components: ComponentRegistry,
        deployments: DeploymentBook,
        devices: DeviceBook,
        registry: IotRegistry,
    ) -> None:
        self.components = components
        self.deployments = deployments
        self.devices = devices
        self.registry = registry
        self.greengrass = RestJsonService(
            load_service_model("greengrassv2"),
            validation_error="ValidationException",
            internal_error="InternalServerException",
        )
        self.jobs = RestJsonService(
            load_service_model("iot-jobs-data"),
            validation_error="InvalidRequestException",
            internal_error="ServiceUnavailableException",
        )
        self.iot = RestJsonService(
            load_service_model("iot"),
            validation_error="InvalidRequestException",
            internal_error="ServiceUnavailableException",
            partial=True,  # the registry (things, groups) is moto's
        )
        self.iot_data = RestJsonService(
            load_service_model("iot-data"),
            validation_error="InvalidRequestException",
            internal_error="InternalFailureException",
        )
        self.greengrass.add_handlers(
            {
                "CreateComponentVersion": self.create_component_version,
                "ListComponentVersions": self.list_component_versions,
                "ListComponents": self.list_components,
                "DescribeComponent": self.describe_component,
                "GetComponent": self.get_component,
                "CreateDeployment": self.create_deployment,
                "GetDeployment": self.get_deployment,
                "ListDeployments": self.list_deployments,
                "CancelDeployment": self.cancel_deployment,
                "ListCoreDevices": self.list_core_devices,
                "GetCoreDevice": self.get_core_device,
                "ListEffectiveDeployments": self.list_effective_deployments,
                "ListInstalledComponents": self.list_installed_components,
            }
        )
        self.jobs.add_handlers(
            {
                "GetPendingJobExecutions": self.get_pending_job_executions,
                "StartNextPendingJobExecution": self.start_next_pending_job_execution,
                "UpdateJobExecution": self.update_job_execution,
                "DescribeJobExecution": self.describe_job_execution,
            }
        )
        self.iot_data.add_handlers({"Publish": self.publish})
        self.iot.add_handlers({"ListJobExecutionsForJob": self.list_job_executions_for_job})

    @property
    def services(self) -> list[RestJsonService]:
        return [self.greengrass, self.jobs, self.iot_data, self.iot]

    # -- components ---------------------------------------------------------------------------------

    def create_component_version(self, params: dict[str, Any]) -> dict[str, Any]:
        if "lambdaFunction" in params:
            raise ApiError("ValidationException", "the local control plane does not import Lambda functions")
        if "inlineRecipe" not in params:
            raise ApiError(
                "ValidationException", "inlineRecipe is required", reason="FIELD_VALIDATION_FAILED"
            )
        created = self.components.create(params["inlineRecipe"], params.get("tags"))
        return {
            "arn": created.arn,
            "componentName": created.name,
            "componentVersion": created.version,
            "creationTimestamp": created.created,
            "status": {"componentState": "DEPLOYABLE", "message": "NONE", "errors": {}},
        }

    def _component(self, arn: str) -> tuple[str, str, str | None]:
        try:
            return parse_component_arn(arn)
        except ValueError as exc:
            raise ApiError("ValidationException", str(exc), reason="FIELD_VALIDATION_FAILED") from None

    def list_component_versions(self, params: dict[str, Any]) -> dict[str, Any]:
        account, name, _ = self._component(params["arn"])
        versions = [
            {"componentName": c.name, "componentVersion": c.version, "arn": c.arn}
            for c in self.components.versions(account, name)
        ]
        return _paged("componentVersions", versions, params)

    def list_components(self, params: dict[str, Any]) -> dict[str, Any]:
        account = PUBLIC_ACCOUNT if params.get("scope") == "PUBLIC" else self.components.account
        listed = []
        for latest in self.components.latest_by_name(account):
            described = latest.describe()
            listed.append(
                {
                    "arn": latest.component_arn,
                    "componentName": latest.name,
                    "latestVersion": {
                        "arn": latest.arn,
                        "componentVersion": latest.version,
                        "creationTimestamp": latest.created,
                        "description": described["description"] or latest.name,
                        "publisher": described["publisher"] or "unknown",
                        "platforms": described["platforms"],
                    },
                }
            )
        return _paged("components", listed, params)

    def _version(self, arn: str) -> Any:
        account, name, version = self._component(arn)
        if version is None:
            raise ApiError("ValidationException", f"{arn} names no version", reason="FIELD_VALIDATION_FAILED")
        return self.components.get(account, name, version)

    def describe_component(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(self._version(params["arn"]).describe())

    def get_component(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self._version(params["arn"])
        output_format = params.get("recipeOutputFormat") or "JSON"
        out: dict[str, Any] = {
            "recipeOutputFormat": output_format,
            "recipe": found.recipe_bytes(output_format),
        }
        if found.tags:
            out["tags"] = dict(found.tags)
        return out

    # -- deployments --------------------------------------------------------------------------------

    def create_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        created = self.deployments.create(params)
        return {
            "deploymentId": created.deployment_id,
            "iotJobId": created.job_id,
            "iotJobArn": created.job_arn,
        }

    def get_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        self.deployments.tick()
        return self.deployments.get(params["deploymentId"]).describe()

    def list_deployments(self, params: dict[str, Any]) -> dict[str, Any]:
        self.deployments.tick()
        found = self.deployments.matching(
            target=params.get("targetArn"),
            parent=params.get("parentTargetArn"),
            latest_only=params.get("historyFilter", "LATEST_ONLY") == "LATEST_ONLY",
        )
        return _paged("deployments", [d.summary() for d in found], params)

    def cancel_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        canceled = self.deployments.cancel(params["deploymentId"])
        return {"message": f"Deployment {canceled.deployment_id} canceled"}

    # -- core devices -------------------------------------------------------------------------------

    def list_core_devices(self, params: dict[str, Any]) -> dict[str, Any]:
        devices = self.devices.all()
        if params.get("thingGroupArn"):
            group = TargetArn.parse(params["thingGroupArn"]).name
            members = self.registry.members(group)
            devices = [d for d in devices if d.thing in members]
        if params.get("status"):
            devices = [d for d in devices if d.status == params["status"]]
        if params.get("runtime"):
            devices = [d for d in devices if d.runtime == params["runtime"]]
        return _paged("coreDevices", [d.summary() for d in devices], params)

    def get_core_device(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.devices.get(params["coreDeviceThingName"]).describe()

    def list_effective_deployments(self, params: dict[str, Any]) -> dict[str, Any]:
        thing = params["coreDeviceThingName"]
        self.devices.get(thing)
        entries = [_effective(d, e) for d, e in self.deployments.effective(thing)]
        return _paged("effectiveDeployments", entries, params)

    def list_installed_components(self, params: dict[str, Any]) -> dict[str, Any]:
        device = self.devices.get(params["coreDeviceThingName"])
        components = sorted(device.components.values(), key=lambda c: c.name)
        if params.get("topologyFilter", "ROOT") == "ROOT":
            components = [c for c in components if c.root]
        return _paged("installedComponents", [c.describe() for c in components], params)

    # -- devices: IoT jobs data plane and fleet status ------------------------------------------------

    def get_pending_job_executions(self, params: dict[str, Any]) -> dict[str, Any]:
        in_progress, queued = self.deployments.pending(params["thingName"])
        return {
            "inProgressJobs": [e.summary(d.job_id) for d, e in in_progress],
            "queuedJobs": [e.summary(d.job_id) for d, e in queued],
        }

    def start_next_pending_job_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        started = self.deployments.start_next(params["thingName"], params.get("statusDetails"))
        return {} if started is None else {"execution": _execution(*started, document=True)}

    def update_job_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        deployment, execution = self.deployments.update(
            params["thingName"],
            params["jobId"],
            ExecutionStatus(params["status"]),
            params.get("statusDetails"),
        )
        out: dict[str, Any] = {}
        if params.get("includeJobExecutionState"):
            out["executionState"] = {
                "status": execution.status.value,
                "statusDetails": dict(execution.details),
                "versionNumber": execution.version,
            }
        if params.get("includeJobDocument"):
            out["jobDocument"] = _job_document(deployment)
        return out

    def describe_job_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        deployment, execution = self.deployments.find_execution(params["thingName"], params["jobId"])
        return {
            "execution": _execution(deployment, execution, document=bool(params.get("includeJobDocument")))
        }

    def list_job_executions_for_job(self, params: dict[str, Any]) -> dict[str, Any]:
        """How far a deployment's job got, in one paged listing (what a rollout of thousands polls)."""
        region, account = self.deployments.region, self.deployments.account
        summaries = [
            {
                "thingArn": f"arn:aws:iot:{region}:{account}:thing/{e.thing}",
                "jobExecutionSummary": {
                    "status": e.status.value,
                    "queuedAt": dt.datetime.fromtimestamp(e.queued_at, dt.UTC),
                    "lastUpdatedAt": dt.datetime.fromtimestamp(e.updated_at or e.queued_at, dt.UTC),
                    "executionNumber": 1,
                    **(
                        {"startedAt": dt.datetime.fromtimestamp(e.started_at, dt.UTC)} if e.started_at else {}
                    ),
                },
            }
            for e in self.deployments.executions_for_job(params["jobId"])
            if params.get("status") in (None, e.status.value)
        ]
        return _paged("executionSummaries", summaries, params)

    def publish(self, params: dict[str, Any]) -> dict[str, Any]:
        self.devices.receive(params["topic"], params.get("payload") or b"")
        return {}


def _job_document(deployment: Deployment) -> str:
    """What a Greengrass deployment's job carries: which deployment to fetch (the device asks the
    service for its configuration, as the nucleus does with GetDeploymentConfiguration)."""
    return json.dumps({"deploymentId": deployment.deployment_id, "targetArn": deployment.target.arn})


def _execution(deployment: Deployment, execution: Execution, *, document: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobId": deployment.job_id,
        "thingName": execution.thing,
        "status": execution.status.value,
        "statusDetails": dict(execution.details),
        "queuedAt": int(execution.queued_at),
        "lastUpdatedAt": int(execution.updated_at or execution.queued_at),
        "versionNumber": execution.version,
        "executionNumber": 1,
    }
    if execution.started_at is not None:
        out["startedAt"] = int(execution.started_at)
    if document:
        out["jobDocument"] = _job_document(deployment)
    return out


def _effective(deployment: Deployment, execution: Execution) -> dict[str, Any]:
    details = execution.details
    reason = details.get("deployment-failure-cause") or details.get("detailed-deployment-status") or ""
    if execution.status.value == "CANCELED" and deployment.ended_because:
        reason = reason or deployment.ended_because
    out: dict[str, Any] = {
        "deploymentId": deployment.deployment_id,
        "deploymentName": deployment.name,
        "iotJobId": deployment.job_id,
        "iotJobArn": deployment.job_arn,
        "targetArn": deployment.target.arn,
        "coreDeviceExecutionStatus": execution.status.value,
        "creationTimestamp": dt.datetime.fromtimestamp(deployment.created, dt.UTC),
        "modifiedTimestamp": dt.datetime.fromtimestamp(execution.updated_at or execution.queued_at, dt.UTC),
    }
    if reason:
        out["reason"] = reason
    stack, types = (
        _listed(details.get("deployment-error-stack")),
        _listed(details.get("deployment-error-types")),
    )
    if stack or types:
        out["statusDetails"] = {"errorStack": stack, "errorTypes": types}
    return out


def _listed(text: str | None) -> list[str]:
    """``[A, B]`` (how the nucleus writes a list into a job's details) as a list."""
    if not text:
        return []
    return [part.strip() for part in text.strip("[]").split(",") if part.strip()]
