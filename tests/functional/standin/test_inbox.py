"""The inbox: SNS -> SQS with a filter policy, as an operator's subscription would get it."""

from __future__ import annotations

from fanwatch.standin import AwsEndpoint, Inbox


def _publish(sns: object, topic: str, severity: str, kind: str) -> None:
    attributes = {
        "thing": "pi-1",
        "fan": "fan0",
        "severity": severity,
        "kind": kind,
        "state": "raised",
        "source": "edge",
    }
    sns.publish(  # type: ignore[attr-defined]
        TopicArn=topic,
        Subject=f"{severity} {kind}",
        Message=f"fan0 on pi-1: {kind}",
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def test_the_filter_policy_decides_what_reaches_the_inbox(moto: AwsEndpoint) -> None:
    sns, sqs = moto.client("sns"), moto.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    everything = Inbox(sns=sns, sqs=sqs, topic_arn=topic, queue_name="all")
    pager = Inbox(
        sns=sns, sqs=sqs, topic_arn=topic, queue_name="pager", filter_policy={"severity": ["critical"]}
    )
    _publish(sns, topic, "critical", "stall")
    _publish(sns, topic, "info", "gap")
    assert [n.kind for n in everything.receive()] == ["stall", "gap"]
    (page,) = pager.receive()
    assert (page.subject, page.message, page.thing, page.severity) == (
        "critical stall",
        "fan0 on pi-1: stall",
        "pi-1",
        "critical",
    )
    assert pager.receive() == []  # taken off the queue
