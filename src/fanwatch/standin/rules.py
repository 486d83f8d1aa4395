"""The IoT rules engine moto lacks: the template's topic rules, run on what devices publish.

It subscribes to the local broker (amqtt or mosquitto) at QoS 1 for each rule's ``FROM`` filter and
for the rule's Basic Ingest topic ``$aws/rules/<rule>/#``, evaluates each matching rule's SQL
(:mod:`fanwatch.standin.iotsql`) and performs its actions with real boto3 calls on the stand-in: a
Kinesis ``put_record`` with the partition key the rule names (``${topic(2)}``), an S3 object, an SQS
message, an SNS publication, a Lambda invocation or a republish. When an action fails (after the SDK's
own retries) the rule's error action runs with IoT's error message (``ruleName``, ``topic``,
``clientId``, ``base64OriginalPayload``, ``failures``); if that fails too the message is lost, as on
AWS, and counted. The broker's PUBACK to the engine waits until the actions ran.

Where the local brokers differ from IoT Core (each tested):

* ``clientid()`` is ``"n/a"`` for messages from the broker: MQTT 3.1.1 does not tell a subscriber who
  published. :meth:`RulesEngine.ingest` takes the client id when the caller knows it.
* Basic Ingest: mosquitto passes a publish on ``$aws/rules/<rule>/…`` to a subscriber of that topic
  (the publisher's ACL must allow it); amqtt drops every publish to a ``$`` topic ([MQTT-4.7.2-1]), so
  with amqtt Basic Ingest reaches the engine only through :meth:`RulesEngine.ingest`. On AWS nobody
  else can subscribe to those topics; here the broker's ACL decides.
* Two rules with overlapping filters see a message once each, as on AWS, because the engine matches
  every rule against each message it receives rather than routing by subscription.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fanwatch.core.mqtt.endpoint import BrokerEndpoint
from fanwatch.edge.clock import Clock, MonotonicClock
from fanwatch.errors import FanwatchError
from fanwatch.standin.iotsql import UNDEFINED, MessageContext, ParsedRule, SqlError, parse, substitution
from fanwatch.standin.model import RuleAction, TopicRule
from fanwatch.telemetry import BASIC_INGEST_PREFIX

__all__ = ["BASIC_INGEST", "ActionError", "RuleClients", "RuleOutcome", "RulesEngine"]

logger = logging.getLogger(__name__)

#: Basic Ingest: a device publishes to ``$aws/rules/<rule name>/<topic>`` to reach one rule directly.
BASIC_INGEST: Final = BASIC_INGEST_PREFIX
#: What ``clientid()`` returns when the broker does not say who published.
UNKNOWN_CLIENT: Final = "n/a"
#: Seconds between the engine's attempts to reconnect to a broker that went away (see connect).
RECONNECT_DELAY_S: Final = 0.25
#: The IoT API's name of each action kind, as it appears in error messages (``failedAction``).
_ACTION_NAMES: Final = {
    "Kinesis": "KinesisAction",
    "S3": "S3Action",
    "Sqs": "SqsAction",
    "Sns": "SnsAction",
    "Lambda": "LambdaAction",
    "Republish": "RepublishAction",
}


class ActionError(FanwatchError, RuntimeError):
    """An action that did not complete; the message is what goes into the error action's ``failures``."""


