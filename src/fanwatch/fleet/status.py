"""``fanwatch fleet status``: the fleet at a glance, from what the Greengrass service knows.

Per device: its health (HEALTHY, UNHEALTHY, or never reported), when it last reported and whether that
is too long ago (a *silent* device: powered off, offline, or its nucleus stopped), its current
deployment and that job's status, and every component that is BROKEN or ERRORED. Then the jobs that
are *stuck*: QUEUED or IN_PROGRESS for longer than ``stuck_after``, with the device, the component that
is not running and the last message (the README's runbook says what to do with each).

Ages are in fleet time (:class:`~fanwatch.fleet.timescale.TimeScale`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fanwatch.core.lifecycle.states import FAILING, HEALTHY
from fanwatch.fleet.api import FleetApi
from fanwatch.fleet.states import WAITING, DeviceHealth, ExecutionStatus
from fanwatch.fleet.timescale import TimeScale

__all__ = ["DeviceStatus", "FleetStatus", "StuckJob", "fleet_status"]

NEVER: Final = "NEVER_REPORTED"


@dataclass(frozen=True, slots=True)
class StuckJob:
    """A device's deployment job that has not finished for too long, and what it waits for."""

    thing: str
    deployment: str
    status: str
    age: float  # fleet seconds since the job last changed
    component: str  # the component that is not running yet ("" when all are)
    message: str


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device as ``fanwatch fleet status`` reports it: its health, its newest job and what is broken."""

    thing: str
    health: str  # HEALTHY | UNHEALTHY | NEVER_REPORTED
    silent_for: float | None  # fleet seconds since its last report, when that is too long
    last_report: dt.datetime | None
    deployment: str  # the name of its newest deployment job, "" if none
    job: str  # that job's status
    reason: str
    broken: tuple[str, ...] = ()

    @property
    def needs_a_look(self) -> bool:
        return (
            self.health != DeviceHealth.HEALTHY
            or self.silent_for is not None
            or bool(self.broken)
            or self.job != ExecutionStatus.SUCCEEDED
        )


@dataclass(frozen=True, slots=True)
class FleetStatus:
    """Every device of a group, and the jobs that are stuck."""

    devices: tuple[DeviceStatus, ...]
    stuck: tuple[StuckJob, ...] = field(default_factory=tuple)

    def counts(self) -> Counter[str]:
        return Counter(d.health for d in self.devices)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts()),
            "devices": [
                {
                    "thing": d.thing,
                    "health": d.health,
                    "lastReport": d.last_report.isoformat() if d.last_report else None,
                    "silentForSeconds": d.silent_for,
                    "deployment": d.deployment,
                    "job": d.job,
                    "reason": d.reason,
                    "broken": list(d.broken),
                }
                for d in self.devices
            ],
            "stuck": [
                {
                    "thing": s.thing,
                    "deployment": s.deployment,
                    "status": s.status,
                    "ageSeconds": s.age,
                    "component": s.component,
                    "message": s.message,
                }
                for s in self.stuck
            ],
        }

    def render(self, *, every_device: bool = False) -> str:
        """Counts first; then each device that needs a look (all of them with ``every_device``)."""
        counts = self.counts()
        silent = [d for d in self.devices if d.silent_for is not None]
        lines = [
            f"{len(self.devices)} devices: "
            + ", ".join(f"{counts[h]} {h}" for h in (*DeviceHealth, NEVER) if counts[h])
            + (f"; {len(silent)} silent" if silent else "")
        ]
        jobs = Counter((d.deployment or "no deployment", d.job) for d in self.devices)
        for (deployment, job), count in sorted(jobs.items()):
            lines.append(f"  {count:>5}  {deployment}: {job or '-'}")
        shown = [d for d in self.devices if every_device or d.needs_a_look]
        if shown:
            lines.append("devices:" if every_device else "devices that need a look:")
        width = max((len(d.thing) for d in shown), default=5)
        for d in shown:
            seen = "never" if d.last_report is None else d.last_report.strftime("%Y-%m-%d %H:%M:%S")
            flag = f"  SILENT for {_age(d.silent_for)}" if d.silent_for is not None else ""
            job = f"{d.deployment}: {d.job}" if d.deployment else "no deployment"
            lines.append(f"  {d.thing:<{width}}  {d.health:<14} last report {seen}{flag}   {job}")
            if d.reason and d.job not in {ExecutionStatus.SUCCEEDED, ""}:
                lines.append(f"  {'':<{width}}    {d.reason}")
            lines.extend(f"  {'':<{width}}    BROKEN: {b}" for b in d.broken)
        if self.stuck:
            lines.append("stuck deployments (the runbook: README.md, Fleets; docs/fleet.md):")
            for s in self.stuck:
                part = f", waiting on {s.component}" if s.component else ""
                message = s.message or "no message"
                lines.append(f"  {s.thing}: {s.deployment} {s.status} for {_age(s.age)}{part}: {message}")
        return "\n".join(lines)


def fleet_status(
    api: FleetApi,
    *,
    group: str | None = None,
    silent_after: float = 2 * 86_400.0,
    stuck_after: float = 1800.0,
    scale: TimeScale | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> FleetStatus:
    """The fleet as the Greengrass service sees it: each core device (of ``group``, or every one) with its
    health, silence and newest deployment, and the jobs queued or in progress for longer than
    ``stuck_after`` (fleet seconds)."""
    scale = scale or TimeScale()
    if group is not None:
        api.group_arn(group)  # a clear error for a group that does not exist
        things: Sequence[str] = api.members(group)
    else:
        paginator = api.greengrass.get_paginator("list_core_devices")
        things = sorted(
            d["coreDeviceThingName"] for page in paginator.paginate() for d in page["coreDevices"]
        )
    moment = now()
    devices, stuck = [], []
    for thing in things:
        device = api.core_device(thing)
        jobs = api.effective(thing)
        newest = jobs[0] if jobs else None
        components = api.installed(thing) if device else []
        broken = tuple(
            f"{c['componentName']} {c['componentVersion']} {c['lifecycleState']}"
            + (f" ({c['lifecycleStateDetails']})" if c.get("lifecycleStateDetails") else "")
            for c in components
            if c.get("lifecycleState") in FAILING
        )
        last = device["lastStatusUpdateTimestamp"] if device else None
        age = scale.fleet((moment - last).total_seconds()) if last else None
        devices.append(
            DeviceStatus(
                thing=thing,
                health=device["status"] if device else NEVER,
                silent_for=age if age is not None and age > silent_after else None,
                last_report=last,
                deployment=newest["deploymentName"] if newest else "",
                job=newest["coreDeviceExecutionStatus"] if newest else "",
                reason=newest.get("reason", "") if newest else "",
                broken=broken,
            )
        )
        for job in jobs:
            if job["coreDeviceExecutionStatus"] not in WAITING:
                continue
            waited = scale.fleet((moment - job["modifiedTimestamp"]).total_seconds())
            if waited <= stuck_after:
                continue
            pending = next((c for c in components if c.get("lifecycleState") not in HEALTHY), None)
            component = (
                f"{pending['componentName']} {pending['componentVersion']} {pending['lifecycleState']}"
                if pending
                else ""
            )
            message = job.get("reason") or (pending or {}).get("lifecycleStateDetails", "")
            stuck.append(
                StuckJob(
                    thing, job["deploymentName"], job["coreDeviceExecutionStatus"], waited, component, message
                )
            )
    return FleetStatus(tuple(devices), tuple(stuck))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 86_400:
        return f"{seconds / 86_400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"
