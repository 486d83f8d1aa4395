"""The one small interface every tachometer input backend offers (GPIO, simulated fan, CSV replay)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["PulseSource"]


@runtime_checkable
class PulseSource(Protocol):
    """A stream of tachometer edges (falling edges of an open-collector tach line).

    ``pulses(until)`` returns, in order, every edge timestamp (clock seconds) up to ``until`` that was
    not returned before. ``label_at`` gives the ground truth of a simulated source (None for real ones);
    ``target_at`` the speed a simulated fan's controller commands at ``t`` (None: the configured target).
    """

    simulated: bool

    def pulses(self, until: float) -> Sequence[float]: ...

    def label_at(self, t: float) -> str | None: ...

    def target_at(self, t: float) -> float | None: ...

    def close(self) -> None: ...
