"""The event-stream RPC layer over the framing: message types, flags and the headers that carry them.

Every message carries ``:message-type``, ``:message-flags`` and ``:stream-id`` as int32 headers.
Stream 0 carries the connection's own messages (CONNECT, CONNECT_ACK, PING, errors); every other stream
id is one operation, opened by the client with consecutive ids. The texts of the connection-level
errors are the ones aws-c-event-stream's server sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from fanwatch.core.ipc.eventstream import Header, HeaderType, Message
from fanwatch.errors import FanwatchError

__all__ = [
    "CONTENT_TYPE",
    "CONTENT_TYPE_JSON",
    "MODEL_TYPE",
    "OPERATION",
    "VERSION",
    "VERSION_HEADER",
    "Envelope",
    "MessageFlag",
    "MessageType",
    "ProtocolViolation",
    "rpc_message",
]

VERSION_HEADER = ":version"
VERSION = "0.1.0"
CONTENT_TYPE = ":content-type"
CONTENT_TYPE_JSON = "application/json"
MODEL_TYPE = "service-model-type"
OPERATION = "operation"


class MessageType(IntEnum):
    """What a message is (``:message-type``, numbered as aws-c-event-stream does): application messages and
    errors belong to an operation's stream, the rest to the connection (stream 0)."""

    APPLICATION_MESSAGE = 0
    APPLICATION_ERROR = 1
    PING = 2
    PING_RESPONSE = 3
    CONNECT = 4
    CONNECT_ACK = 5
    PROTOCOL_ERROR = 6
    INTERNAL_ERROR = 7


class MessageFlag(IntFlag):
    """The ``:message-flags`` bits: a CONNECT_ACK with CONNECTION_ACCEPTED lets the client in,
    TERMINATE_STREAM ends an operation's stream."""

    NONE = 0
    CONNECTION_ACCEPTED = 1
    TERMINATE_STREAM = 2


class ProtocolViolation(FanwatchError):
    """The peer broke the RPC protocol: answer with a PROTOCOL_ERROR and close the connection."""

    MISSING_FIELDS = (
        "A message was received with missing required fields. Check that your client is sending at least, "
        ":message-type, :message-flags, and :stream-id"
    )
    CONNECT_FIRST = (
        "A CONNECT message must be received, and the CONNECT_ACK must be sent in response, before any other "
        "message-types can be sent on this connection. In addition, only one CONNECT message is allowed on "
        "a connection."
    )
    STREAM_MESSAGE_TYPE = (
        "non-zero stream-id field is only allowed for messages of type APPLICATION_MESSAGE. "
        "The stream id max value is INT32_MAX."
    )
    OLD_STREAM = (
        "stream-id values must be monotonically incrementing. "
        "A stream-id arrived that was lower than the last seen stream-id."
    )
    SKIPPED_STREAM = (
        "stream-id values must be monotonically incrementing. "
        "A new stream-id arrived that was incremented by more than 1."
    )
    NO_OPERATION = "The first message for on a non-zero :stream-id must contain an operation header value."
    BAD_MESSAGE_TYPE = "an invalid value for message-type field was received."

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def payload(self) -> bytes:
        return json.dumps({"message": self.message}).encode()


@dataclass(frozen=True, slots=True)
class Envelope:
    """The RPC fields of one received message."""

    type: int
    flags: int
    stream_id: int
    message: Message

    @classmethod
    def open(cls, message: Message) -> Envelope:
        fields = [message.header(name, HeaderType.INT32) for name in (":message-type", ":message-flags")]
        stream_id = message.header(":stream-id", HeaderType.INT32)
        if fields[0] is None or fields[1] is None or stream_id is None:
            raise ProtocolViolation(ProtocolViolation.MISSING_FIELDS)
        return cls(int(fields[0]), int(fields[1]), int(stream_id), message)

    @property
    def terminates(self) -> bool:
        return bool(self.flags & MessageFlag.TERMINATE_STREAM)

    @property
    def operation(self) -> str | None:
        value = self.message.header(OPERATION, HeaderType.STRING)
        return str(value) if value else None


def rpc_message(
    message_type: MessageType,
    *,
    stream_id: int = 0,
    flags: MessageFlag = MessageFlag.NONE,
    headers: tuple[Header, ...] = (),
    payload: bytes = b"",
) -> Message:
    """A message with the RPC fields first, then ``headers``."""
    return Message(
        (
            Header.int32(":message-type", message_type),
            Header.int32(":message-flags", int(flags)),
            Header.int32(":stream-id", stream_id),
            *headers,
        ),
        payload,
    )
