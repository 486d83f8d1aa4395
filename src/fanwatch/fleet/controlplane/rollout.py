"""How an IoT job lets devices in: the rollout rate, the abort criteria and the per-device timeout.

A Greengrass deployment is carried to its devices by an AWS IoT job, and ``iotJobConfiguration``
is that job's configuration:

- ``jobExecutionsRolloutConfig``: devices are *notified* at ``baseRatePerMinute`` at first; each time
  ``rateIncreaseCriteria`` is met (so many more devices notified, or so many more succeeded) the rate
  is multiplied by ``incrementFactor``, up to ``maximumPerMinute`` (1000 when unset, as in IoT).
  A device that is not notified yet does not see the job at all.
- ``abortConfig``: once at least ``minNumberOfExecutedThings`` devices finished, the job is cancelled
  when the share of finished devices that ended with ``failureType`` (FAILED, REJECTED, TIMED_OUT, or
  ALL of them) reaches ``thresholdPercentage``.
- ``timeoutConfig.inProgressTimeoutInMinutes``: a device that started but did not finish in time is
  TIMED_OUT.

Rates and timeouts are in fleet time (:class:`~fanwatch.fleet.timescale.TimeScale`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fanwatch.fleet.states import ExecutionStatus
from fanwatch.fleet.timescale import TimeScale

__all__ = ["AbortCriterion", "Rollout", "abort_reason"]

#: IoT's default and ceiling for notifications per minute.
MAX_PER_MINUTE: Final = 1000


#: What counts as "executed" for abort criteria: a device that finished, one way or another.
_EXECUTED: Final = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.REJECTED}
)


@dataclass(slots=True)
class Rollout:
    """The notification rate of one job, a token bucket refilled in fleet time."""

    rate: float  # devices per fleet minute now
    maximum: float
    factor: float = 1.0
    notified_step: int | None = None  # raise the rate after this many more notifications...
    succeeded_step: int | None = None  # ...or this many more successes
    tokens: float = 0.0
    last: float | None = None  # wall time of the last refill
    notified_since: int = 0
    succeeded_since: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Rollout:
        config = config or {}
        maximum = float(config.get("maximumPerMinute") or MAX_PER_MINUTE)
        exponential = config.get("exponentialRate")
        if not exponential:
            return cls(rate=maximum, maximum=maximum, tokens=maximum)
        criteria = exponential.get("rateIncreaseCriteria") or {}
        base = float(exponential["baseRatePerMinute"])
        return cls(
            rate=min(base, maximum),
            maximum=maximum,
            factor=float(exponential["incrementFactor"]),
            notified_step=criteria.get("numberOfNotifiedThings"),
            succeeded_step=criteria.get("numberOfSucceededThings"),
            tokens=min(base, maximum),  # the first minute's devices go at once
        )

    def allowance(self, now: float, scale: TimeScale) -> int:
        """How many devices may be notified now."""
        if self.last is not None:
            minutes = scale.fleet(max(0.0, now - self.last)) / 60.0
            self.tokens = min(self.rate, self.tokens + minutes * self.rate)
        self.last = now
        return int(self.tokens)

    def notified(self, count: int) -> None:
        self.tokens -= count
        self.notified_since += count
        self._maybe_increase()

    def succeeded(self) -> None:
        self.succeeded_since += 1
        self._maybe_increase()

    def _maybe_increase(self) -> None:
        due = (self.notified_step is not None and self.notified_since >= self.notified_step) or (
            self.succeeded_step is not None and self.succeeded_since >= self.succeeded_step
        )
        if due and self.factor > 1.0:
            self.rate = min(self.maximum, self.rate * self.factor)
            self.notified_since = self.succeeded_since = 0


@dataclass(frozen=True, slots=True)
class AbortCriterion:
    """A job's abort rule: stop the rollout when this share of the executions (at least ``min_executed`` of
    them) ended with ``failure_type``."""

    failure_type: str  # FAILED | REJECTED | TIMED_OUT | ALL
    threshold_percentage: float
    min_executed: int

    @classmethod
    def all_from(cls, config: Mapping[str, Any] | None) -> list[AbortCriterion]:
        return [
            cls(c["failureType"], float(c["thresholdPercentage"]), int(c["minNumberOfExecutedThings"]))
            for c in ((config or {}).get("criteriaList") or [])
        ]

    def counts(self, status: ExecutionStatus) -> bool:
        if self.failure_type == "ALL":
            return status in _EXECUTED and status is not ExecutionStatus.SUCCEEDED
        return status.value == self.failure_type


def abort_reason(criteria: Sequence[AbortCriterion], statuses: Sequence[ExecutionStatus]) -> str | None:
    """Why the job must be cancelled now, or None."""
    executed = [s for s in statuses if s in _EXECUTED]
    for criterion in criteria:
        if len(executed) < criterion.min_executed:
            continue
        failed = sum(1 for s in executed if criterion.counts(s))
        share = 100.0 * failed / len(executed)
        if failed and share >= criterion.threshold_percentage:
            return (
                f"abort criterion met: {failed} of {len(executed)} executed devices "
                f"({share:.0f} %) ended {criterion.failure_type}, "
                f"threshold {criterion.threshold_percentage:g} %"
            )
    return None
