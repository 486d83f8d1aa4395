"""The AWS event-stream binary framing, which Greengrass IPC runs on.

A message is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes), typed headers,
a payload and a CRC32 of everything before it; all integers are big-endian. This module only frames
and unframes: what the headers mean to the RPC protocol is ``fanwatch.core.ipc``'s business.

:class:`FrameDecoder` is incremental and checks the prelude before it buffers a body, so a peer that
announces an oversized message is refused before it can make us hold the bytes.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from fanwatch.errors import FanwatchError

__all__ = [
    "PRELUDE_BYTES",
    "FrameDecoder",
    "FrameError",
    "Header",
    "HeaderType",
    "HeaderValue",
    "Message",
    "encode",
]

PRELUDE_BYTES = 12
_CRC_BYTES = 4
_MIN_MESSAGE_BYTES = PRELUDE_BYTES + _CRC_BYTES
_MAX_NAME_BYTES = 255
_MAX_VALUE_BYTES = 32767  # what aws-c-event-stream accepts for strings and byte buffers

HeaderValue = bool | int | bytes | str | uuid.UUID


class HeaderType(IntEnum):
    """The type code of a header's value on the wire, as the event-stream encoding numbers them."""

    BOOL_TRUE = 0
    BOOL_FALSE = 1
    BYTE = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    BYTE_BUF = 6
    STRING = 7
    TIMESTAMP = 8  # int64 as sent (the spec says epoch milliseconds); kept as the raw int
    UUID = 9


_HEADER_TYPES = frozenset(HeaderType)
_INT_FORMATS = {
    HeaderType.BYTE: ">b",
    HeaderType.INT16: ">h",
    HeaderType.INT32: ">i",
    HeaderType.INT64: ">q",
    HeaderType.TIMESTAMP: ">q",
}


class FrameError(FanwatchError, ValueError):
    """The bytes are not a well-formed event-stream message; the stream cannot be trusted past them."""


@dataclass(frozen=True, slots=True)
class Header:
    """One typed header of a message; ``type`` says how ``value`` is framed (:meth:`string` and
    :meth:`int32` make the ones the RPC layer uses)."""

    name: str
    value: HeaderValue
    type: HeaderType

    @classmethod
    def string(cls, name: str, value: str) -> Header:
        return cls(name, value, HeaderType.STRING)

    @classmethod
    def int32(cls, name: str, value: int) -> Header:
        return cls(name, value, HeaderType.INT32)


@dataclass(frozen=True, slots=True)
class Message:
    """One event-stream message: its headers, in order, and its payload (the prelude and CRCs are the
    framing's)."""

    headers: tuple[Header, ...] = ()
    payload: bytes = b""

    def header(self, name: str, type_: HeaderType | None = None) -> HeaderValue | None:
        """The first header called ``name`` (case-insensitively), optionally only of ``type_``."""
        wanted = name.lower()
        for header in self.headers:
            if header.name.lower() == wanted and (type_ is None or header.type is type_):
                return header.value
        return None


def _encode_header(header: Header) -> bytes:
    name = header.name.encode()
    if not 0 < len(name) <= _MAX_NAME_BYTES:
        raise ValueError(f"header name must be 1-{_MAX_NAME_BYTES} bytes: {header.name!r}")
    head = bytes([len(name)]) + name + bytes([header.type])
    kind, value = header.type, header.value
    if kind in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
        if value is not (kind is HeaderType.BOOL_TRUE):
            raise ValueError(f"header {header.name!r}: value {value!r} contradicts type {kind.name}")
        return head
    if kind in _INT_FORMATS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"header {header.name!r}: {kind.name} needs an int, not {value!r}")
        try:
            return head + struct.pack(_INT_FORMATS[kind], value)
        except struct.error as exc:
            raise ValueError(f"header {header.name!r}: {value} does not fit {kind.name}") from exc
    if kind is HeaderType.UUID:
        if not isinstance(value, uuid.UUID):
            raise ValueError(f"header {header.name!r}: UUID needs a uuid.UUID, not {value!r}")
        return head + value.bytes
    if kind is HeaderType.STRING and isinstance(value, str):
        raw = value.encode()
    elif kind is HeaderType.BYTE_BUF and isinstance(value, bytes):
        raw = value
    else:
        raise ValueError(f"header {header.name!r}: {kind.name} cannot hold {value!r}")
    if len(raw) > _MAX_VALUE_BYTES:
        raise ValueError(f"header {header.name!r}: value of {len(raw)} bytes exceeds {_MAX_VALUE_BYTES}")
    return head + struct.pack(">H", len(raw)) + raw


