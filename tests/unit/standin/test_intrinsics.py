"""CloudFormation intrinsic functions as the stand-in evaluates them."""

from __future__ import annotations

from typing import Any

import pytest

from fanwatch.standin.intrinsics import NO_VALUE, IntrinsicError, Resolver

TEMPLATE: dict[str, Any] = {
    "Parameters": {"Mode": {"Type": "String", "Default": "ON_DEMAND"}},
    "Conditions": {"Provisioned": {"Fn::Equals": [{"Ref": "Mode"}, "PROVISIONED"]}},
    "Resources": {"Stream": {"Type": "AWS::Kinesis::Stream"}, "Queue": {"Type": "AWS::SQS::Queue"}},
    "Mappings": {"Sizes": {"small": {"shards": 1}}},
}


def resolver(mode: str = "ON_DEMAND") -> Resolver:
    def attributes(logical_id: str, attribute: str | None) -> Any:
        return f"{logical_id}.{attribute or 'Ref'}"

    return Resolver(
        TEMPLATE, parameters={"Mode": mode}, pseudo={"AWS::Region": "eu-west-1"}, attributes=attributes
    )


def test_refs_attributes_and_string_functions() -> None:
    r = resolver()
    assert r.resolve({"Ref": "Stream"}) == "Stream.Ref"
    assert r.resolve({"Ref": "Mode"}) == "ON_DEMAND"
    assert r.resolve({"Fn::GetAtt": ["Stream", "Arn"]}) == "Stream.Arn"
    assert r.resolve({"Fn::GetAtt": "Queue.QueueName"}) == "Queue.QueueName"
    assert r.resolve({"Fn::Join": ["-", ["a", {"Ref": "AWS::Region"}]]}) == "a-eu-west-1"
    arn = "arn:aws:kinesis:r:1:stream/name"
    assert (
        r.resolve({"Fn::Select": [1, {"Fn::Split": ["/", {"Fn::Select": [5, {"Fn::Split": [":", arn]}]}]}]})
        == "name"
    )
    assert r.resolve({"Fn::Sub": "${AWS::Region}/${Stream.Arn}/${Stream}/${!Literal}"}) == (
        "eu-west-1/Stream.Arn/Stream.Ref/${Literal}"
    )
    assert r.resolve({"Fn::Sub": ["${x}-${Mode}", {"x": {"Ref": "Stream"}}]}) == "Stream.Ref-ON_DEMAND"
    assert r.resolve({"Fn::FindInMap": ["Sizes", "small", "shards"]}) == 1


def test_conditions_and_no_value_remove_properties() -> None:
    value = {
        "ShardCount": {"Fn::If": ["Provisioned", 2, {"Ref": "AWS::NoValue"}]},
        "List": [{"Ref": "AWS::NoValue"}, 1],
    }
    assert resolver().resolve(value) == {"List": [1]}
    assert resolver("PROVISIONED").resolve(value) == {"ShardCount": 2, "List": [1]}
    assert resolver().resolve({"Ref": "AWS::NoValue"}) is NO_VALUE
    assert resolver().resolve({"Fn::Not": [{"Condition": "Provisioned"}]}) is True


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"Ref": "Nothing"}, "neither a parameter"),
        ({"Fn::ImportValue": "x"}, "does not evaluate Fn::ImportValue"),
        ({"Fn::If": ["Unknown", 1, 2]}, "condition Unknown is not defined"),
        ({"Fn::Select": [3, ["a"]]}, "out of"),
    ],
)
def test_what_cannot_be_evaluated_is_named(value: dict[str, Any], says: str) -> None:
    with pytest.raises(IntrinsicError, match=says):
        resolver().resolve(value, "Resources.X.Properties")
