"""``fanwatch stack check``: is a deployed stack ready for devices? Asked of AWS with your credentials.

Five checks, in the order a reading travels, each one line with PASS, FAIL (and what to do) or SKIP
(an earlier check failed): the stack and its outputs; the IoT data endpoint; a test telemetry message
published through IoT Core (``iot-data publish``) read back from the telemetry stream; the detector's
event source mapping enabled on that stream; the lake's Glue table read by Athena. Everything is
read-only but the test message: one telemetry message from the thing ``fanwatch-stack-check`` (one
reading, flagged ``simulated`` and labelled ``stack-check``), which the lake keeps like any other.

Against the embedded AWS stand-in (``--endpoint-url``, or ``AWS_ENDPOINT_URL``) the same calls run
on moto; what moto cannot show is said at the end (:data:`LOCAL_LIMITS`).
"""

from __future__ import annotations

import os
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from fanwatch.stack.outputs import StackOutput
from fanwatch.telemetry import Reading, Telemetry, encode, topic_for

__all__ = ["CHECK_THING", "LOCAL_LIMITS", "REQUIRED_OUTPUTS", "Result", "StackCheck", "Verdict"]

#: The thing the test message comes from (no device has this name; filter it out of lake queries).
CHECK_THING: Final = "fanwatch-stack-check"
#: The outputs the checks read; a stack without them predates this version.
REQUIRED_OUTPUTS: Final = (
    StackOutput.TELEMETRY_STREAM,
    StackOutput.DETECTOR_FUNCTION,
    StackOutput.LAKE_DATABASE,
    StackOutput.ATHENA_WORK_GROUP,
)
#: Stack states in which the resources exist as the template says.
_STACK_READY: Final = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
)
#: What a check against moto cannot show, said after the results.
LOCAL_LIMITS: Final = (
    "the stack: moto holds the outputs the stand-in registered from the template, not a deployment",
    "the endpoint: moto's address is not connected to (on AWS the check opens TLS to it)",
    "the telemetry: the stand-in's rules engine (not IoT Core) ran the rule; IAM, KMS and mTLS are not "
    "enforced",
    "the detector: the mapping's state is the one the stand-in registered (its poller runs the handler)",
    "the lake: moto's Athena answers SUCCEEDED without reading the table, so only the Glue table and "
    "the workgroup are really checked (fanwatch lake query runs the SQL on the local lake)",
)


class Verdict(StrEnum):
    """A check's answer: PASS, FAIL (the result says what to do) or SKIP (a check it needs did not pass, or
    ``--no-publish``)."""

    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class Result:
    """One check's report: which check, its verdict, what it found and, for a FAIL, what to do."""

    check: str
    verdict: Verdict
    detail: str
    todo: str = ""  # what to do about a FAIL

    def lines(self) -> list[str]:
        out = [f"{self.verdict:<4}  {self.check:<9} {self.detail}"]
        if self.todo:
            out.append(f"      {'':<9} -> {self.todo}")
        return out


def _why(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc) or type(exc).__name__