def encode(message: Message) -> bytes:
    """The wire bytes of ``message``. Raises ValueError for a header that cannot be framed."""
    headers = b"".join(_encode_header(h) for h in message.headers)
    total = _MIN_MESSAGE_BYTES + len(headers) + len(message.payload)
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + headers + message.payload
    return body + struct.pack(">I", zlib.crc32(body))


def _decode_headers(raw: bytes) -> tuple[Header, ...]:
    headers: list[Header] = []
    at = 0
    try:
        while at < len(raw):
            name_len = raw[at]
            name = raw[at + 1 : at + 1 + name_len]
            at += 1 + name_len
            if name_len == 0 or len(name) != name_len:
                raise FrameError("header name is empty or truncated")
            if raw[at] not in _HEADER_TYPES:
                raise FrameError(f"unknown header value type {raw[at]}")
            kind = HeaderType(raw[at])
            at += 1
            value: HeaderValue
            if kind in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
                value = kind is HeaderType.BOOL_TRUE
            elif kind in _INT_FORMATS:
                fmt = _INT_FORMATS[kind]
                (value,) = struct.unpack_from(fmt, raw, at)
                at += struct.calcsize(fmt)
            elif kind is HeaderType.UUID:
                if at + 16 > len(raw):
                    raise FrameError("UUID header value truncated")
                value = uuid.UUID(bytes=raw[at : at + 16])
                at += 16
            else:
                (length,) = struct.unpack_from(">H", raw, at)
                data = raw[at + 2 : at + 2 + length]
                at += 2 + length
                if len(data) != length:
                    raise FrameError("header value truncated")
                value = data.decode() if kind is HeaderType.STRING else bytes(data)
            headers.append(Header(name.decode(), value, kind))
    except (struct.error, IndexError) as exc:
        raise FrameError("header truncated") from exc
    except UnicodeDecodeError as exc:
        raise FrameError("header name or string value is not UTF-8") from exc
    return tuple(headers)


class FrameDecoder:
    """Turns a byte stream into messages.

    ``feed`` returns an iterator that yields every complete message in order and raises FrameError at
    the first malformed or oversized one, so the messages before the fault can still be handled. After a
    FrameError the decoder is poisoned (framing is lost) and the connection must be closed.
    """

    def __init__(self, *, max_message_bytes: int) -> None:
        if max_message_bytes < _MIN_MESSAGE_BYTES:
            raise ValueError(f"max_message_bytes must be at least {_MIN_MESSAGE_BYTES}")
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._failed: FrameError | None = None

    def feed(self, data: bytes) -> Iterator[Message]:
        if self._failed is not None:
            raise self._failed
        self._buffer += data
        return self._drain()

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete message still waiting for the rest."""
        return len(self._buffer)

    def _drain(self) -> Iterator[Message]:
        try:
            while (message := self._next()) is not None:
                yield message
        except FrameError as exc:
            self._failed = exc
            self._buffer.clear()
            raise

    def _next(self) -> Message | None:
        if len(self._buffer) < PRELUDE_BYTES:
            return None
        total, headers_len, prelude_crc = struct.unpack_from(">III", self._buffer)
        if zlib.crc32(self._buffer[:8]) != prelude_crc:
            raise FrameError("prelude CRC mismatch")
        if total > self.max_message_bytes:
            raise FrameError(f"message of {total} bytes exceeds the {self.max_message_bytes}-byte limit")
        if total < _MIN_MESSAGE_BYTES or headers_len > total - _MIN_MESSAGE_BYTES:
            raise FrameError(f"impossible lengths: total {total}, headers {headers_len}")
        if len(self._buffer) < total:
            return None
        frame = bytes(self._buffer[:total])
        del self._buffer[:total]
        (message_crc,) = struct.unpack_from(">I", frame, total - _CRC_BYTES)
        if zlib.crc32(frame[: total - _CRC_BYTES]) != message_crc:
            raise FrameError("message CRC mismatch")
        headers_end = PRELUDE_BYTES + headers_len
        headers = _decode_headers(frame[PRELUDE_BYTES:headers_end])
        return Message(headers, frame[headers_end : total - _CRC_BYTES])
