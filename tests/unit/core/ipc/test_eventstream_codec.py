"""Event-stream framing: reference vectors, every header type, and every way a frame can be malformed."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fanwatch.core.ipc.eventstream import FrameDecoder, FrameError, Header, HeaderType, Message, encode

# Reference frames from the event-stream specification's test suite (aws-c-event-stream).
EMPTY_FRAME = bytes.fromhex("000000100000000005c248eb7d98c8ff")
PAYLOAD_ONLY_FRAME = bytes.fromhex("0000001d00000000fd528c5a7b27666f6f273a27626172277dc3653936")
ONE_HEADER_FRAME = (
    bytes.fromhex("0000003d0000002007fd8396")
    + b"\x0ccontent-type\x07\x00\x10application/json"
    + b"{'foo':'bar'}"
    + bytes.fromhex("8d9c08b1")
)

EVERY_TYPE = (
    Header("t", True, HeaderType.BOOL_TRUE),
    Header("f", False, HeaderType.BOOL_FALSE),
    Header("byte", -128, HeaderType.BYTE),
    Header("i16", 32767, HeaderType.INT16),
    Header(":stream-id", -(2**31), HeaderType.INT32),
    Header("i64", 2**63 - 1, HeaderType.INT64),
    Header("buf", b"\x00\xff", HeaderType.BYTE_BUF),
    Header("str", "héllo", HeaderType.STRING),
    Header("ts", 1_700_000_000_123, HeaderType.TIMESTAMP),
    Header("id", uuid.UUID("12345678-1234-5678-1234-567812345678"), HeaderType.UUID),
)


def decode_all(data: bytes, *, limit: int = 1 << 20) -> list[Message]:
    return list(FrameDecoder(max_message_bytes=limit).feed(data))


def test_reference_frames_encode_byte_for_byte() -> None:
    assert encode(Message()) == EMPTY_FRAME
    assert encode(Message(payload=b"{'foo':'bar'}")) == PAYLOAD_ONLY_FRAME
    content_type = Header.string("content-type", "application/json")
    assert encode(Message((content_type,), b"{'foo':'bar'}")) == ONE_HEADER_FRAME


def test_reference_frames_decode() -> None:
    assert decode_all(EMPTY_FRAME) == [Message()]
    [message] = decode_all(ONE_HEADER_FRAME)
    assert message.payload == b"{'foo':'bar'}"
    assert message.header("Content-Type") == "application/json"
    assert message.header("content-type", HeaderType.INT32) is None


def test_every_header_type_round_trips() -> None:
    message = Message(EVERY_TYPE, b"payload")
    assert decode_all(encode(message)) == [message]


def test_a_stream_split_at_every_byte_yields_each_message_once() -> None:
    messages = [Message(EVERY_TYPE, b"one"), Message(payload=b"two"), Message()]
    wire = b"".join(encode(m) for m in messages)
    decoder = FrameDecoder(max_message_bytes=4096)
    got: list[Message] = []
    for byte in wire:
        got.extend(decoder.feed(bytes([byte])))
    assert got == messages
    assert decoder.buffered == 0


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=20), st.text(max_size=50)).filter(
            lambda t: 0 < len(t[0].encode()) <= 255
        ),
        max_size=5,
    ),
    st.binary(max_size=300),
)
def test_any_string_headers_and_payload_round_trip(pairs: list[tuple[str, str]], payload: bytes) -> None:
    message = Message(tuple(Header.string(k, v) for k, v in pairs), payload)
    assert decode_all(encode(message)) == [message]


def corrupt(frame: bytes, index: int) -> bytes:
    return frame[:index] + bytes([frame[index] ^ 0x01]) + frame[index + 1 :]


def with_valid_crcs(prelude_and_headers: bytes, payload: bytes = b"") -> bytes:
    """Build a frame whose CRCs are right, so that only the part under test is wrong."""
    prelude = prelude_and_headers[:8] + struct.pack(">I", zlib.crc32(prelude_and_headers[:8]))
    body = prelude + prelude_and_headers[8:] + payload
    return body + struct.pack(">I", zlib.crc32(body))


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (corrupt(ONE_HEADER_FRAME, 2), "prelude CRC"),
        (corrupt(ONE_HEADER_FRAME, 9), "prelude CRC"),
        (corrupt(ONE_HEADER_FRAME, 20), "message CRC"),
        (corrupt(ONE_HEADER_FRAME, len(ONE_HEADER_FRAME) - 1), "message CRC"),
        (with_valid_crcs(struct.pack(">II", 15, 0)), "impossible lengths"),
        (with_valid_crcs(struct.pack(">II", 20, 8) + b"\x00\x00\x00\x00"), "impossible lengths"),
        (with_valid_crcs(struct.pack(">II", 19, 3) + b"\x01a\x0a"), "unknown header value type 10"),
        (with_valid_crcs(struct.pack(">II", 19, 3) + b"\x00\x07\x00"), "name is empty"),
        (with_valid_crcs(struct.pack(">II", 20, 4) + b"\x01a\x04\x00"), "truncated"),
        (with_valid_crcs(struct.pack(">II", 21, 5) + b"\x01a\x07\x00\x05"), "truncated"),
        (with_valid_crcs(struct.pack(">II", 22, 6) + b"\x01a\x07\x00\x01\xff"), "not UTF-8"),
        (with_valid_crcs(struct.pack(">II", 20, 4) + b"\x01a\x09\x00"), "UUID header value truncated"),
    ],
)
def test_malformed_frames_are_refused_with_the_reason(frame: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        decode_all(frame)


def test_oversized_message_is_refused_from_its_prelude_alone() -> None:
    decoder = FrameDecoder(max_message_bytes=1024)
    prelude = struct.pack(">II", 1025, 0)
    prelude += struct.pack(">I", zlib.crc32(prelude))
    with pytest.raises(FrameError, match="1025 bytes exceeds the 1024-byte limit"):
        list(decoder.feed(prelude))
    assert decoder.buffered == 0, "nothing of the oversized body is held"


def test_messages_before_a_fault_are_delivered_then_the_decoder_stays_poisoned() -> None:
    decoder = FrameDecoder(max_message_bytes=1024)
    stream = decoder.feed(PAYLOAD_ONLY_FRAME + corrupt(ONE_HEADER_FRAME, 20))
    assert next(stream).payload == b"{'foo':'bar'}"
    with pytest.raises(FrameError):
        next(stream)
    with pytest.raises(FrameError, match="message CRC"):
        decoder.feed(EMPTY_FRAME)


def test_a_message_exactly_at_the_limit_is_accepted() -> None:
    assert decode_all(EMPTY_FRAME, limit=len(EMPTY_FRAME)) == [Message()]
    with pytest.raises(ValueError, match="at least 16"):
        FrameDecoder(max_message_bytes=15)


@pytest.mark.parametrize(
    "header",
    [
        Header("x", 1, HeaderType.BOOL_TRUE),
        Header("x", 128, HeaderType.BYTE),
        Header("x", 2**31, HeaderType.INT32),
        Header("x", True, HeaderType.INT32),
        Header("x", b"bytes", HeaderType.STRING),
        Header("x", "str", HeaderType.BYTE_BUF),
        Header("x", "not-a-uuid", HeaderType.UUID),
        Header("x", "v" * 32768, HeaderType.STRING),
        Header("", "v", HeaderType.STRING),
        Header("n" * 256, "v", HeaderType.STRING),
    ],
)
def test_headers_that_cannot_be_framed_are_refused_on_encode(header: Header) -> None:
    with pytest.raises(ValueError, match="header"):
        encode(Message((header,)))
