"""ListComponents and GetComponentDetails, which the Greengrass CLI component serves on a device.

They are authorized as the CLI authorizes them: against the ``aws.greengrass.Cli`` policy type
(resource ``*`` for ListComponents, the component's name for GetComponentDetails), and the CLI itself
may call anything.
"""

from __future__ import annotations

from awsiot.greengrasscoreipc import model

from fanwatch.core.config import without_hidden_keys
from fanwatch.core.ipc.authz import ANY, CLI_SERVICE
from fanwatch.core.ipc.calls import Call, Handler, authorize
from fanwatch.core.ports import ComponentInfo

__all__ = ["HANDLERS"]

GET_DETAILS = "aws.greengrass#GetComponentDetails"
LIST = "aws.greengrass#ListComponents"
_CLI_CLIENT_PREFIX = "greengrass-cli#"


def _authorize(call: Call, operation: str, resource: str) -> None:
    if call.component == CLI_SERVICE or call.component.startswith(_CLI_CLIENT_PREFIX):
        return
    authorize(
        call, CLI_SERVICE, operation, resource, refusal=lambda reason: model.UnauthorizedError(message=reason)
    )


def _details(info: ComponentInfo) -> model.ComponentDetails:
    return model.ComponentDetails(
        component_name=info.name,
        version=info.version,
        state=info.state.value,
        configuration=without_hidden_keys(dict(info.configuration)),
    )


async def get_component_details(
    call: Call, request: model.GetComponentDetailsRequest
) -> model.GetComponentDetailsResponse:
    """GetComponentDetails: one component's version, state and configuration (hidden keys left out); the
    name must be given, and an ``aws.greengrass.Cli`` policy must allow it."""
    name = request.component_name
    if not name:
        raise model.InvalidArgumentsError(message="Component name cannot be empty")
    _authorize(call, GET_DETAILS, name)
    for info in call.services.nucleus.components():
        if info.name == name:
            return model.GetComponentDetailsResponse(component_details=_details(info))
    raise model.ResourceNotFoundError(message=f"Component with name {name} not found in Greengrass")


async def list_components(call: Call, request: model.ListComponentsRequest) -> model.ListComponentsResponse:
    """ListComponents: every component the core runs, with its version, state and configuration; an
    ``aws.greengrass.Cli`` policy must allow ``*``."""
    _authorize(call, LIST, ANY)
    return model.ListComponentsResponse(components=[_details(c) for c in call.services.nucleus.components()])


HANDLERS: dict[str, Handler] = {GET_DETAILS: get_component_details, LIST: list_components}
