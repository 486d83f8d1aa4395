"""The fleet's vocabulary of states, as AWS spells them: what ``fanwatch fleet`` reads from
greengrassv2 and IoT Jobs, what a device agent reports, and what the local control plane answers.

One home for each, so the client, the agent and the control plane cannot drift apart; members compare
equal to the strings in API answers. A component's lifecycle state is the core's
(:class:`~fanwatch.core.ports.ComponentState`, with ``core.lifecycle.states.HEALTHY`` and ``FAILING``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["FAILED_EXECUTIONS", "TERMINAL", "WAITING", "DeploymentStatus", "DeviceHealth", "ExecutionStatus"]


class ExecutionStatus(StrEnum):
    """A deployment's job execution on one device, as AWS IoT Jobs and greengrassv2 spell it."""

    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    REMOVED = "REMOVED"
    CANCELED = "CANCELED"


#: Executions that will not change again.
TERMINAL: Final = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.REJECTED,
        ExecutionStatus.REMOVED,
        ExecutionStatus.CANCELED,
    }
)
#: Executions that ended without the deployment on the device: a rollout stops on them.
FAILED_EXECUTIONS: Final = frozenset(
    {ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.REJECTED, ExecutionStatus.CANCELED}
)
#: Executions the device has not finished yet.
WAITING: Final = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS})


class DeploymentStatus(StrEnum):
    """A deployment's status, as greengrassv2 spells it."""

    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"
    INACTIVE = "INACTIVE"


class DeviceHealth(StrEnum):
    """A core device's overall status in its fleet status reports (UNHEALTHY: a component is BROKEN)."""

    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
