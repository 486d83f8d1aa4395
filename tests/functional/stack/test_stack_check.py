"""Each check of ``fanwatch stack check`` passes on a healthy stack and fails, with what to do, on the
fault it is there to find."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fanwatch.stack.check import CHECK_THING, LOCAL_LIMITS, StackCheck, Verdict
from fanwatch.standin import EmbeddedAws

pytestmark = pytest.mark.timeout(120)


def results(check: StackCheck) -> dict[str, tuple[Verdict, str, str]]:
    return {r.check: (r.verdict, r.detail, r.todo) for r in check.run()}


def test_a_healthy_stack_passes_and_the_test_message_reaches_the_lake(aws: EmbeddedAws, session) -> None:
    check = StackCheck(session, "fanwatch-cloud", endpoint_url=aws.endpoint.url, timeout_s=30)
    got = results(check)
    assert {name: verdict for name, (verdict, _, _) in got.items()} == {
        "outputs": Verdict.PASS,
        "endpoint": Verdict.PASS,
        "telemetry": Verdict.PASS,
        "detector": Verdict.PASS,
        "lake": Verdict.PASS,
    }, got
    assert "read back from fanwatch-telemetry" in got["telemetry"][1]
    assert "fanwatch-cloud-functions-detector reads fanwatch-telemetry: Enabled" in got["detector"][1]
    assert "fanwatch_lake.readings (s3://fanwatch-cloud-data-lake/readings/)" in got["lake"][1]
    # the message went the whole way, as a device's would: rule, stream, detector, Firehose, lake
    assert aws.wait_idle(30)
    aws.flush_lake()
    rows = aws.lake().query(f"SELECT label, flags FROM readings WHERE thing = '{CHECK_THING}'").rows
    assert len(rows) == 1 and rows[0][0] == "stack-check", rows
    assert aws.dead_letters() == []


def test_a_missing_stack_fails_and_skips_what_needs_its_outputs(aws: EmbeddedAws, session) -> None:
    got = results(StackCheck(session, "no-such-stack", endpoint_url=aws.endpoint.url))
    assert got["outputs"][0] is Verdict.FAIL
    assert got["outputs"][1] == "no stack no-such-stack in us-east-1"
    assert "--stack NAME" in got["outputs"][2]
    assert got["endpoint"][0] is Verdict.PASS
    assert [got[n][0] for n in ("telemetry", "detector", "lake")] == [Verdict.SKIP] * 3


def test_a_disabled_mapping_fails_with_the_command_that_enables_it(aws: EmbeddedAws, session) -> None:
    lambda_ = aws.client("lambda")
    (mapping,) = lambda_.list_event_source_mappings(FunctionName="fanwatch-cloud-functions-detector")[
        "EventSourceMappings"
    ]
    lambda_.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    got = results(StackCheck(session, "fanwatch-cloud", endpoint_url=aws.endpoint.url, publish=False))
    verdict, detail, todo = got["detector"]
    assert verdict is Verdict.FAIL
    assert "fanwatch-telemetry: Disabled" in detail
    assert f"aws lambda update-event-source-mapping --uuid {mapping['UUID']} --enabled" in todo
    assert got["telemetry"][0] is Verdict.SKIP


def test_a_rule_that_cannot_deliver_fails_the_telemetry_check(aws: EmbeddedAws, session) -> None:
    aws.faults.refuse("kinesis", "PutRecord", seconds=60)  # the rule's Kinesis action fails
    got = results(StackCheck(session, "fanwatch-cloud", endpoint_url=aws.endpoint.url, timeout_s=3))
    verdict, detail, todo = got["telemetry"]
    assert verdict is Verdict.FAIL
    assert detail.endswith("not in fanwatch-telemetry after 3 s")
    assert "s3://fanwatch-cloud-data-lake/errors/iot/" in todo


def test_a_lake_table_that_is_gone_fails_the_lake_check(aws: EmbeddedAws, session) -> None:
    aws.client("glue").delete_table(DatabaseName="fanwatch_lake", Name="readings")
    got = results(StackCheck(session, "fanwatch-cloud", endpoint_url=aws.endpoint.url, publish=False))
    assert got["lake"][0] is Verdict.FAIL
    assert "EntityNotFoundException" in got["lake"][1]


def test_no_credentials_is_one_failure_per_check_that_says_what_to_do(
    aws: EmbeddedAws, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    got = results(
        StackCheck(boto3.Session(region_name="us-east-1"), "fanwatch-cloud", endpoint_url=aws.endpoint.url)
    )
    assert got["outputs"] == (Verdict.FAIL, "no AWS credentials", got["outputs"][2])
    assert "aws configure" in got["outputs"][2]


def test_the_command_prints_a_line_per_check_and_what_a_local_check_cannot_show(aws: EmbeddedAws) -> None:
    env = {k: v for k, v in os.environ.items() if k not in aws.endpoint.cleared()}
    env.update(aws.endpoint.environment())
    done = subprocess.run(
        [sys.executable, "-m", "fanwatch", "stack", "check", "--timeout", "30"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"checking stack fanwatch-cloud in us-east-1 on {aws.endpoint.url}"
    assert [line.split()[:2] for line in lines[1:] if line.startswith(("PASS", "FAIL", "SKIP"))] == [
        ["PASS", "outputs"],
        ["PASS", "endpoint"],
        ["PASS", "telemetry"],
        ["PASS", "detector"],
        ["PASS", "lake"],
    ]
    assert all(f"  - {limit}" in lines for limit in LOCAL_LIMITS)
    assert lines[-1] == "all checks passed"

    bad = subprocess.run(
        [sys.executable, "-m", "fanwatch", "stack", "check", "--stack", "nope", "--no-publish"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert bad.returncode == 1
    assert "FAIL  outputs   no stack nope in us-east-1" in bad.stdout
    assert bad.stdout.rstrip().endswith("1 check(s) failed")
