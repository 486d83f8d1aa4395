"""The notifier Lambda: anomalies and edge alerts -> SNS, at most one message per fan and kind per cooldown.

Each notification carries message attributes (``thing``, ``fan``, ``severity``, ``kind``, ``state``,
``source``) so subscribers filter with SNS filter policies. The cooldown is a DynamoDB conditional
write per fan and kind: the first event of a storm claims it and is sent, the rest are counted. The
next event after the cooldown carries a summary of what was held back; if the storm simply stops,
:meth:`Notifier.sweep` (run on a schedule) sends the summary on its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from fanwatch.cloud.events import Anomaly, Event, parse_event, severity_of
from fanwatch.cloud.observability import Count, Service, publish
from fanwatch.cloud.records import DeadLetter, DeadLetterQueue, PoisonRecord, record_bytes
from fanwatch.cloud.settings import DEFAULT_COOLDOWN_MINUTES
from fanwatch.cloud.wording import Suppressed, describe, subject, summary
from fanwatch.environment import (
    ALERT_TOPIC_VARIABLE,
    COOLDOWN_MINUTES_VARIABLE,
    COOLDOWN_TABLE_VARIABLE,
    DEAD_LETTER_QUEUE_VARIABLE,
)
from fanwatch.telemetry import AlertState, ContractError, format_ts, parse_ts

__all__ = ["Cooldown", "Notifier", "cooldown_key", "from_environment", "lambda_handler", "sweep_handler"]

logger = Logger(service=Service.NOTIFIER)

_KEEP_S = 7 * 24 * 3600  # cooldown items expire (DynamoDB TTL) a week after their last claim


def cooldown_key(event: Event) -> str:
    """Cooldowns are per fan and kind; a clearance has its own, so "back to normal" is never held back."""
    cleared = not isinstance(event, Anomaly) and event.state == AlertState.CLEARED
    state = AlertState.CLEARED if cleared else AlertState.RAISED
    return f"{event.thing}/{event.fan}/{event.kind}/{state}"


def _event_json(event: Event) -> str:
    return json.dumps(event.to_dict(), separators=(",", ":"))


class Cooldown:
    """Cooldown claims in a DynamoDB table keyed by ``pk``; ``seconds`` between two notifications."""

    def __init__(self, dynamodb: Any, table: str, *, seconds: float) -> None:
        self._db = dynamodb
        self._table = table
        self.seconds = seconds

    def claim(self, event: Event, now: float) -> tuple[bool, Suppressed | None]:
        """(send?, what was held back before): claims the cooldown, or counts ``event`` as held back."""
        key = {"pk": {"S": cooldown_key(event)}}
        until = now + self.seconds
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET #until = :until, suppressed = :zero, expires = :expires, "
                "last_event = :event REMOVE first_held, last_held, last_rpm",
                ConditionExpression="attribute_not_exists(pk) OR #until <= :now",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={
                    ":until": {"N": repr(until)},
                    ":now": {"N": repr(now)},
                    ":zero": {"N": "0"},
                    ":expires": {"N": str(int(until) + _KEEP_S)},
                    ":event": {"S": _event_json(event)},
                },
                ReturnValues="ALL_OLD",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET first_held = if_not_exists(first_held, :ts), last_held = :ts, "
                "last_rpm = :rpm, last_event = :event ADD suppressed :one",
                ExpressionAttributeValues={
                    ":ts": {"S": format_ts(event.ts)},
                    ":rpm": {"N": repr(float(event.rpm))},
                    ":event": {"S": _event_json(event)},
                    ":one": {"N": "1"},
                },
            )
            return False, None
        return True, _held(response.get("Attributes"))

    def release(self, event: Event, now: float) -> None:
        """Give a claim back after the notification could not be sent, so the retry is not held back."""
        # If it was claimed again meanwhile, that claim's owner sends: nothing to give back.
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": cooldown_key(event)}},
                UpdateExpression="SET #until = :now",
                ConditionExpression="#until = :until",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={
                    ":now": {"N": repr(now)},
                    ":until": {"N": repr(now + self.seconds)},
                },
            )

    def expired_with_held(self, now: float) -> list[tuple[Event, Suppressed]]:
        """Claims whose cooldown is over while events are still held back, each taken exactly once."""
        found: list[tuple[Event, Suppressed]] = []
        pages = self._db.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="suppressed > :zero AND #until <= :now",
            ExpressionAttributeNames={"#until": "until"},
            ExpressionAttributeValues={":zero": {"N": "0"}, ":now": {"N": repr(now)}},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                try:
                    self._db.update_item(
                        TableName=self._table,
                        Key={"pk": item["pk"]},
                        UpdateExpression="SET suppressed = :zero REMOVE first_held, last_held, last_rpm",
                        ConditionExpression="suppressed = :n",
                        ExpressionAttributeValues={":zero": {"N": "0"}, ":n": item["suppressed"]},
                    )
                except self._db.exceptions.ConditionalCheckFailedException:
                    continue  # a new event took the held ones into its own message
                held = _held(item)
                if held is not None:
                    found.append((parse_event(item["last_event"]["S"]), held))
        return found


def _held(item: dict[str, Any] | None) -> Suppressed | None:
    if not item or int(item.get("suppressed", {"N": "0"})["N"]) == 0:
        return None
    return Suppressed(
        count=int(item["suppressed"]["N"]),
        first=parse_ts(item["first_held"]["S"], "first_held"),
        last=parse_ts(item["last_held"]["S"], "last_held"),
        last_rpm=float(item["last_rpm"]["N"]),
    )


class Notifier:
    """Turns events into SNS notifications through a :class:`Cooldown`. Every collaborator is injected."""

    def __init__(
        self,
        *,
        sns: Any,
        topic_arn: str,
        cooldown: Cooldown,
        dead_letters: DeadLetterQueue,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sns = sns
        self._topic = topic_arn
        self._cooldown = cooldown
        self._dead_letters = dead_letters
        self._clock = clock
        self._processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
        self.counts: Counter[str] = Counter()

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Process one batch of the anomalies stream (partial failures reported per record)."""
        self.counts = Counter()
        response = process_partial_response(event, self.process_record, self._processor, context)
        publish(Service.NOTIFIER, self.counts)
        return dict(response)

    def process_record(self, record: KinesisStreamRecord) -> None:
        try:
            event = parse_event(record_bytes(record), thing=record.kinesis.partition_key)
        except (PoisonRecord, ContractError) as exc:
            self._dead_letters.send(DeadLetter.of(record, reason=str(exc), source="notifier"))
            self.counts[Count.DEAD_LETTERS] += 1
            logger.warning("record dead-lettered", extra={"reason": str(exc)})
            return
        self.notify(event)

    def notify(self, event: Event) -> bool:
        """Send ``event`` unless its cooldown holds it back; True when a message went out."""
        now = self._clock()
        send, held = self._cooldown.claim(event, now)
        if not send:
            self.counts[Count.HELD_BACK] += 1
            return False
        body = describe(event)
        if held is not None:
            body = f"{body}\n\n{summary(event, held, self._cooldown.seconds)}"
        try:
            self._publish(event, subject(event), body)
        except Exception:
            self._cooldown.release(event, now)
            raise
        self.counts[Count.NOTIFICATIONS] += 1
        return True

    def sweep(self) -> int:
        """Send the summaries that no later event carried; returns how many were sent."""
        self.counts = Counter()
        sent = 0
        for event, held in self._cooldown.expired_with_held(self._clock()):
            text = summary(event, held, self._cooldown.seconds)
            self._publish(event, f"{subject(event)} (summary)"[:100], text)
            sent += 1
        self.counts["summaries"] = sent
        publish(Service.NOTIFIER, self.counts)
        return sent

    def _publish(self, event: Event, title: str, body: str) -> None:
        state = AlertState.RAISED if isinstance(event, Anomaly) else event.state
        attributes = {
            "thing": event.thing,
            "fan": event.fan,
            "severity": severity_of(event),
            "kind": event.kind,
            "state": state,
            "source": "cloud" if isinstance(event, Anomaly) else "edge",
        }
        self._sns.publish(
            TopicArn=self._topic,
            Subject=title,
            Message=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
        logger.info("notification sent", extra={"subject": title, **attributes})


@cache
def _from_environment() -> Notifier:
    return from_environment()


def from_environment(*, clock: Callable[[], float] = time.time) -> Notifier:
    """A notifier configured by the environment the stack sets (the Lambda's, built once per container);
    ``clock`` is what its cooldown counts in (the demo's runs faster than the wall)."""
    import boto3

    env = os.environ
    return Notifier(
        sns=boto3.client("sns"),
        topic_arn=env[ALERT_TOPIC_VARIABLE],
        cooldown=Cooldown(
            boto3.client("dynamodb"),
            env[COOLDOWN_TABLE_VARIABLE],
            seconds=60 * float(env.get(COOLDOWN_MINUTES_VARIABLE, DEFAULT_COOLDOWN_MINUTES)),
        ),
        dead_letters=DeadLetterQueue(boto3.client("sqs"), env[DEAD_LETTER_QUEUE_VARIABLE]),
        clock=clock,
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The notifier function's entry point (the stack's handler string names it): one batch of the
    anomalies stream, with the notifier built once per container."""
    return _from_environment().handle(event, context)


def sweep_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """The sweep function's entry point, run on a schedule: sends the summaries the cooldown held back that
    no later event carried, and says how many."""
    return {"summaries": _from_environment().sweep()}