@dataclass
class StackCheck:
    """The checks for one stack, with one boto3 session (credentials, region, endpoint)."""

    session: Any  # boto3.Session
    stack: str
    endpoint_url: str | None = None  # a local stand-in; None: AWS (or AWS_ENDPOINT_URL)
    timeout_s: float = 60.0
    publish: bool = True
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.outputs: dict[str, str] = {}
        self.local = bool(self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))

    def client(self, service: str, **options: Any) -> Any:
        if self.endpoint_url and "endpoint_url" not in options:
            options["endpoint_url"] = self.endpoint_url
        return self.session.client(service, **options)

    def run(self) -> Iterator[Result]:
        """Each check's result as soon as it is known; a check whose input failed is skipped."""
        outputs = self._guard("outputs", self.check_outputs)
        yield outputs
        ready = outputs.verdict is Verdict.PASS
        endpoint = self._guard("endpoint", self.check_endpoint)
        yield endpoint
        if not self.publish:
            yield Result("telemetry", Verdict.SKIP, "--no-publish: no test message sent")
        elif ready and endpoint.verdict is Verdict.PASS:
            yield self._guard("telemetry", self.check_telemetry)
        else:
            yield Result("telemetry", Verdict.SKIP, "needs the outputs and the endpoint")
        for name, check in (("detector", self.check_detector), ("lake", self.check_lake)):
            yield self._guard(name, check) if ready else Result(name, Verdict.SKIP, "needs the outputs")

    def _guard(self, name: str, check: Callable[[], Result]) -> Result:
        try:
            return check()
        except NoCredentialsError:
            return Result(
                name,
                Verdict.FAIL,
                "no AWS credentials",
                "aws configure (or aws sso login), or set AWS_PROFILE / AWS_ACCESS_KEY_ID",
            )
        except (ClientError, BotoCoreError) as exc:
            return Result(
                name, Verdict.FAIL, _why(exc), "see the AWS error: a missing permission or resource"
            )

    # --- the checks ---------------------------------------------------------------------------------

    def check_outputs(self) -> Result:
        try:
            (stack,) = self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"]
        except ClientError as exc:
            if "does not exist" not in _why(exc):
                raise
            region = self.session.region_name or "no region set"
            return Result(
                "outputs",
                Verdict.FAIL,
                f"no stack {self.stack} in {region}",
                "deploy it (docs/aws.md), or name it: --stack NAME; the region: --region or AWS_REGION",
            )
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        status = stack["StackStatus"]
        if status not in _STACK_READY:
            return Result(
                "outputs",
                Verdict.FAIL,
                f"{self.stack} is {status}",
                f"aws cloudformation describe-stack-events --stack-name {self.stack}",
            )
        missing = [key for key in REQUIRED_OUTPUTS if key not in self.outputs]
        if missing:
            return Result(
                "outputs",
                Verdict.FAIL,
                f"{self.stack} has no output {', '.join(missing)}",
                "deploy this version of the stack (cdk deploy, or fanwatch stack package)",
            )
        return Result("outputs", Verdict.PASS, f"{self.stack} {status}, {len(self.outputs)} outputs")

    def check_endpoint(self) -> Result:
        address = self.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
        self.data_endpoint = str(address)
        if self.local:
            return Result("endpoint", Verdict.PASS, f"{address} (the stand-in's)")
        started = self.clock()
        try:
            context = ssl.create_default_context()
            with (
                socket.create_connection((self.data_endpoint, 443), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=self.data_endpoint),
            ):
                pass
        except OSError as exc:
            return Result(
                "endpoint",
                Verdict.FAIL,
                f"{address} does not answer on 443: {exc}",
                "check the network (a proxy or firewall between here and AWS IoT)",
            )
        return Result("endpoint", Verdict.PASS, f"{address} (TLS in {self.clock() - started:.1f} s)")

    def test_message(self, boot: str) -> Telemetry:
        now = datetime.now(UTC)
        reading = Reading(
            ts=now,
            rpm=0.0,
            hz=0.0,
            pulses=0,
            window_s=1.0,
            flags=frozenset({"simulated"}),
            label="stack-check",
        )
        return Telemetry(thing=CHECK_THING, fan="check", boot=boot, seq=0, sent=now, readings=(reading,))

    def check_telemetry(self) -> Result:
        stream = self.outputs[StackOutput.TELEMETRY_STREAM]
        boot = uuid.uuid4().hex[:16]
        topic = topic_for("telemetry", CHECK_THING)
        kinesis = self.client("kinesis")
        shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
        since = datetime.now(UTC) - timedelta(seconds=30)  # room for a clock that is a little off
        iot_data = self.client(
            "iot-data", **({} if self.local else {"endpoint_url": f"https://{self.data_endpoint}"})
        )
        started = self.clock()
        iot_data.publish(topic=topic, qos=1, payload=encode(self.test_message(boot)))
        iterators = {
            shard: kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard, ShardIteratorType="AT_TIMESTAMP", Timestamp=since
            )["ShardIterator"]
            for shard in shards
        }
        marker = boot.encode()
        while True:
            for shard, iterator in list(iterators.items()):
                if iterator is None:
                    continue
                batch = kinesis.get_records(ShardIterator=iterator, Limit=1000)
                iterators[shard] = batch.get("NextShardIterator")
                if any(marker in record["Data"] for record in batch["Records"]):
                    return Result(
                        "telemetry",
                        Verdict.PASS,
                        f"published on {topic}, read back from {stream} after {self.clock() - started:.1f} s",
                    )
            if self.clock() - started > self.timeout_s:
                lake = self.outputs.get(StackOutput.LAKE_BUCKET, f"<{StackOutput.LAKE_BUCKET} output>")
                return Result(
                    "telemetry",
                    Verdict.FAIL,
                    f"published on {topic}, not in {stream} after {self.timeout_s:.0f} s",
                    f"the rule's errors: aws s3 ls s3://{lake}/errors/iot/ --recursive; the rule: "
                    "aws iot get-topic-rule --rule-name <prefix>_telemetry",
                )
            time.sleep(1.0)

    def check_detector(self) -> Result:
        function, stream = (
            self.outputs[StackOutput.DETECTOR_FUNCTION],
            self.outputs[StackOutput.TELEMETRY_STREAM],
        )
        mappings = self.client("lambda").list_event_source_mappings(FunctionName=function)[
            "EventSourceMappings"
        ]
        found = [m for m in mappings if str(m.get("EventSourceArn", "")).endswith(f":stream/{stream}")]
        if not found:
            return Result(
                "detector",
                Verdict.FAIL,
                f"{function} has no event source mapping on {stream}",
                "redeploy the stack: the mapping is part of it",
            )
        mapping = found[0]
        state, result = mapping.get("State", "?"), mapping.get("LastProcessingResult", "no batch yet")
        if state != "Enabled":
            return Result(
                "detector",
                Verdict.FAIL,
                f"{function} on {stream}: {state} (last result: {result})",
                f"aws lambda update-event-source-mapping --uuid {mapping['UUID']} --enabled; if it does not "
                f"stay Enabled, read the log group /aws/lambda/{function}",
            )
        return Result(
            "detector",
            Verdict.PASS,
            f"{function} reads {stream}: {state}, batch size {mapping.get('BatchSize')} "
            f"(last result: {result})",
        )

    def check_lake(self) -> Result:
        database, workgroup = (
            self.outputs[StackOutput.LAKE_DATABASE],
            self.outputs[StackOutput.ATHENA_WORK_GROUP],
        )
        table = self.client("glue").get_table(DatabaseName=database, Name="readings")["Table"]
        location = table.get("StorageDescriptor", {}).get("Location", "?")
        athena = self.client("athena")
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        sql = f'SELECT count(*) FROM "{database}"."readings" WHERE dt = \'{today}\''
        query = athena.start_query_execution(QueryString=sql, WorkGroup=workgroup)["QueryExecutionId"]
        started = self.clock()
        while True:
            status = athena.get_query_execution(QueryExecutionId=query)["QueryExecution"]["Status"]
            if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            if self.clock() - started > self.timeout_s:
                return Result(
                    "lake", Verdict.FAIL, f"Athena query {query} still {status['State']}", "try again later"
                )
            time.sleep(1.0)
        if status["State"] != "SUCCEEDED":
            return Result(
                "lake",
                Verdict.FAIL,
                f"Athena could not read {database}.readings ({location}): "
                + str(status.get("StateChangeReason", "")),
                f"the workgroup {workgroup}'s result bucket, and your athena, glue, s3 and kms permissions",
            )
        rows = athena.get_query_results(QueryExecutionId=query)["ResultSet"].get("Rows", [])
        count = rows[1]["Data"][0].get("VarCharValue", "?") if len(rows) > 1 else "no rows from moto"
        return Result(
            "lake", Verdict.PASS, f"Athena read {database}.readings ({location}): {count} readings today"
        )
