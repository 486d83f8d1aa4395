"""Hypothesis strategies for what a broken or hostile device can send: valid messages, the same
messages with one field poisoned or their bytes damaged, and structured junk.

Payloads are built as JSON text, not through ``json.dumps`` alone, so they can hold what Python's
encoder never writes but a device can: integer literals of thousands of digits, ``NaN``, ``1e400``,
nesting deeper than any decoder's recursion limit. :class:`Raw` marks such a literal in a tree.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from fanwatch.cloud.events import ANOMALY_KINDS, ANOMALY_SCHEMA, SEVERITIES
from fanwatch.telemetry import (
    ALERT_KINDS,
    ALERT_SCHEMA,
    QUALITY_FLAGS,
    STATUS_SCHEMA,
    TELEMETRY_SCHEMA,
    format_ts,
)

__all__ = [
    "THINGS",
    "Raw",
    "alert_message",
    "anomaly_message",
    "damaged",
    "dumps",
    "junk_value",
    "legacy_message",
    "payloads",
    "poisoned",
    "status_message",
    "telemetry_message",
]

#: The few things fuzzed messages come from, so handlers see several messages per fan.
THINGS = ("pi-fuzz-1", "pi-fuzz-2", "pi-fuzz-3")
_T0 = datetime(2026, 11, 27, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Raw:
    """A JSON literal written as it is (``NaN``, a 5,000-digit integer, ``[[[...]]]``)."""

    text: str


def dumps(tree: Any, *, ascii_only: bool = True) -> bytes:
    """JSON text of ``tree``, with each :class:`Raw` written verbatim; without ``ascii_only`` text is
    written as UTF-8, and an unpaired surrogate as the (invalid) bytes a careless encoder writes."""
    literals: list[str] = []

    def mark(node: Any) -> Any:
        if isinstance(node, Raw):
            literals.append(node.text)
            return f"@@raw{len(literals) - 1}@@"
        if isinstance(node, dict):
            return {str(k): mark(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [mark(v) for v in node]
        return node

    text = json.dumps(mark(tree), separators=(",", ":"), allow_nan=True, ensure_ascii=ascii_only)
    for i, literal in enumerate(literals):
        text = text.replace(f'"@@raw{i}@@"', literal, 1)
    return text.encode("utf-8", "surrogatepass")


# --- valid messages -------------------------------------------------------------------------------

_names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
_times = st.integers(0, 10 * 24 * 3600 * 1000).map(lambda ms: _T0 + timedelta(milliseconds=ms))
_rpm = st.floats(0.0, 6000.0, allow_nan=False)


def _reading(ts: datetime) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "ts": st.just(format_ts(ts)),
            "rpm": _rpm,
            "hz": st.floats(0.0, 200.0, allow_nan=False),
            "pulses": st.integers(0, 10_000),
            "window_s": st.floats(0.01, 60.0, allow_nan=False),
            "flags": st.lists(st.sampled_from(sorted(QUALITY_FLAGS)), max_size=3, unique=True),
        },
        optional={
            "target_rpm": _rpm,
            "temp_c": st.floats(-40.0, 120.0, allow_nan=False),
            "label": st.sampled_from(["normal", "stall", "bearing"]),
        },
    )


@st.composite
def telemetry_message(draw: st.DrawFn, *, thing: str | None = None) -> dict[str, Any]:
    """A valid telemetry message as a dict (readings one second apart, in order)."""
    sent = draw(_times)
    count = draw(st.integers(1, 8))
    stamps = [sent - timedelta(seconds=count - i) for i in range(count)]
    return {
        "schema": TELEMETRY_SCHEMA,
        "thing": thing or draw(st.sampled_from(THINGS)),
        "fan": draw(st.sampled_from(["fan0", "fan1"])),
        "boot": draw(st.sampled_from(["b1", "b2"])),
        "seq": draw(st.integers(0, 50)),
        "sent": format_ts(sent),
        "readings": [draw(_reading(ts)) for ts in stamps],
    }


def legacy_message() -> st.SearchStrategy[dict[str, Any]]:
    """The original design's flat message."""
    return st.fixed_dictionaries(
        {
            "TIME": st.one_of(
                _times.map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S")), _times.map(lambda t: t.timestamp())
            ),
            "FANID": st.one_of(st.sampled_from(["fan1", "fan2"]), st.integers(0, 9)),
            "RPM": _rpm,
        },
        optional={"FREQ": st.floats(0.0, 200.0, allow_nan=False)},
    )


@st.composite
def alert_message(draw: st.DrawFn, *, thing: str | None = None) -> dict[str, Any]:
    """A valid edge alert message as a dict (``since`` at or before ``ts``)."""
    since = draw(_times)
    return {
        "schema": ALERT_SCHEMA,
        "thing": thing or draw(st.sampled_from(THINGS)),
        "fan": draw(st.sampled_from(["fan0", "fan1"])),
        "boot": "b1",
        "seq": draw(st.integers(0, 50)),
        "kind": draw(st.sampled_from(sorted(ALERT_KINDS))),
        "state": draw(st.sampled_from(["raised", "cleared"])),
        "ts": format_ts(since + timedelta(seconds=draw(st.integers(0, 3600)))),
        "rpm": draw(_rpm),
        "since": format_ts(since),
        "detail": draw(st.text(max_size=40)),
    }


