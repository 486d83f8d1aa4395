"""The S3 model store moves many forests at once with requests in flight (real boto3, the stand-in's S3)."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fanwatch.cloud.stores import S3ModelStore
from fanwatch.rcf import BatchStore, ForestManager

from .conftest import REGION, Aws

SMALL = {"num_trees": 8, "sample_size": 32, "shingle_size": 4}


class InFlight:
    """Counts the S3 requests a client has on the wire at once: each waits ``hold_s`` before it is
    sent (as if the network were that slow), between botocore's before-send and after-call events."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.now = self.peak = self.sent = 0
        self._lock = threading.Lock()

    def before_send(self, **_: Any) -> None:
        with self._lock:
            self.now += 1
            self.sent += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.hold_s)

    def after_call(self, **_: Any) -> None:
        with self._lock:
            self.now -= 1


def _s3(aws: Aws, counter: InFlight | None = None) -> Any:
    client = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=aws.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=16),
    )
    if counter is not None:
        client.meta.events.register("before-send.s3.*", counter.before_send)
        client.meta.events.register("after-call.s3.*", counter.after_call)
        client.meta.events.register("after-call-error.s3.*", counter.after_call)
    return client


@pytest.mark.parametrize("in_flight", [1, 4])
def test_many_models_move_with_the_configured_requests_in_flight(aws: Aws, in_flight: int) -> None:
    counter = InFlight(hold_s=0.05)
    store = S3ModelStore(_s3(aws, counter), aws.model_bucket, in_flight=in_flight)
    assert isinstance(store, BatchStore)
    models = {f"fan-{i}": bytes([i]) * 1000 for i in range(8)}
    store.put_many(models)
    assert counter.sent == 8 and counter.peak == in_flight
    got = store.get_many([*models, "never-stored"])
    assert got == {**models, "never-stored": None}
    assert counter.sent == 17 and counter.peak == in_flight and counter.now == 0


def test_put_many_writes_only_the_models_that_changed(aws: Aws) -> None:
    counter = InFlight(hold_s=0)
    store = S3ModelStore(_s3(aws, counter), aws.model_bucket)
    store.put_many({"a": b"1", "b": b"2"})
    store.put_many({"a": b"1", "b": b"3", "c": b"4"})
    assert counter.sent == 4  # a's second write was skipped: it had not changed
    assert store.get_many(["a", "b", "c"]) == {"a": b"1", "b": b"3", "c": b"4"}


def test_a_missing_bucket_fails_the_whole_batch_after_every_request_ended(aws: Aws) -> None:
    counter = InFlight(hold_s=0.02)
    store = S3ModelStore(_s3(aws, counter), "no-such-bucket", in_flight=4)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        store.get_many([f"fan-{i}" for i in range(6)])
    assert counter.now == 0  # nothing left running behind the error
    with pytest.raises(ClientError, match="NoSuchBucket"):
        store.put_many({"fan-0": b"x", "fan-1": b"y"})
    with pytest.raises(ValueError, match="in_flight"):
        S3ModelStore(_s3(aws), aws.model_bucket, in_flight=0)


def test_the_manager_reloads_a_batchs_forests_from_s3_concurrently(aws: Aws) -> None:
    keys = [f"fan-{i}" for i in range(8)] * 30
    points = np.random.default_rng(3).normal(1500, 20, len(keys))
    first = ForestManager(**SMALL, store=S3ModelStore(_s3(aws), aws.model_bucket))
    first.process(keys, points)
    first.flush()
    counter = InFlight(hold_s=0.05)
    again = ForestManager(**SMALL, store=S3ModelStore(_s3(aws, counter), aws.model_bucket, in_flight=8))
    scores = again.process(keys, points)
    assert again.stats["loaded"] == 8 and counter.sent == 8 and counter.peak == 8
    assert np.array_equal(scores, first.process(keys, points))  # the same models: the same scores
