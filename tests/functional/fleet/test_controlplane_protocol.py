"""The control plane speaks rest-json as botocore's model describes it: routes, checks, errors.

Requests go through real boto3 clients where botocore lets them through (botocore checks types and
``min`` but not patterns, enums or ``max``: the service does), and as raw HTTP for what no client
would send.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from fanwatch.fleet.controlplane.restjson import load_service_model
from fanwatch.fleet.controlplane.service import ControlPlane
from fanwatch.fleet.controlplane.shapes import compiled_pattern

SERVED = {
    "CreateComponentVersion",
    "ListComponentVersions",
    "ListComponents",
    "DescribeComponent",
    "GetComponent",
    "CreateDeployment",
    "GetDeployment",
    "ListDeployments",
    "CancelDeployment",
    "ListCoreDevices",
    "GetCoreDevice",
    "ListEffectiveDeployments",
    "ListInstalledComponents",
}


def _error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response  # type: ignore[no-any-return]


def test_the_issue_operations_are_served_and_every_pattern_they_use_compiles(plane) -> None:
    control: ControlPlane = plane.plane
    assert set(control.greengrass.operations) == SERVED
    patterns = []

    def walk(shape: Any, seen: set[str]) -> None:
        if shape.name in seen:
            return
        seen.add(shape.name)
        if "pattern" in shape.metadata:
            patterns.append(shape.metadata["pattern"])
        for child in getattr(shape, "members", {}).values():
            walk(child, seen)
        for attribute in ("member", "key", "value"):
            if hasattr(shape, attribute):
                walk(getattr(shape, attribute), seen)

    for service in control.services:
        for shape in service.input_shapes():
            walk(shape, set())
    assert patterns and all(compiled_pattern(p) for p in patterns)
    assert compiled_pattern(r"[^\p{C}]+").fullmatch("ok") and not compiled_pattern(r"^[^\p{C}]+$").match(
        "a\x07"
    )


def test_routes_come_from_the_model(plane) -> None:
    """Every served operation answers at the requestUri and method the model gives it, and only there."""
    model = load_service_model("greengrassv2")
    for name in SERVED:
        http = model.operation_model(name).http
        assert http["requestUri"].startswith("/greengrass/v2/"), name
    status, body = _raw(plane, "PATCH", "/greengrass/v2/components")  # a path the model has, a wrong method
    assert status == 400 and body["reason"] == "UNKNOWN_OPERATION"
    status, body = _raw(plane, "GET", "/greengrass/v2/nothing-here")
    assert status == 400 and "no operation" in body["message"]


def test_a_model_operation_we_do_not_serve_says_so(aws) -> None:
    response = _error(aws.gg.delete_core_device, coreDeviceThingName="fan-001")
    assert response["Error"]["Code"] == "ValidationException"
    assert "does not implement DeleteCoreDevice" in response["Error"]["Message"]


def test_what_botocore_lets_through_the_service_refuses(aws) -> None:
    response = _error(aws.gg.create_deployment, targetArn="fan-001")
    assert response["Error"]["Code"] == "ValidationException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = response["Error"]["Message"]
    assert message.startswith("1 validation error detected: Value 'fan-001' at 'targetArn'")
    assert "regular expression pattern" in message

    group = aws.add_group("fleet", [])
    response = _error(
        aws.gg.create_deployment,
        targetArn=group,
        deploymentPolicies={"failureHandlingPolicy": "SOMETIMES"},
        iotJobConfiguration={"jobExecutionsRolloutConfig": {"maximumPerMinute": 5000}},
    )
    message = response["Error"]["Message"]
    assert message.startswith("2 validation errors detected")
    assert "enum value set: [ROLLBACK, DO_NOTHING]" in message and "less than or equal to 1000" in message
    response = _error(aws.gg.list_components, maxResults=101)
    assert "less than or equal to 100" in response["Error"]["Message"]


def test_botocore_itself_refuses_the_merge_object_of_the_old_docs(aws) -> None:
    """docs/core.md once showed ``configurationUpdate.merge`` as an object; CreateDeployment takes text."""
    with pytest.raises(ParamValidationError, match="merge"):
        aws.gg.create_deployment(
            targetArn=aws.group_arn("fleet"),
            components={"x": {"componentVersion": "1.0.0", "configurationUpdate": {"merge": {"a": 1}}}},
        )


def _raw(plane, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    """An HTTP request signed for greengrass by scope only (the control plane does not check signatures)."""
    request = urllib.request.Request(
        plane.url + path,
        data=body,
        method=method,
        headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/greengrass/aws4_request, "
            "SignedHeaders=host, Signature=0",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        assert error.headers["x-amzn-ErrorType"]
        return error.code, json.loads(error.read())


def test_malformed_requests_get_the_models_errors(plane) -> None:
    status, body = _raw(plane, "POST", "/greengrass/v2/deployments", b"{not json")
    assert status == 400 and body["reason"] == "CANNOT_PARSE"
    status, body = _raw(plane, "POST", "/greengrass/v2/deployments", b"[1, 2]")
    assert status == 400 and body["reason"] == "CANNOT_PARSE"
    status, body = _raw(plane, "POST", "/greengrass/v2/deployments", b"{}")  # no targetArn
    assert status == 400 and body["fields"] == [
        {"name": "targetArn", "message": "Member 'targetArn' must not be null"}
    ]
    status, body = _raw(plane, "POST", "/greengrass/v2/deployments", json.dumps({"targetArn": 7}).encode())
    assert status == 400 and "Member must be a string" in body["message"]
    status, body = _raw(plane, "GET", "/greengrass/v2/components?maxResults=many")
    assert status == 400 and body["reason"] == "CANNOT_PARSE"
    status, body = _raw(plane, "POST", "/greengrass/v2/createComponentVersion", b'{"inlineRecipe": "%%%"}')
    assert status == 400 and body["reason"] == "CANNOT_PARSE"


def test_pagination_follows_next_tokens(aws) -> None:
    for patch in range(7):
        aws.publish("com.example.Paged", f"1.0.{patch}")
    arn = aws.component_arn("com.example.Paged")
    first = aws.gg.list_component_versions(arn=arn, maxResults=3)
    assert [v["componentVersion"] for v in first["componentVersions"]] == ["1.0.6", "1.0.5", "1.0.4"]
    paginator = aws.gg.get_paginator("list_component_versions")
    pages = list(paginator.paginate(arn=arn, PaginationConfig={"PageSize": 3}))
    assert [len(p["componentVersions"]) for p in pages] == [3, 3, 1]
    response = _error(aws.gg.list_component_versions, arn=arn, nextToken="not-a-token")
    assert response["Error"]["Code"] == "ValidationException"
