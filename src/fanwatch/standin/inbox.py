"""The demo's inbox: an SQS queue subscribed to the alerts topic, read back as typed notifications.

SNS delivers to SQS in its JSON envelope (``Type``, ``Subject``, ``Message``, ``MessageAttributes``…)
unless raw delivery is on; moto applies the subscription's filter policy to the message attributes
(``thing``, ``fan``, ``severity``, ``kind``, ``state``, ``source``) as SNS does, so the inbox receives
what an operator's e-mail subscription with the same policy would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Inbox", "Notification"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification as a person would get it, with the attributes filter policies match."""

    subject: str
    message: str
    attributes: dict[str, str]
    sent: datetime
    message_id: str

    @property
    def thing(self) -> str:
        return self.attributes.get("thing", "")

    @property
    def fan(self) -> str:
        return self.attributes.get("fan", "")

    @property
    def severity(self) -> str:
        return self.attributes.get("severity", "")

    @property
    def kind(self) -> str:
        return self.attributes.get("kind", "")

    @property
    def state(self) -> str:
        return self.attributes.get("state", "")

    @property
    def source(self) -> str:
        return self.attributes.get("source", "")

    @classmethod
    def from_sqs_body(cls, body: str) -> Notification:
        """The SNS envelope SQS holds; ValueError when it is not one."""
        try:
            envelope = json.loads(body)
            return cls(
                subject=envelope.get("Subject") or "",
                message=envelope["Message"],
                attributes={k: v["Value"] for k, v in (envelope.get("MessageAttributes") or {}).items()},
                sent=datetime.fromisoformat(envelope["Timestamp"].replace("Z", "+00:00")),
                message_id=envelope["MessageId"],
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an SNS notification: {exc}: {body[:200]}") from None


class Inbox:
    """An SQS queue subscribed to ``topic_arn`` with ``filter_policy`` (None: every notification)."""

    def __init__(
        self,
        *,
        sns: Any,
        sqs: Any,
        topic_arn: str,
        queue_name: str,
        filter_policy: Mapping[str, Any] | None = None,
    ) -> None:
        self._sqs = sqs
        self.url: str = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        attributes = {"RawMessageDelivery": "false"}
        if filter_policy:
            attributes["FilterPolicy"] = json.dumps(filter_policy)
        self.subscription_arn: str = sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        self.filter_policy = dict(filter_policy or {})

    def receive(self, *, wait_s: float = 0.0, limit: int | None = None) -> list[Notification]:
        """Take the notifications waiting (up to ``limit``), oldest first; waits up to ``wait_s`` for one."""
        out: list[Notification] = []
        wait = int(wait_s)
        while limit is None or len(out) < limit:
            got = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10 if limit is None else min(10, limit - len(out)),
                WaitTimeSeconds=wait,
            ).get("Messages", [])
            if not got:
                break
            wait = 0
            out.extend(Notification.from_sqs_body(m["Body"]) for m in got)
            self._sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )
        return sorted(out, key=lambda n: n.sent)
