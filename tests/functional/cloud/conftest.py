"""The embedded AWS stand-in for the cloud handlers: real boto3 against moto server.

One server per session; each test starts from a reset server with the stack's data plane created
(streams, tables, buckets, queue, topic with an SQS subscriber per filter policy).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from fanwatch.cloud.detector import AnomalyStream, Detector
from fanwatch.cloud.notifier import Cooldown, Notifier
from fanwatch.cloud.records import DeadLetterQueue
from fanwatch.cloud.settings import DetectorSettings
from fanwatch.cloud.shapes import from_get_records
from fanwatch.cloud.stores import FanStateStore, S3ModelStore
from fanwatch.rcf import ForestManager, Thresholder

REGION = "eu-west-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Aws:
    """Clients for the stand-in and the names of what the stack would have created."""

    endpoint: str
    clients: dict[str, Any]
    telemetry_stream: str = "fanwatch-telemetry"
    anomaly_stream: str = "fanwatch-anomalies"
    fan_state_table: str = "fanwatch-fan-state"
    cooldown_table: str = "fanwatch-cooldown"
    model_bucket: str = "fanwatch-models"
    dlq_url: str = ""
    topic_arn: str = ""
    subscribers: dict[str, str] | None = None  # name -> queue url

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service,
                region_name=REGION,
                endpoint_url=self.endpoint,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self.clients[service]

    def stream_events(self, stream: str) -> dict[str, Any]:
        """Everything on ``stream`` so far, as the Lambda event its consumer would get."""
        kinesis = self.client("kinesis")
        description = kinesis.describe_stream(StreamName=stream)["StreamDescription"]
        records: list[dict[str, Any]] = []
        for shard in description["Shards"]:
            iterator = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records.extend(kinesis.get_records(ShardIterator=iterator, Limit=10000)["Records"])
        return from_get_records(records, stream_arn=description["StreamARN"], shard_id="shardId-000000000000")

    def queue_messages(self, url: str) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                return out
            out.extend(got)
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )

    def dead_letters(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.queue_messages(self.dlq_url)]

    def notifications(self, subscriber: str = "all") -> list[dict[str, Any]]:
        assert self.subscribers is not None
        return [json.loads(m["Body"]) for m in self.queue_messages(self.subscribers[subscriber])]


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    env = Aws(endpoint=moto_endpoint, clients={})
    kinesis = env.client("kinesis")
    for stream in (env.telemetry_stream, env.anomaly_stream):
        kinesis.create_stream(StreamName=stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    dynamodb = env.client("dynamodb")
    for table in (env.fan_state_table, env.cooldown_table):
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
    env.client("s3").create_bucket(
        Bucket=env.model_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    sqs = env.client("sqs")
    env.dlq_url = sqs.create_queue(QueueName="fanwatch-dead-letters")["QueueUrl"]
    sns = env.client("sns")
    env.topic_arn = sns.create_topic(Name="fanwatch-alerts")["TopicArn"]
    env.subscribers = {}
    for name, policy in (
        ("all", None),
        ("critical", {"severity": ["critical"]}),
        ("edge-stalls", {"source": ["edge"], "kind": ["stall"]}),
    ):
        url = sqs.create_queue(QueueName=f"subscriber-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"RawMessageDelivery": "false"}
        if policy:
            attributes["FilterPolicy"] = json.dumps(policy)
        sns.subscribe(TopicArn=env.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
        env.subscribers[name] = url
    return env


FOREST_OPTIONS: dict[str, Any] = {"shingle_size": 4, "num_trees": 40, "sample_size": 128, "seed": 7}


@pytest.fixture
def forest_options() -> dict[str, Any]:
    """The shape of the forests ``make_detector``'s detectors keep (small, for speed)."""
    return dict(FOREST_OPTIONS)


@pytest.fixture
def make_detector(aws: Aws) -> Callable[..., Detector]:
    """A detector wired to the stand-in, as one Lambda container would build it."""

    def make(
        *,
        anomaly_stream: str | None = None,
        dlq_url: str | None = None,
        checkpoint_seconds: float = 900.0,
        floor: float = DetectorSettings().score_floor,
        settle_seconds: float = DetectorSettings().settle_seconds,
        forests: ForestManager | None = None,
        cache_states: bool = False,
    ) -> Detector:
        store = S3ModelStore(aws.client("s3"), aws.model_bucket)
        return Detector(
            forests=lambda: (
                forests if forests is not None else ForestManager(dimensions=1, store=store, **FOREST_OPTIONS)
            ),
            states=FanStateStore(aws.client("dynamodb"), aws.fan_state_table),
            anomalies=AnomalyStream(aws.client("kinesis"), anomaly_stream or aws.anomaly_stream),
            dead_letters=DeadLetterQueue(aws.client("sqs"), dlq_url or aws.dlq_url),
            thresholder=Thresholder(floor=floor, z=3.0),
            settle_seconds=settle_seconds,
            checkpoint_seconds=checkpoint_seconds,
            cache_states=cache_states,
        )

    return make


@pytest.fixture
def make_notifier(aws: Aws) -> Callable[..., Notifier]:
    def make(
        *, clock: Callable[[], float], cooldown_s: float = 900.0, topic_arn: str | None = None
    ) -> Notifier:
        return Notifier(
            sns=aws.client("sns"),
            topic_arn=topic_arn or aws.topic_arn,
            cooldown=Cooldown(aws.client("dynamodb"), aws.cooldown_table, seconds=cooldown_s),
            dead_letters=DeadLetterQueue(aws.client("sqs"), aws.dlq_url),
            clock=clock,
        )

    return make
