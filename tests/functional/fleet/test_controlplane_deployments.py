"""Deployments, the jobs that carry them (rollout, abort, timeout) and what devices report back."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

COMPONENTS = {"com.example.App": {"componentVersion": "1.0.0"}}


def _deploy(aws, target: str, **extra: Any) -> dict[str, Any]:
    return dict(aws.gg.create_deployment(targetArn=target, components=COMPONENTS, **extra))


def _error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response  # type: ignore[no-any-return]


def test_a_new_deployment_replaces_the_previous_one_for_its_target(aws) -> None:
    group = aws.add_group("fleet", ["fan-001"])
    first = _deploy(aws, group, deploymentName="v1")
    second = _deploy(aws, group, deploymentName="v2")
    old, new = (aws.gg.get_deployment(deploymentId=d["deploymentId"]) for d in (first, second))
    assert (old["deploymentStatus"], old["isLatestForTarget"], old["revisionId"]) == ("INACTIVE", False, "1")
    assert (new["deploymentStatus"], new["isLatestForTarget"], new["revisionId"]) == ("ACTIVE", True, "2")
    assert new["deploymentPolicies"] == {
        "failureHandlingPolicy": "ROLLBACK",
        "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
        "configurationValidationPolicy": {"timeoutInSeconds": 30},
    }
    latest = aws.gg.list_deployments(targetArn=group)["deployments"]
    assert [d["deploymentName"] for d in latest] == ["v2"]
    every = aws.gg.list_deployments(targetArn=group, historyFilter="ALL")["deployments"]
    assert [d["deploymentName"] for d in every] == ["v2", "v1"]
    # the device never sees the replaced deployment's job
    pending = aws.jobs.get_pending_job_executions(thingName="fan-001")
    assert [j["jobId"] for j in pending["queuedJobs"]] == [new["iotJobId"]]


def test_bad_deployments_are_refused_and_change_nothing(aws) -> None:
    response = _error(
        aws.gg.create_deployment, targetArn=aws.group_arn("no-such-group"), components=COMPONENTS
    )
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert "no-such-group does not exist" in response["Error"]["Message"]
    group = aws.add_group("fleet", ["fan-001"])
    bad_merge = {"com.example.App": {"componentVersion": "1.0.0", "configurationUpdate": {"merge": "{oops"}}}
    response = _error(aws.gg.create_deployment, targetArn=group, components=bad_merge)
    assert "merge is not valid JSON" in response["Error"]["Message"]
    list_merge = {"com.example.App": {"componentVersion": "1.0.0", "configurationUpdate": {"merge": "[1]"}}}
    assert (
        "JSON object"
        in _error(aws.gg.create_deployment, targetArn=group, components=list_merge)["Error"]["Message"]
    )
    assert aws.gg.list_deployments(historyFilter="ALL")["deployments"] == []


def test_cancel_and_a_second_cancel(aws) -> None:
    group = aws.add_group("fleet", ["fan-001"])
    deployment = _deploy(aws, group)
    assert "canceled" in aws.gg.cancel_deployment(deploymentId=deployment["deploymentId"])["message"]
    assert aws.gg.get_deployment(deploymentId=deployment["deploymentId"])["deploymentStatus"] == "CANCELED"
    assert aws.jobs.get_pending_job_executions(thingName="fan-001")["queuedJobs"] == []
    response = _error(aws.gg.cancel_deployment, deploymentId=deployment["deploymentId"])
    assert response["Error"]["Code"] == "ConflictException"
    assert _error(aws.gg.get_deployment, deploymentId="nope")["Error"]["Code"] == "ResourceNotFoundException"


def test_subdeployments_belong_to_their_parent(aws) -> None:
    fleet = aws.add_group("fleet", ["fan-001", "fan-002", "fan-003"])
    canary = aws.add_group("canary", [])
    aws.iot.add_thing_to_thing_group(thingGroupName="canary", thingName="fan-001")
    response = _error(
        aws.gg.create_deployment, targetArn=canary, parentTargetArn=fleet, components=COMPONENTS
    )
    assert "has no deployment to be the parent" in response["Error"]["Message"]
    parent = _deploy(aws, fleet)
    sub = _deploy(aws, canary, parentTargetArn=fleet)
    assert aws.gg.get_deployment(deploymentId=sub["deploymentId"])["parentTargetArn"] == fleet
    assert [d["deploymentId"] for d in aws.gg.list_deployments(parentTargetArn=fleet)["deployments"]] == [
        sub["deploymentId"]
    ]
    other = aws.add_group("other-fleet", [])
    _deploy(aws, other)
    response = _error(
        aws.gg.create_deployment, targetArn=canary, parentTargetArn=other, components=COMPONENTS
    )
    assert "cannot be used with another parent" in response["Error"]["Message"]
    # a new deployment to the parent replaces its subdeployments too
    revised = _deploy(aws, fleet)
    assert aws.gg.get_deployment(deploymentId=sub["deploymentId"])["deploymentStatus"] == "INACTIVE"
    assert aws.gg.get_deployment(deploymentId=parent["deploymentId"])["isLatestForTarget"] is False
    assert aws.gg.get_deployment(deploymentId=revised["deploymentId"])["isLatestForTarget"] is True


def test_a_device_works_through_its_jobs(aws) -> None:
    group = aws.add_group("fleet", ["fan-001"])
    deployment = _deploy(aws, group)
    started = aws.jobs.start_next_pending_job_execution(thingName="fan-001")["execution"]
    assert started["status"] == "IN_PROGRESS"
    assert json.loads(started["jobDocument"])["deploymentId"] == deployment["deploymentId"]
    assert (
        aws.jobs.get_pending_job_executions(thingName="fan-001")["inProgressJobs"][0]["jobId"]
        == started["jobId"]
    )
    done = aws.jobs.update_job_execution(
        thingName="fan-001",
        jobId=started["jobId"],
        status="FAILED",
        statusDetails={
            "detailed-deployment-status": "FAILED_ROLLBACK_COMPLETE",
            "deployment-failure-cause": "com.example.App is BROKEN",
            "deployment-error-stack": "[DEPLOYMENT_FAILURE, COMPONENT_BROKEN]",
            "deployment-error-types": "[USER_COMPONENT_ERROR]",
        },
        includeJobExecutionState=True,
    )
    assert done["executionState"]["status"] == "FAILED"
    response = _error(
        aws.jobs.update_job_execution, thingName="fan-001", jobId=started["jobId"], status="SUCCEEDED"
    )
    assert response["Error"]["Code"] == "InvalidStateTransitionException"
    assert aws.jobs.start_next_pending_job_execution(thingName="fan-001").get("execution") is None
    # the device's report is what ListEffectiveDeployments shows
    _report(aws, "fan-001", "UNHEALTHY", {"com.example.App": ("1.0.0", "BROKEN")})
    (effective,) = aws.gg.list_effective_deployments(coreDeviceThingName="fan-001")["effectiveDeployments"]
    assert effective["coreDeviceExecutionStatus"] == "FAILED"
    assert effective["reason"] == "com.example.App is BROKEN"
    assert effective["statusDetails"] == {
        "errorStack": ["DEPLOYMENT_FAILURE", "COMPONENT_BROKEN"],
        "errorTypes": ["USER_COMPONENT_ERROR"],
    }


def _report(aws, thing: str, status: str, components: dict[str, tuple[str, str]], sequence: int = 1) -> None:
    message = {
        "ggcVersion": "2.15.0",
        "platform": "linux",
        "architecture": "amd64",
        "runtime": "aws_nucleus_classic",
        "thing": thing,
        "sequenceNumber": sequence,
        "timestamp": int(time.time() * 1000),
        "messageType": "COMPLETE",
        "trigger": "THING_GROUP_DEPLOYMENT",
        "overallDeviceStatus": status,
        "components": [
            {
                "componentName": name,
                "version": version,
                "status": state,
                "isRoot": True,
                "fleetConfigArns": [
                    f"arn:aws:greengrass:us-east-1:123456789012:configuration:thinggroup/fleet:{sequence}"
                ],
                "statusDetails": {
                    "statusCodes": ["RUN_ERROR"] if state == "BROKEN" else [],
                    "statusReason": "",
                },
            }
            for name, (version, state) in components.items()
        ],
    }
    aws.iot_data.publish(
        topic=f"$aws/things/{thing}/greengrassv2/health/json", qos=1, payload=json.dumps(message).encode()
    )


def test_fleet_status_messages_make_core_devices(aws) -> None:
    aws.add_group("fleet", ["fan-001", "fan-002"])
    response = _error(aws.gg.get_core_device, coreDeviceThingName="fan-001")
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    _report(aws, "fan-001", "HEALTHY", {"com.example.App": ("1.0.0", "RUNNING")})
    _report(aws, "fan-002", "UNHEALTHY", {"com.example.App": ("2.0.0", "BROKEN")})
    device = aws.gg.get_core_device(coreDeviceThingName="fan-002")
    assert (device["status"], device["coreVersion"], device["architecture"]) == (
        "UNHEALTHY",
        "2.15.0",
        "amd64",
    )
    assert abs(device["lastStatusUpdateTimestamp"].timestamp() - time.time()) < 5
    unhealthy = aws.gg.list_core_devices(status="UNHEALTHY", thingGroupArn=aws.group_arn("fleet"))[
        "coreDevices"
    ]
    assert [d["coreDeviceThingName"] for d in unhealthy] == ["fan-002"]
    (installed,) = aws.gg.list_installed_components(coreDeviceThingName="fan-002")["installedComponents"]
    assert (
        installed["componentVersion"],
        installed["lifecycleState"],
        installed["lastInstallationSource"],
    ) == (
        "2.0.0",
        "BROKEN",
        "thinggroup/fleet",
    )
    assert installed["lifecycleStatusCodes"] == ["RUN_ERROR"]
    # a replayed (older) message changes nothing; a newer one does
    _report(aws, "fan-002", "HEALTHY", {"com.example.App": ("2.0.0", "RUNNING")}, sequence=1)
    assert aws.gg.get_core_device(coreDeviceThingName="fan-002")["status"] == "UNHEALTHY"
    _report(aws, "fan-002", "HEALTHY", {"com.example.App": ("1.0.0", "RUNNING")}, sequence=2)
    assert aws.gg.get_core_device(coreDeviceThingName="fan-002")["status"] == "HEALTHY"


@pytest.mark.parametrize(
    ("topic", "payload", "words"),
    [
        ("fanwatch/fan-001/telemetry", b"{}", "only takes fleet status messages"),
        ("$aws/things/fan-001/greengrassv2/health/json", b"not json", "not a fleet status message"),
        ("$aws/things/fan-001/greengrassv2/health/json", b'{"overallDeviceStatus": "FINE"}', "FINE"),
        (
            "$aws/things/fan-001/greengrassv2/health/json",
            b'{"thing": "fan-009", "overallDeviceStatus": "HEALTHY"}',
            "fan-009",
        ),
    ],
)
def test_bad_status_messages_are_refused(aws, topic: str, payload: bytes, words: str) -> None:
    response = _error(aws.iot_data.publish, topic=topic, payload=payload)
    assert response["Error"]["Code"] == "InvalidRequestException"
    assert words in response["Error"]["Message"]
    assert aws.gg.list_core_devices()["coreDevices"] == []


def _notified(aws, things: list[str]) -> list[str]:
    return [t for t in things if aws.jobs.get_pending_job_executions(thingName=t)["queuedJobs"]]


@pytest.mark.parametrize("plane", [60.0], indirect=True)  # a fleet minute passes in a second
def test_the_rollout_notifies_devices_at_its_rate_in_fleet_time(aws) -> None:
    things = [f"fan-{n:03d}" for n in range(1, 13)]
    group = aws.add_group("fleet", things)
    rollout = {
        "exponentialRate": {
            "baseRatePerMinute": 2,
            "incrementFactor": 2.0,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 2},
        },
        "maximumPerMinute": 100,
    }
    _deploy(aws, group, iotJobConfiguration={"jobExecutionsRolloutConfig": rollout})
    seen = [len(_notified(aws, things))]
    deadline = time.monotonic() + 15
    while seen[-1] < len(things) and time.monotonic() < deadline:
        time.sleep(0.25)
        seen.append(len(_notified(aws, things)))
    assert seen[0] <= 4, seen  # 2 in the first fleet minute (a little more if this machine is slow)
    assert seen[-1] == len(things), seen
    assert seen == sorted(seen) and len(set(seen)) >= 3, seen  # in stages, never backwards


def test_abort_criteria_cancel_the_job_for_devices_that_did_not_start(aws) -> None:
    things = ["fan-001", "fan-002", "fan-003", "fan-004"]
    group = aws.add_group("fleet", things)
    abort = {
        "criteriaList": [
            {
                "failureType": "FAILED",
                "action": "CANCEL",
                "thresholdPercentage": 50,
                "minNumberOfExecutedThings": 2,
            }
        ]
    }
    deployment = _deploy(aws, group, iotJobConfiguration={"abortConfig": abort})
    for thing in things[:2]:
        job = aws.jobs.start_next_pending_job_execution(thingName=thing)["execution"]["jobId"]
        aws.jobs.update_job_execution(thingName=thing, jobId=job, status="FAILED")
    assert aws.gg.get_deployment(deploymentId=deployment["deploymentId"])["deploymentStatus"] == "FAILED"
    assert _notified(aws, things) == []
    job_id = deployment["iotJobId"]
    left = aws.jobs.describe_job_execution(thingName="fan-003", jobId=job_id)["execution"]
    assert left["status"] == "CANCELED"


@pytest.mark.parametrize("plane", [600.0], indirect=True)  # a fleet minute passes in 0.1 s
def test_a_device_that_takes_too_long_times_out(aws) -> None:
    group = aws.add_group("fleet", ["fan-001"])
    deployment = _deploy(aws, group, iotJobConfiguration={"timeoutConfig": {"inProgressTimeoutInMinutes": 1}})
    aws.jobs.start_next_pending_job_execution(thingName="fan-001")
    time.sleep(0.5)
    _report(aws, "fan-001", "HEALTHY", {})
    (effective,) = aws.gg.list_effective_deployments(coreDeviceThingName="fan-001")["effectiveDeployments"]
    assert effective["coreDeviceExecutionStatus"] == "TIMED_OUT"
    assert "within 1 minutes" in effective["reason"]
    response = _error(
        aws.jobs.update_job_execution, thingName="fan-001", jobId=deployment["iotJobId"], status="SUCCEEDED"
    )
    assert response["Error"]["Code"] == "InvalidStateTransitionException"


def test_a_device_that_joins_the_group_later_gets_its_deployment(aws) -> None:
    group = aws.add_group("fleet", ["fan-001"])
    deployment = _deploy(aws, group)
    aws.iot.create_thing(thingName="fan-002")
    aws.iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="fan-002")
    time.sleep(0.6)  # the registry cache
    (queued,) = aws.jobs.get_pending_job_executions(thingName="fan-002")["queuedJobs"]
    assert queued["jobId"] == deployment["iotJobId"]
    aws.add_group("line-1", ["fan-003"], parent="fleet")  # child groups are in the parent's fleet
    (queued,) = aws.jobs.get_pending_job_executions(thingName="fan-003")["queuedJobs"]
    assert queued["jobId"] == deployment["iotJobId"]


def test_the_iot_api_lists_a_deployments_job_executions_and_moto_keeps_the_rest(aws) -> None:
    """ListJobExecutionsForJob (one paged call for a whole fleet) is served here; every other ``iot``
    operation, the registry's, still reaches moto on the same endpoint."""
    group = aws.add_group("fleet", ["fan-001", "fan-002", "fan-003"])
    deployment = _deploy(aws, group)
    job = deployment["iotJobId"]
    started = aws.jobs.start_next_pending_job_execution(thingName="fan-002")["execution"]
    aws.jobs.update_job_execution(thingName="fan-002", jobId=started["jobId"], status="SUCCEEDED")
    listed = aws.iot.list_job_executions_for_job(jobId=job)["executionSummaries"]
    assert {s["thingArn"].rsplit("/", 1)[-1]: s["jobExecutionSummary"]["status"] for s in listed} == {
        "fan-001": "QUEUED",
        "fan-002": "SUCCEEDED",
        "fan-003": "QUEUED",
    }
    assert all(s["thingArn"] == aws.thing_arn(s["thingArn"].rsplit("/", 1)[-1]) for s in listed)
    succeeded = aws.iot.list_job_executions_for_job(jobId=job, status="SUCCEEDED")["executionSummaries"]
    assert len(succeeded) == 1
    pages = list(
        aws.iot.get_paginator("list_job_executions_for_job").paginate(
            jobId=job, PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["executionSummaries"]) for p in pages] == [2, 1]
    response = _error(aws.iot.list_job_executions_for_job, jobId="no-such-job")
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    response = _error(aws.iot.list_job_executions_for_job, jobId=job, maxResults=251)
    assert response["Error"]["Code"] == "InvalidRequestException"
    assert aws.iot.describe_thing(thingName="fan-001")["thingName"] == "fan-001"  # moto's, as before
