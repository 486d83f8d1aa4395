"""The embedded AWS stand-in runs what the stack defines: its checked-in template is the synthesized
one, and every name and setting it derives agrees with the stack's constructs."""

from __future__ import annotations

import json
import os
from typing import Any
from unittest import mock

import pytest

from fanwatch.standin.endpoint import AwsEndpoint
from fanwatch.standin.functions import function_environment
from fanwatch.standin.model import StackModel
from fanwatch.standin.template import TEMPLATE, build_model, load_template, normalized

REFRESH = (
    "the checked-in template is stale: run `make synth` (or `cd cloud-stack && python app.py && cd .. && "
    "python -m fanwatch.standin.refresh cloud-stack/cdk.out/fanwatch-cloud.template.json`) and commit "
    f"{TEMPLATE.relative_to(TEMPLATE.parents[2])}"
)
ENDPOINT = AwsEndpoint("http://127.0.0.1:4566")


@pytest.fixture(scope="module")
def model(template: dict[str, Any]) -> StackModel:
    return build_model(template, ENDPOINT)


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_the_checked_in_template_is_the_synthesized_one_but_for_asset_hashes(
    template: dict[str, Any],
) -> None:
    assert normalized(load_template()) == normalized(template), REFRESH


def test_normalising_hides_only_the_asset_keys_and_the_layer_description(template: dict[str, Any]) -> None:
    changed = json.loads(json.dumps(template))
    function = next(iter(_resources(changed, "AWS::Lambda::Function").values()))
    function["Properties"]["Code"]["S3Key"] = "0" * 64 + ".zip"
    assert normalized(changed) == normalized(template)
    function["Properties"]["Timeout"] = 1
    assert normalized(changed) != normalized(template)


def test_streams_rules_and_mappings_are_the_stacks(template: dict[str, Any], model: StackModel) -> None:
    streams = {p["Properties"]["Name"] for p in _resources(template, "AWS::Kinesis::Stream").values()}
    assert {s.name for s in model.streams} == streams
    rules = {
        r["Properties"]["RuleName"]: r["Properties"]
        for r in _resources(template, "AWS::IoT::TopicRule").values()
    }
    assert {r.name: r.sql for r in model.rules} == {n: p["TopicRulePayload"]["Sql"] for n, p in rules.items()}
    for rule in model.rules:
        (action,) = rule.actions
        assert action.kind == "Kinesis" and action.settings["PartitionKey"] == "${topic(2)}"
        assert action.settings["StreamName"] in streams
        assert rule.error_action is not None and rule.error_action.kind == "S3"
    defaults = {k: v.get("Default") for k, v in template["Parameters"].items()}
    assert len(model.mappings) == len(_resources(template, "AWS::Lambda::EventSourceMapping")) == 2
    for mapping in model.mappings:
        assert mapping.batch_size == int(defaults["DetectorBatchSize"])
        assert mapping.batching_window_s == float(defaults["DetectorBatchingWindowSeconds"])
        assert mapping.max_retries == int(defaults["DetectorMaxRetries"])
        assert mapping.bisect_on_error and mapping.report_item_failures
        assert mapping.on_failure_arn == model.queues[0].arn
        assert model.stream(mapping.source_arn).name in streams


def test_parameters_can_be_overridden_and_unknown_ones_are_refused(template: dict[str, Any]) -> None:
    model = build_model(template, ENDPOINT, parameters={"StreamMode": "PROVISIONED", "ShardCount": 2})
    assert {s.shard_count for s in model.streams} == {2}
    with pytest.raises(ValueError, match="no parameter"):
        build_model(template, ENDPOINT, parameters={"NoSuchKnob": 1})


def test_firehose_settings_come_from_the_delivery_streams_and_the_glue_tables(
    template: dict[str, Any], model: StackModel
) -> None:
    deliveries = _resources(template, "AWS::KinesisFirehose::DeliveryStream")
    assert {d.name for d in model.deliveries} == {
        d["Properties"]["DeliveryStreamName"] for d in deliveries.values()
    }
    lake_buffer = template["Parameters"]["LakeBufferSeconds"]["Default"]
    for delivery in model.deliveries:
        assert delivery.buffer_s == float(lake_buffer)
        assert delivery.dynamic_partitioning
        assert (
            "!{partitionKeyFromLambda:dt}" in delivery.prefix
            and "!{partitionKeyFromLambda:thing}" in delivery.prefix
        )
        assert delivery.table is not None and delivery.processor is not None
        assert model.function(delivery.processor).handler == "fanwatch.cloud.lake.lambda_handler"
        glue = next(
            t["Properties"]["TableInput"]
            for t in _resources(template, "AWS::Glue::Table").values()
            if t["Properties"]["TableInput"]["Name"] == delivery.table.name
        )
        assert [c.name for c in delivery.table.columns] == [
            c["Name"] for c in glue["StorageDescriptor"]["Columns"]
        ]


def test_the_handlers_get_every_variable_the_template_gives_them_resolved_to_local_names(
    template: dict[str, Any], model: StackModel
) -> None:
    local = {q.url for q in model.queues} | {t.arn for t in model.topics} | {b.name for b in model.buckets}
    local |= {t.name for t in model.tables} | {s.name for s in model.streams}
    for logical_id, resource in _resources(template, "AWS::Lambda::Function").items():
        declared = resource["Properties"].get("Environment", {}).get("Variables", {})
        environment = function_environment(model.function(logical_id), ENDPOINT)
        assert set(declared) <= set(environment), logical_id
        for name, value in declared.items():
            if isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value or "Fn::Select" in value):
                ref = value.get("Ref", "")
                if ref in template.get("Parameters", {}):
                    assert environment[name] == str(template["Parameters"][ref]["Default"]), name
                else:
                    assert environment[name] in local, (name, environment[name])
        assert environment["AWS_ENDPOINT_URL"] == ENDPOINT.url


def test_the_handlers_build_from_exactly_the_environment_the_template_gives_them(model: StackModel) -> None:
    """A handler reading a variable that the stack never sets fails on Lambda (a KeyError on the first
    invocation); built here under its function's environment and nothing else, it must fail the same."""
    from fanwatch.cloud import detector, notifier

    for build, handler in (
        (detector.from_environment, "fanwatch.cloud.detector.lambda_handler"),
        (notifier.from_environment, "fanwatch.cloud.notifier.lambda_handler"),
        (notifier.from_environment, "fanwatch.cloud.notifier.sweep_handler"),
    ):
        function = model.function_with_handler(handler)
        with mock.patch.dict(os.environ, function_environment(function, ENDPOINT), clear=True):
            assert build() is not None, handler
