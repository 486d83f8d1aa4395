"""Local pub/sub: the nucleus' topic matching, receive modes and topic rules."""

from __future__ import annotations

import pytest

from fanwatch.core.ipc.local_pubsub import (
    InvalidTopicError,
    LocalMessage,
    LocalPubSub,
    ReceiveMode,
    is_wildcard,
    topic_levels,
)


def inbox(bus: LocalPubSub, topic: str, component: str = "sub", **kw: ReceiveMode) -> list[LocalMessage]:
    got: list[LocalMessage] = []
    bus.subscribe(topic, component, got.append, **kw)
    return got


def send(bus: LocalPubSub, topic: str, component: str = "pub") -> int:
    return bus.publish(LocalMessage(topic, json={"n": 1}), component)


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("fans/rpm", ["fans/rpm", "fans/rpm/"], ["fans", "fans/rpm/x", "Fans/rpm"]),
        ("fans/+/rpm", ["fans/a/rpm", "fans//rpm"], ["fans/a/b/rpm", "fans/rpm"]),
        ("fans/#", ["fans/a", "fans/a/b/c"], ["fans", "other/a"]),
        ("#", ["a", "a/b/c"], []),
        ("+", ["a"], ["a/b"]),
        ("+/+", ["a/b", "/b"], ["a", "a/b/c"]),
    ],
)
def test_topic_matching_follows_the_nucleus(pattern: str, matches: list[str], misses: list[str]) -> None:
    bus = LocalPubSub()
    got = inbox(bus, pattern, receive_mode=ReceiveMode.RECEIVE_ALL_MESSAGES)
    for topic in matches:
        assert send(bus, topic) == 1, f"{pattern} should match {topic}"
    for topic in misses:
        assert send(bus, topic) == 0, f"{pattern} should not match {topic}"
    assert [m.topic for m in got] == matches


def test_java_split_semantics() -> None:
    assert topic_levels("a/b/") == ["a", "b"]
    assert topic_levels("a//b") == ["a", "", "b"]
    assert topic_levels("/a") == ["", "a"]
    assert topic_levels("") == [""]
    assert topic_levels("/") == []
    assert send(LocalPubSub(), "/") == 0


def test_wildcard_detection() -> None:
    assert is_wildcard("a/+/b") and is_wildcard("a/#") and is_wildcard("#")
    assert not is_wildcard("a/#/b") and not is_wildcard("a+/b") and not is_wildcard("a/b#")


def test_default_receive_mode_depends_on_the_filter() -> None:
    bus = LocalPubSub()
    own_plain = inbox(bus, "fans/rpm", component="fan.Tach")
    own_wild = inbox(bus, "fans/+", component="fan.Tach")
    other_wild = inbox(bus, "fans/+", component="fan.Filter")
    send(bus, "fans/rpm", component="fan.Tach")
    assert len(own_plain) == 1, "plain topic: a component hears itself"
    assert own_wild == [], "wildcard filter: a component does not hear itself"
    assert len(other_wild) == 1


def test_explicit_receive_modes() -> None:
    bus = LocalPubSub()
    others_only = inbox(bus, "t", component="me", receive_mode=ReceiveMode.RECEIVE_MESSAGES_FROM_OTHERS)
    everything = inbox(bus, "t/+", component="me", receive_mode=ReceiveMode.RECEIVE_ALL_MESSAGES)
    send(bus, "t", component="me")
    send(bus, "t/x", component="me")
    assert others_only == []
    assert [m.topic for m in everything] == ["t/x"]


def test_overlapping_filters_each_deliver_and_order_is_kept() -> None:
    bus = LocalPubSub()
    a = inbox(bus, "fans/#", receive_mode=ReceiveMode.RECEIVE_ALL_MESSAGES)
    b = inbox(bus, "fans/+/rpm", receive_mode=ReceiveMode.RECEIVE_ALL_MESSAGES)
    for i in range(5):
        bus.publish(LocalMessage(f"fans/{i}/rpm", binary=bytes([i])), "pub")
    assert [m.binary for m in a] == [bytes([i]) for i in range(5)]
    assert [m.binary for m in b] == [bytes([i]) for i in range(5)]


def test_unsubscribe_stops_delivery_and_prunes() -> None:
    bus = LocalPubSub()
    got: list[LocalMessage] = []
    stop = bus.subscribe("a/b/c", "sub", got.append)
    keep = inbox(bus, "a/b")
    stop()
    stop()
    assert send(bus, "a/b/c") == 0
    assert send(bus, "a/b") == 1
    assert got == [] and len(keep) == 1


@pytest.mark.parametrize("topic", ["a/+", "a/#", "a/*", "#"])
def test_publish_topics_may_not_hold_wildcards(topic: str) -> None:
    with pytest.raises(InvalidTopicError, match="must not contain a wildcard"):
        send(LocalPubSub(), topic)


def test_empty_subscribe_topic_and_ambiguous_messages_are_refused() -> None:
    with pytest.raises(InvalidTopicError, match="must not be empty"):
        LocalPubSub().subscribe("", "sub", lambda m: None)
    with pytest.raises(ValueError, match="either"):
        LocalMessage("t")
    with pytest.raises(ValueError, match="either"):
        LocalMessage("t", json={}, binary=b"")
