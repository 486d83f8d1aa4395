"""The nucleus' lifecycle state machine for one component, apart from the processes it drives.

Three consecutive errors from the same state make a component BROKEN (``MAXIMUM_CONTINUAL_ERROR``:
the first attempt and two restarts); an error more than an hour after the previous one starts the
count again. Entering any other state from a state clears that state's count, which is why a
component calling ``UpdateState(RUNNING)`` after each start never goes BROKEN. Errors count only from
NEW (Install failed), STARTING and RUNNING, as in the nucleus' ``Lifecycle``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from fanwatch.core.ports import ComponentState

__all__ = [
    "ERROR_RESET_SECONDS",
    "FAILING",
    "HEALTHY",
    "MAXIMUM_CONTINUAL_ERROR",
    "SETTLED",
    "StateMachine",
]

MAXIMUM_CONTINUAL_ERROR: Final = 3
ERROR_RESET_SECONDS: Final = 3600.0

#: A deployment succeeds, and a HARD dependency is met, when the component is in one of these.
HEALTHY: Final = frozenset({ComponentState.RUNNING, ComponentState.FINISHED})
#: A component stays in one of these until something changes: what a deployment waits for.
SETTLED: Final = HEALTHY | {ComponentState.BROKEN}
#: A component in one of these has failed (and may be restarting): what a fleet's status reports.
FAILING: Final = frozenset({ComponentState.ERRORED, ComponentState.BROKEN})

#: the states whose errors count towards BROKEN
_COUNTED: Final = frozenset({ComponentState.NEW, ComponentState.STARTING, ComponentState.RUNNING})
#: what a component may report of itself with UpdateState, by its current state
_REPORTABLE: Final = {
    ComponentState.STARTING: (ComponentState.RUNNING, ComponentState.ERRORED),
    ComponentState.RUNNING: (ComponentState.RUNNING, ComponentState.ERRORED),
}


class StateMachine:
    """One component's state and its error counts; ``clock`` (seconds, monotonic) is swappable for tests."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._state = ComponentState.NEW
        self._errors: dict[ComponentState, list[float]] = {}

    @property
    def state(self) -> ComponentState:
        return self._state

    def enter(self, new: ComponentState) -> ComponentState | None:
        """Move to ``new`` and return the state entered: BROKEN instead of ERRORED on the error that
        exhausts the count, None when the component already is in that state."""
        current = self._state
        if new is ComponentState.ERRORED and current in _COUNTED:
            now = self._clock()
            history = self._errors.setdefault(current, [])
            if history and now - history[-1] >= ERROR_RESET_SECONDS:
                history.clear()
            history.append(now)
            if len(history) >= MAXIMUM_CONTINUAL_ERROR:
                new = ComponentState.BROKEN
        else:
            self._errors.pop(current, None)
        if new is current:
            return None
        self._state = new
        return new

    def accepts_report(self, reported: ComponentState) -> bool:
        """Whether a component's own ``UpdateState(reported)`` applies now (RUNNING or ERRORED, and only
        while STARTING or RUNNING)."""
        return reported in _REPORTABLE.get(self._state, ())
