"""Requests and responses as awsiotsdk's ``greengrasscoreipc.model`` defines them.

The server reads and writes the very classes the client uses, so every field name, its casing and
every base64 rule is the client's own. This is the one module that touches the model's
underscore-named serialization hooks (``_from_payload``, ``_to_payload``, ``_model_name``): if a
future awsiotsdk moves them, this is the only file to change.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping

from awsiot import eventstreamrpc as rpc
from awsiot.greengrasscoreipc import model

__all__ = ["MODEL_OPERATIONS", "is_streaming", "model_name", "read_request", "to_json"]


def _model_operations() -> dict[str, type[rpc.ClientOperation]]:
    operations = [op for op in rpc.ClientOperation.__subclasses__() if op.__module__ == model.__name__]
    return {op._model_name(): op for op in operations}


#: Every operation of the Greengrass IPC model, by wire name (``aws.greengrass#PublishToIoTCore``).
MODEL_OPERATIONS: Mapping[str, type[rpc.ClientOperation]] = _model_operations()


def is_streaming(operation: str) -> bool:
    """Whether the operation keeps its stream open for events after the response."""
    return MODEL_OPERATIONS[operation]._response_stream_type() is not None


def read_request(operation: str, payload: bytes) -> rpc.Shape:
    """The operation's request shape from its JSON payload; InvalidArgumentsError if unreadable."""
    request_type = MODEL_OPERATIONS[operation]._request_type()
    try:
        document = json.loads(payload or b"{}")
        if not isinstance(document, dict):
            raise TypeError(f"the request is JSON {type(document).__name__}, not an object")
        request = request_type._from_payload(document)
        _refuse_loose_base64(document, request)
        return request
    except (
        ValueError,
        TypeError,
        AttributeError,
        OverflowError,
        OSError,
        RecursionError,
        binascii.Error,
    ) as exc:
        raise model.InvalidArgumentsError(
            message=f"{operation}: the request payload is not a valid {request_type._model_name()}: {exc}"
        ) from exc


def _refuse_loose_base64(document: dict[str, object], shape: rpc.Shape) -> None:
    """The model decodes blobs leniently (``"***"`` becomes ``b""``); the nucleus refuses bad base64, and
    so do we, rather than publish an empty payload. Model attributes are the snake_case JSON keys."""
    for key, value in document.items():
        attribute = getattr(shape, re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(), None)
        if isinstance(attribute, bytes) and isinstance(value, str):
            base64.b64decode(value, validate=True)
        elif isinstance(attribute, rpc.Shape) and isinstance(value, dict):
            _refuse_loose_base64(value, attribute)


def model_name(shape: rpc.Shape) -> str:
    """The shape's name in the IPC model (``aws.greengrass#PublishToIoTCoreResponse``), which a reply's
    ``service-model-type`` header carries."""
    return str(shape._model_name())


def to_json(shape: rpc.Shape) -> bytes:
    """The shape as the JSON payload the client reads (its camelCase keys, blobs in base64)."""
    return json.dumps(shape._to_payload()).encode()