@dataclass(frozen=True, slots=True)
class RuleClients:
    """What actions use: boto3 clients on the stand-in, functions by ARN, and a republisher."""

    kinesis: Any
    s3: Any
    sqs: Any
    sns: Any
    invoke: Callable[[str, dict[str, Any]], Any] | None = None  # (function ARN or name, event)
    republish: Callable[[str, bytes, int], None] | None = None  # (topic, payload, qos)


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What one rule did with one message: whether its SQL selected it, the errors of its failed actions,
    and why the message was lost when the error action could not take it (None: not lost)."""

    rule: str
    fired: bool
    failures: tuple[str, ...] = ()
    error_action_failed: str | None = None


@dataclass(frozen=True, slots=True)
class _Action:
    kind: str
    resource: str
    run: Callable[[MessageContext, bytes], None]


@dataclass(frozen=True, slots=True)
class _Rule:
    rule: TopicRule
    sql: ParsedRule
    actions: tuple[_Action, ...]
    error_action: _Action | None


def _payload_bytes(output: Any) -> bytes:
    if isinstance(output, bytes):
        return output
    return json.dumps(output, separators=(",", ":")).encode()


def _compile_action(action: RuleAction, clients: RuleClients) -> _Action:
    """The callable that performs ``action``; :class:`SqlError`/:class:`ActionError` at load time when
    the stand-in cannot perform it."""
    s = action.settings
    kind = action.kind

    def attempt(call: Callable[[], Any], what: str) -> None:
        try:
            call()
        except Exception as exc:
            raise ActionError(f"Failed to {what}. The error received was {exc}") from exc

    if kind == "Kinesis":
        stream = s["StreamName"]
        key = substitution(s["PartitionKey"]) if s.get("PartitionKey") else None

        def kinesis(ctx: MessageContext, data: bytes) -> None:
            partition = key(ctx) if key else str(uuid.uuid4())
            attempt(
                lambda: clients.kinesis.put_record(StreamName=stream, Data=data, PartitionKey=partition),
                f"put record to Kinesis stream {stream}",
            )

        return _Action(kind, stream, kinesis)
    if kind == "S3":
        bucket, object_key = s["BucketName"], substitution(s["Key"])

        def s3(ctx: MessageContext, data: bytes) -> None:
            name = object_key(ctx)
            attempt(
                lambda: clients.s3.put_object(Bucket=bucket, Key=name, Body=data), f"put S3 object {name}"
            )

        return _Action(kind, bucket, s3)
    if kind == "Sqs":
        url, encode = s["QueueUrl"], bool(s.get("UseBase64"))

        def sqs(ctx: MessageContext, data: bytes) -> None:
            body = base64.b64encode(data).decode() if encode else data.decode(errors="replace")
            attempt(lambda: clients.sqs.send_message(QueueUrl=url, MessageBody=body), f"send to SQS {url}")

        return _Action(kind, url, sqs)
    if kind == "Sns":
        target = s["TargetArn"]
        if s.get("MessageFormat", "RAW") != "RAW":
            raise ActionError(f"SNS action to {target}: only MessageFormat RAW is reproduced locally")

        def sns(ctx: MessageContext, data: bytes) -> None:
            attempt(
                lambda: clients.sns.publish(TargetArn=target, Message=data.decode(errors="replace")),
                f"publish to SNS {target}",
            )

        return _Action(kind, target, sns)
    if kind == "Lambda" and clients.invoke is not None:
        function, invoke = s["FunctionArn"], clients.invoke

        def lambda_(ctx: MessageContext, data: bytes) -> None:
            event = (
                json.loads(data) if data[:1] in (b"{", b"[") else {"payload": data.decode(errors="replace")}
            )
            attempt(lambda: invoke(function, event), f"invoke {function}")

        return _Action(kind, function, lambda_)
    if kind == "Republish" and clients.republish is not None:
        topic, qos, republish = substitution(s["Topic"]), int(s.get("Qos", 0)), clients.republish

        def republish_(ctx: MessageContext, data: bytes) -> None:
            target = topic(ctx)
            attempt(lambda: republish(target, data, qos), f"republish to {target}")

        return _Action(kind, s["Topic"], republish_)
    raise ActionError(f"the local rules engine does not perform {kind} actions")


@dataclass(slots=True)
class EngineStats:
    """What the rules engine has done: messages received and, by rule, fired, failed actions, error actions
    run and messages lost (``fanwatch stack up``'s status line and the tests read them)."""

    received: int = 0
    fired: Counter[str] = field(default_factory=Counter)
    action_failures: Counter[str] = field(default_factory=Counter)
    error_actions: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)  # the error action failed too


