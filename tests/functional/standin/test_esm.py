"""The Kinesis event source mapping against moto's Kinesis, with a function of the test's making."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from fanwatch.edge.clock import MonotonicClock, ScaledClock
from fanwatch.standin import AwsEndpoint
from fanwatch.standin.esm import EventSourcePoller
from fanwatch.standin.model import EventSourceMapping

STREAM = "esm-test"


def _mapping(endpoint: AwsEndpoint, **settings: Any) -> EventSourceMapping:
    values: dict[str, Any] = {
        "logical_id": "Mapping",
        "function": "Function",
        "source_arn": endpoint.arn("kinesis", f"stream/{STREAM}"),
        "batch_size": 100,
        "batching_window_s": 0.0,
        "max_retries": 2,
        "bisect_on_error": False,
        "report_item_failures": True,
        "on_failure_arn": None,
        "starting_position": "TRIM_HORIZON",
        "parallelization": 1,
    }
    return EventSourceMapping(**{**values, **settings})


def _numbers(event: dict[str, Any]) -> list[int]:
    return [int(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]


def _run(
    endpoint: AwsEndpoint,
    function: Callable[[dict[str, Any]], Any],
    count: int,
    *,
    letters: list[dict[str, Any]] | None = None,
    **settings: Any,
) -> EventSourcePoller:
    kinesis = endpoint.client("kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    for n in range(count):
        kinesis.put_record(StreamName=STREAM, Data=str(n).encode(), PartitionKey="pi-1")
    poller = EventSourcePoller(
        _mapping(endpoint, **settings),
        stream_name=STREAM,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        invoke=function,
        kinesis=kinesis,
        on_failure=None if letters is None else (lambda body: letters.append(json.loads(body))),
        clock=ScaledClock(MonotonicClock(), 50),
        poll_s=0.5,
    )
    poller.start()
    deadline = time.monotonic() + 30
    while not poller.idle and time.monotonic() < deadline:
        time.sleep(0.05)
    poller.stop()
    assert poller.idle
    return poller


def test_batches_respect_the_batch_size_and_keep_the_order(moto: AwsEndpoint) -> None:
    seen: list[list[int]] = []
    _run(moto, lambda event: seen.append(_numbers(event)) or {"batchItemFailures": []}, 25, batch_size=10)
    assert [n for batch in seen for n in batch] == list(range(25))
    assert max(len(b) for b in seen) <= 10


def test_a_reported_failure_retries_from_the_lowest_failed_record(moto: AwsEndpoint) -> None:
    calls: list[list[int]] = []

    def function(event: dict[str, Any]) -> dict[str, Any]:
        numbers = _numbers(event)
        calls.append(numbers)
        if len(calls) == 1:  # the first time, records 4 and 6 fail
            ids = [
                r["kinesis"]["sequenceNumber"]
                for r in event["Records"]
                if _numbers({"Records": [r]})[0] in (4, 6)
            ]
            return {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}
        return {"batchItemFailures": []}

    poller = _run(moto, function, 8)
    assert calls == [list(range(8)), [4, 5, 6, 7]]
    assert poller.stats.records == 8 and poller.stats.retries == 1


def test_a_report_naming_no_record_of_the_batch_fails_the_whole_batch(moto: AwsEndpoint) -> None:
    calls: list[list[int]] = []

    def function(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(_numbers(event))
        failures = [{"itemIdentifier": "not-a-sequence-number"}] if len(calls) == 1 else []
        return {"batchItemFailures": failures}

    _run(moto, function, 3)
    assert calls == [[0, 1, 2], [0, 1, 2]]


def test_retries_exhausted_send_the_batch_range_to_the_on_failure_destination(moto: AwsEndpoint) -> None:
    letters: list[dict[str, Any]] = []

    def function(event: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("always")

    poller = _run(moto, function, 3, letters=letters, max_retries=1)
    (letter,) = letters
    info = letter["KinesisBatchInfo"]
    assert (info["batchSize"], info["shardId"], info["streamArn"]) == (
        3,
        "shardId-000000000000",
        poller.mapping.source_arn,
    )
    assert letter["requestContext"]["approximateInvokeCount"] == 2
    assert letter["responseContext"]["functionError"] == "Unhandled"
    assert poller.stats.function_errors == 2


def test_bisection_isolates_a_failing_record_and_the_others_go_through_in_order(moto: AwsEndpoint) -> None:
    letters: list[dict[str, Any]] = []
    done: list[int] = []

    def function(event: dict[str, Any]) -> dict[str, Any]:
        numbers = _numbers(event)
        if 5 in numbers:
            raise RuntimeError("record 5 breaks the function")
        done.extend(numbers)
        return {"batchItemFailures": []}

    poller = _run(moto, function, 12, letters=letters, bisect_on_error=True, max_retries=0)
    assert done == [n for n in range(12) if n != 5]
    assert [letter["KinesisBatchInfo"]["batchSize"] for letter in letters] == [1]
    assert poller.stats.bisections >= 3  # 12 -> 6 -> 3 -> 2 -> 1


@pytest.mark.parametrize("window_s", [0.0, 20.0])
def test_the_batching_window_gathers_records_that_arrive_within_it(
    moto: AwsEndpoint, window_s: float
) -> None:
    """At 50x, a 20 s window is 0.4 s of wall time: records put 0.1 s apart land in one batch."""
    kinesis = moto.client("kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    batches: list[list[int]] = []
    poller = EventSourcePoller(
        _mapping(moto, batching_window_s=window_s),
        stream_name=STREAM,
        function_arn="f",
        invoke=lambda event: batches.append(_numbers(event)) or {"batchItemFailures": []},
        kinesis=kinesis,
        on_failure=None,
        clock=ScaledClock(MonotonicClock(), 50),
        poll_s=0.5,
    )
    poller.start()
    for n in range(3):
        kinesis.put_record(StreamName=STREAM, Data=str(n).encode(), PartitionKey="pi-1")
        time.sleep(0.1)
    deadline = time.monotonic() + 10
    while sum(map(len, batches)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    poller.stop()
    assert [n for b in batches for n in b] == [0, 1, 2]
    if window_s:
        assert batches == [[0, 1, 2]]
    else:
        assert len(batches) > 1
