"""Which handler serves which operation, and how an operation the core does not serve is answered."""

from __future__ import annotations

import json
from collections.abc import Mapping

from awsiot.eventstreamrpc import Shape
from awsiot.greengrasscoreipc import model

from fanwatch.core.ipc import cli, configstore, lifecycle, mqttproxy, pubsub
from fanwatch.core.ipc.calls import Call, Handler
from fanwatch.core.ipc.shapes import MODEL_OPERATIONS, read_request
from fanwatch.errors import FanwatchError

__all__ = ["HANDLERS", "UnknownOperationError", "perform"]

HANDLERS: Mapping[str, Handler] = {
    **mqttproxy.HANDLERS,
    **pubsub.HANDLERS,
    **configstore.HANDLERS,
    **lifecycle.HANDLERS,
    **cli.HANDLERS,
}


class UnknownOperationError(FanwatchError):
    """An operation name that is not in the Greengrass IPC model at all."""

    def payload(self) -> bytes:
        """What the nucleus' RPC server sends for it (with no model type: it is not a modeled error)."""
        message = f"{self.args[0]} is an unsupported operation."
        return json.dumps({"error": "Unsupported Operation", "message": message}).encode()


async def perform(call: Call, operation: str, payload: bytes) -> Shape:
    """Run ``operation`` for ``call``; raises model error shapes, or UnknownOperationError."""
    if operation not in MODEL_OPERATIONS:
        raise UnknownOperationError(operation)
    handler = HANDLERS.get(operation)
    if handler is None:  # in the model, but not served here: the nucleus' DefaultOperationHandler answer
        raise model.ServiceError(message=f"Operation {operation} is not supported by Greengrass")
    return await handler(call, read_request(operation, payload))