class RulesEngine:
    """Runs ``rules`` (disabled ones are skipped) on messages from :meth:`ingest` or the broker."""

    def __init__(
        self, rules: Sequence[TopicRule], clients: RuleClients, *, clock: Clock | None = None
    ) -> None:
        self._clock = clock or MonotonicClock()
        self.stats = EngineStats()
        self._rules: dict[str, _Rule] = {}
        for rule in rules:
            if rule.disabled:
                continue
            if rule.sql_version != "2016-03-23":
                logger.warning(
                    "rule %s uses SQL version %s; evaluated as 2016-03-23", rule.name, rule.sql_version
                )
            try:
                self._rules[rule.name] = _Rule(
                    rule,
                    parse(rule.sql),
                    tuple(_compile_action(a, clients) for a in rule.actions),
                    _compile_action(rule.error_action, clients) if rule.error_action else None,
                )
            except (SqlError, ActionError) as exc:
                raise type(exc)(f"rule {rule.name}: {exc}") from None
        self._mqtt: Any = None
        self._work: queue.Queue[tuple[Any, int, int] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._subscribed = threading.Event()
        self.refused_subscriptions: list[str] = []

    @property
    def rule_names(self) -> list[str]:
        return list(self._rules)

    def subscriptions(self) -> list[str]:
        """The topic filters the engine subscribes to: each FROM, and each rule's Basic Ingest topic."""
        filters = {r.sql.topic_filter for r in self._rules.values() if r.sql.topic_filter}
        return sorted(filters) + [f"{BASIC_INGEST}{name}/#" for name in self._rules]

    # --- evaluation ------------------------------------------------------------------------------

    def ingest(self, topic: str, payload: bytes, *, client_id: str = UNKNOWN_CLIENT) -> list[RuleOutcome]:
        """Run every rule ``topic`` reaches (or the one its Basic Ingest prefix names) on ``payload``."""
        self.stats.received += 1
        if topic.startswith(BASIC_INGEST):
            name, _, rest = topic[len(BASIC_INGEST) :].partition("/")
            rule = self._rules.get(name)
            if rule is None:
                logger.warning("Basic Ingest to %s: no such rule", name)
                return []
            targets = [(rule, rest)]
        else:
            targets = [(r, topic) for r in self._rules.values() if r.sql.matches(topic)]
        try:
            parsed: Any = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            parsed = UNDEFINED
        stamp = int(self._clock.utc().timestamp() * 1000)
        return [
            self._run(rule, MessageContext(rule_topic, parsed, payload, client_id, stamp))
            for rule, rule_topic in targets
        ]

    def _run(self, rule: _Rule, ctx: MessageContext) -> RuleOutcome:
        name = rule.rule.name
        output = rule.sql.select(ctx)
        if output is None:
            return RuleOutcome(name, fired=False)
        self.stats.fired[name] += 1
        data = _payload_bytes(output)
        failures = []
        for action in rule.actions:
            try:
                action.run(ctx, data)
            except ActionError as exc:
                self.stats.action_failures[name] += 1
                failures.append(
                    {
                        "failedAction": _ACTION_NAMES.get(action.kind, f"{action.kind}Action"),
                        "failedResource": action.resource,
                        "errorMessage": str(exc),
                    }
                )
        if not failures:
            return RuleOutcome(name, fired=True)
        logger.warning("rule %s: %d action(s) failed: %s", name, len(failures), failures)
        lost = None
        if rule.error_action is not None:
            error = {
                "ruleName": name,
                "topic": ctx.topic,
                "cloudwatchTraceId": str(uuid.uuid4()),
                "clientId": ctx.client_id,
                "base64OriginalPayload": base64.b64encode(ctx.raw).decode(),
                "failures": failures,
            }
            try:
                rule.error_action.run(ctx, json.dumps(error).encode())
                self.stats.error_actions[name] += 1
            except ActionError as exc:
                lost = str(exc)
        else:
            lost = "the rule has no error action"
        if lost is not None:
            self.stats.lost[name] += 1
            logger.error("rule %s: message on %s lost: %s", name, ctx.topic, lost)
        return RuleOutcome(name, True, tuple(f["errorMessage"] for f in failures), lost)

    # --- the broker --------------------------------------------------------------------------------

    def connect(
        self, endpoint: BrokerEndpoint, *, client_id: str = "fanwatch-rules-engine", timeout: float = 10
    ) -> None:
        """Subscribe to the broker at ``endpoint`` (reconnecting by itself) and run rules on what comes."""
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, manual_ack=True)
        if endpoint.ca_file is not None:
            client.tls_set(
                ca_certs=str(endpoint.ca_file),
                certfile=str(endpoint.client.cert_file) if endpoint.client else None,
                keyfile=str(endpoint.client.key_file) if endpoint.client else None,
            )
        if endpoint.login is not None:
            client.username_pw_set(endpoint.login.username, endpoint.login.password)
        # IoT Core's rules engine is part of the broker and never misses what it accepted; ours is a client
        # of it and misses what devices publish after a broker restart before it has resubscribed. It
        # comes back within a quarter second (devices back off for a second or more) to keep that short.
        client.reconnect_delay_set(RECONNECT_DELAY_S, RECONNECT_DELAY_S)  # type: ignore[arg-type]  # a float works
        filters = self.subscriptions()
        refusal: list[str] = []

        def connected(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if not reason.is_failure:
                c.subscribe([(f, 1) for f in filters])
            elif not self._subscribed.is_set():  # a login the broker refuses: say so, not time out
                refusal.append(str(reason))
                self._subscribed.set()

        client.on_connect = connected
        client.on_subscribe = lambda _c, _u, _m, reasons, _p: self._granted(filters, reasons)
        client.on_message = lambda _c, _u, message: self._work.put((message, message.mid, message.qos))
        self._mqtt = client
        self._worker = threading.Thread(target=self._drain, name="rules-engine", daemon=True)
        self._worker.start()
        client.connect(endpoint.host, endpoint.port, keepalive=30)
        client.loop_start()
        if not self._subscribed.wait(timeout) or refusal:
            self.close()
            why = (
                f"refused the connection ({refusal[0]})"
                if refusal
                else "did not acknowledge the rules' subscriptions"
            )
            raise ConnectionError(f"the broker at {endpoint.url} {why}")

    def _granted(self, filters: list[str], reasons: Any) -> None:
        refused = [f for f, r in zip(filters, reasons, strict=False) if r.is_failure]
        if refused:
            logger.warning("the broker refused the subscription(s) %s", refused)
        self.refused_subscriptions = refused
        self._subscribed.set()

    def _drain(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            message, mid, qos = item
            try:
                self.ingest(message.topic, bytes(message.payload))
            except Exception:  # a bug must not stop the engine; the message is logged with it
                logger.exception("rule evaluation failed on %s", message.topic)
            finally:
                if self._mqtt is not None and qos > 0:
                    self._mqtt.ack(mid, qos)
                self._work.task_done()

    @property
    def pending(self) -> int:
        """Messages received from the broker that the engine has not finished (the one it is running
        its actions for included)."""
        return self._work.unfinished_tasks

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._work.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        if self._mqtt is not None:
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
            self._mqtt = None
        if self._worker is not None:
            self._work.put(None)
            self._worker.join(10)
            self._worker = None
