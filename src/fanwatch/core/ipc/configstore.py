"""GetConfiguration, UpdateConfiguration and SubscribeToConfigurationUpdate, as the nucleus serves them.

Any component may read or watch any component's configuration (the nucleus does not authorize these);
a component may only update its own, and never its ``accessControl``.
"""

from __future__ import annotations

from awsiot.greengrasscoreipc import model

from fanwatch.core.config import StaleUpdateError, without_hidden_keys
from fanwatch.core.ipc.calls import Call, Handler

__all__ = ["HANDLERS"]

_KEY_NOT_FOUND = "Key not found"
_RESTRICTED = "accessControl"


async def get_configuration(
    call: Call, request: model.GetConfigurationRequest
) -> model.GetConfigurationResponse:
    """GetConfiguration: a component's configuration at a key path (the caller's own when no component is
    named), hidden keys left out; the key must exist."""
    component = call.component if request.component_name is None else request.component_name
    key_path = list(request.key_path or [])
    store = call.services.nucleus.config
    try:
        value = store.get(component, key_path)
        resolved = store.resolve(component, key_path)
    except KeyError:
        raise model.ResourceNotFoundError(message=_KEY_NOT_FOUND) from None
    # an interior node comes back without its hidden keys, a leaf as {its name: its value}
    value = without_hidden_keys(value) if isinstance(value, dict) else {resolved[-1]: value}
    return model.GetConfigurationResponse(component_name=component, value=value)


def _refuse_restricted(key_path: list[str], value: dict[str, object]) -> None:
    # Compared case-insensitively, unlike the nucleus: its case-sensitive check lets "AccessControl"
    # through to the (case-insensitive) configuration, where it would rewrite the component's policies.
    touched = [key_path[0]] if key_path else list(value)
    if any(str(key).lower() == _RESTRICTED.lower() for key in touched):
        raise model.InvalidArgumentsError(
            message=f"Config update is not allowed for following fields [{_RESTRICTED}]"
        )


async def update_configuration(
    call: Call, request: model.UpdateConfigurationRequest
) -> model.UpdateConfigurationResponse:
    """UpdateConfiguration: merge an object into the caller's own configuration; needs a timestamp, refuses
    ``accessControl``, and fails the condition check when a value under the path is newer than the
    timestamp (the update's newer parts still apply)."""
    if request.timestamp is None:
        raise model.InvalidArgumentsError(message="Timestamp is required")
    if request.value_to_merge is None:
        raise model.InvalidArgumentsError(message="ValueToMerge is required")
    if not isinstance(request.value_to_merge, dict):
        raise model.InvalidArgumentsError(message="valueToMerge must be a JSON object")
    key_path = list(request.key_path or [])
    _refuse_restricted(key_path, request.value_to_merge)
    store = call.services.nucleus.config
    if call.component not in store.components():
        store.set_tree(call.component, {})  # the nucleus creates a component's configuration on first write
    try:
        store.merge(call.component, key_path, request.value_to_merge, timestamp=request.timestamp.timestamp())
    except StaleUpdateError as exc:
        raise model.FailedUpdateConditionCheckError(message=str(exc)) from None
    except ValueError as exc:
        raise model.InvalidArgumentsError(message=str(exc)) from None
    return model.UpdateConfigurationResponse()


async def subscribe_to_configuration_update(
    call: Call, request: model.SubscribeToConfigurationUpdateRequest
) -> model.SubscribeToConfigurationUpdateResponse:
    """SubscribeToConfigurationUpdate: an event for each change at or below a key path of a component's
    configuration (the caller's own when none is named); the path must exist."""
    component = call.component if request.component_name is None else request.component_name

    def changed(name: str, key_path: list[str]) -> None:
        event = model.ConfigurationUpdateEvent(component_name=name, key_path=key_path)
        call.emit(model.ConfigurationUpdateEvents(configuration_update_event=event))

    try:
        stop = call.services.nucleus.config.subscribe(component, list(request.key_path or []), changed)
    except KeyError:
        raise model.ResourceNotFoundError(message=_KEY_NOT_FOUND) from None
    call.on_close(stop)
    return model.SubscribeToConfigurationUpdateResponse()


HANDLERS: dict[str, Handler] = {
    "aws.greengrass#GetConfiguration": get_configuration,
    "aws.greengrass#UpdateConfiguration": update_configuration,
    "aws.greengrass#SubscribeToConfigurationUpdate": subscribe_to_configuration_update,
}
