"""UpdateState: a component reports itself RUNNING or ERRORED (``LifecycleIPCEventStreamAgent``)."""

from __future__ import annotations

from awsiot.greengrasscoreipc import model

from fanwatch.core.ipc.calls import Call, Handler
from fanwatch.core.ports import ComponentState

__all__ = ["HANDLERS"]

_REPORTABLE = {model.ReportedLifecycleState.RUNNING, model.ReportedLifecycleState.ERRORED}


async def update_state(call: Call, request: model.UpdateStateRequest) -> model.UpdateStateResponse:
    """UpdateState: the calling component reports itself RUNNING or ERRORED; any other state is refused."""
    if request.state not in _REPORTABLE:
        raise model.InvalidArgumentsError(
            message=f"state must be one of {sorted(_REPORTABLE)}, not {request.state!r}"
        )
    try:
        call.services.nucleus.report_state(call.component, ComponentState(request.state))
    except KeyError:
        raise model.ResourceNotFoundError(
            message="Component with given name not found",
            resource_type="Component",
            resource_name=call.component,
        ) from None
    return model.UpdateStateResponse()


HANDLERS: dict[str, Handler] = {"aws.greengrass#UpdateState": update_state}