@st.composite
def status_message(draw: st.DrawFn, *, thing: str | None = None) -> dict[str, Any]:
    """A valid device status message as a dict."""
    return {
        "schema": STATUS_SCHEMA,
        "thing": thing or draw(st.sampled_from(THINGS)),
        "boot": "b1",
        "ts": format_ts(draw(_times)),
        "uptime_s": draw(st.floats(0.0, 1e6, allow_nan=False)),
        "components": draw(st.dictionaries(_names, st.sampled_from(["1.0.0", "2.1.3"]), max_size=3)),
        "config_digest": draw(st.text(string.hexdigits, max_size=16)),
        "counters": draw(st.dictionaries(_names, st.integers(0, 10**6), max_size=3)),
        "last_reading": draw(st.one_of(st.none(), _times.flatmap(_reading))),
    }


@st.composite
def anomaly_message(draw: st.DrawFn, *, thing: str | None = None) -> dict[str, Any]:
    """A valid detector anomaly message as a dict (``since`` at or before ``ts``)."""
    since = draw(_times)
    return {
        "schema": ANOMALY_SCHEMA,
        "thing": thing or draw(st.sampled_from(THINGS)),
        "fan": draw(st.sampled_from(["fan0", "fan1"])),
        "kind": draw(st.sampled_from(sorted(ANOMALY_KINDS))),
        "severity": draw(st.sampled_from(SEVERITIES)),
        "ts": format_ts(since + timedelta(seconds=draw(st.integers(0, 600)))),
        "since": format_ts(since),
        "rpm": draw(_rpm),
        "score": draw(st.floats(0.0, 8.0, allow_nan=False)),
        "threshold": draw(st.floats(0.0, 8.0, allow_nan=False)),
        "typical_rpm": draw(st.one_of(st.none(), _rpm)),
        "missing": draw(st.integers(0, 10)),
        "boot": "b1",
        "seq": draw(st.integers(0, 50)),
    }


# --- poison ---------------------------------------------------------------------------------------

_numbers_devices_send = st.one_of(
    st.integers(1, 6000).map(lambda n: Raw("9" * n)),  # past int64, float() and the int-str limit
    st.integers(1, 6000).map(lambda n: Raw("-" + "9" * n)),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "0e0", "1E+2"]).map(
        Raw
    ),
    st.sampled_from([1e12, 1e20, -(2**63), 2**63, 2**64, 1e308, -1e308, 253402300800, -62135596800]),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
_texts_devices_send = st.one_of(
    st.text(max_size=50),
    st.text(st.characters(codec=None, categories=None), max_size=20),  # lone surrogates included
    st.sampled_from(["pi-1\n", "fan0\n", "\n", "", " ", "..", "../x", "a\x00b", "\ud800", "\udfff\ud800"]),
    st.sampled_from(
        [
            "2026-11-27T19:35:17Z",
            "2026-11-27T19:35:17",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2026-02-30T00:00:00Z",
            "2026-11-27T19:35:17.123456789Z",
            "+002026-11-27",
            "2026-W48-5",
        ]
    ),
    st.text(min_size=200, max_size=5000),
)


def _nested(depth: int) -> Raw:
    return Raw("[" * depth + "]" * depth)


def junk_value() -> st.SearchStrategy[Any]:
    """One value in place of a field: wrong type, out of range, unreadable, or nested past reason."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        _numbers_devices_send,
        _texts_devices_send,
        st.integers(1, 4000).map(_nested),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=8,
    )


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            paths += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            paths += _paths(value, (*prefix, i))
    return paths


def _replace(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy: Any = dict(tree) if isinstance(tree, dict) else list(tree)
    copy[path[0]] = _replace(tree[path[0]], path[1:], value)
    return copy


def _delete(tree: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1:
        copy: Any = dict(tree) if isinstance(tree, dict) else list(tree)
        del copy[path[0]]
        return copy
    return _replace(tree, path[:1], _delete(tree[path[0]], path[1:]))


@st.composite
def poisoned(draw: st.DrawFn, messages: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A valid message with one to three fields replaced by junk, deleted, or added."""
    tree: Any = draw(messages)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(tree)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "delete" and path:
            tree = _delete(tree, path)
        elif action == "add" and isinstance(tree, dict):
            tree = {**tree, draw(st.text(max_size=10)): draw(junk_value())}
        else:
            tree = _replace(tree, path, draw(junk_value()))
    return tree


@st.composite
def damaged(draw: st.DrawFn, payload: st.SearchStrategy[bytes]) -> bytes:
    """Bytes of a payload cut short, flipped, spliced with invalid UTF-8, or padded past the limit."""
    data = bytearray(draw(payload))
    action = draw(st.sampled_from(["truncate", "flip", "insert", "pad", "bom"]))
    at = draw(st.integers(0, len(data)))
    if action == "truncate":
        del data[at:]
    elif action == "flip" and data:
        data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
    elif action == "insert":
        data[at:at] = draw(
            st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\xf4\x90\x80\x80"])
        )
    elif action == "pad":
        data += b" " * draw(st.sampled_from([10, 131_072]))
    else:
        data[:0] = b"\xef\xbb\xbf"
    return bytes(data)


def payloads(messages: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """What arrives as a message of one kind: mostly valid or poisoned, some damaged, some junk."""
    valid = messages.map(dumps)
    return st.one_of(
        valid,
        st.builds(
            lambda tree, ascii_only: dumps(tree, ascii_only=ascii_only), poisoned(messages), st.booleans()
        ),
        poisoned(messages).map(dumps),
        damaged(valid),
        junk_value().map(dumps),
        st.binary(max_size=200),
    )
