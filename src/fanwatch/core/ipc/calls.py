"""What an operation handler gets: the calling component, the core's services and its stream.

Handlers are small async functions, ``handler(call, request) -> response``, written against
awsiotsdk's model shapes. They refuse a request by raising one of the model's error shapes (for
instance ``model.UnauthorizedError``); anything else they raise becomes a ``ServiceError``, as the
nucleus' ``translateExceptions`` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from awsiot.eventstreamrpc import Shape

from fanwatch.core.ipc.authz import Authorizer, NotAuthorizedError
from fanwatch.core.ipc.local_pubsub import LocalPubSub
from fanwatch.core.ports import Nucleus

__all__ = ["Call", "Cleanup", "Handler", "Services", "authorize"]

#: Undoes what a streaming operation set up (unsubscribe); may be a coroutine function.
Cleanup = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Services:
    """The parts of one core that IPC operations use."""

    nucleus: Nucleus
    authorizer: Authorizer
    pubsub: LocalPubSub


class Call(Protocol):
    """One operation on one stream of an authenticated connection."""

    @property
    def component(self) -> str: ...

    @property
    def services(self) -> Services: ...

    def emit(self, event: Shape) -> None:
        """Send a stream event; callable from any thread. Events raised before the response has gone
        out wait for it, so a subscriber never sees an event ahead of its subscription's response."""
        ...

    def on_close(self, cleanup: Cleanup) -> None:
        """Run ``cleanup`` when the stream ends (client closed it, or the connection went away)."""
        ...


Handler = Callable[[Call, Any], Awaitable[Shape]]


def authorize(
    call: Call,
    service: str,
    operation: str,
    resource: str | None,
    *,
    mqtt: bool = False,
    refusal: Callable[[str], Exception],
) -> None:
    """Check ``call`` against the caller's policies; raise ``refusal(reason)`` when denied."""
    try:
        call.services.authorizer.check(call.component, service, operation, resource, mqtt=mqtt)
    except NotAuthorizedError as denied:
        raise refusal(str(denied)) from None
