"""The lifecycle state machine on its own: error counts, BROKEN, the hour that forgives, and which
``UpdateState`` reports apply. No process is started; the clock is a number the test moves."""

from __future__ import annotations

import pytest

from fanwatch.core.lifecycle.states import (
    ERROR_RESET_SECONDS,
    MAXIMUM_CONTINUAL_ERROR,
    StateMachine,
)
from fanwatch.core.ports import ComponentState as S


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def crash_loop(machine: StateMachine, times: int) -> list[S | None]:
    """STARTING -> ERRORED -> (recover) -> STARTING ..., what the driver does after Run fails."""
    entered = []
    for _ in range(times):
        machine.enter(S.STARTING)
        entered.append(machine.enter(S.ERRORED))
        if machine.state is S.BROKEN:
            break
        machine.enter(S.STOPPING)
        machine.enter(S.INSTALLED)
    return entered


def test_a_new_component_is_new() -> None:
    assert StateMachine().state is S.NEW


def test_the_third_error_from_the_same_state_is_broken() -> None:
    machine = StateMachine(clock=Clock())
    assert MAXIMUM_CONTINUAL_ERROR == 3
    assert crash_loop(machine, 5) == [S.ERRORED, S.ERRORED, S.BROKEN]
    assert machine.state is S.BROKEN


def test_entering_the_current_state_changes_nothing() -> None:
    machine = StateMachine()
    machine.enter(S.STARTING)
    assert machine.enter(S.STARTING) is None
    assert machine.state is S.STARTING


def test_an_error_an_hour_after_the_last_starts_the_count_again() -> None:
    clock = Clock()
    machine = StateMachine(clock=clock)
    crash_loop(machine, 2)
    clock.now += ERROR_RESET_SECONDS
    assert crash_loop(machine, 2) == [S.ERRORED, S.ERRORED]
    assert machine.state is S.INSTALLED


def test_leaving_a_state_other_than_by_error_clears_its_count() -> None:
    """A component that reaches RUNNING after each start never goes BROKEN from STARTING."""
    machine = StateMachine(clock=Clock())
    for _ in range(MAXIMUM_CONTINUAL_ERROR * 2):
        machine.enter(S.STARTING)
        machine.enter(S.ERRORED)
        machine.enter(S.STARTING)
        machine.enter(S.RUNNING)  # clears STARTING's count
        machine.enter(S.STOPPING)
        machine.enter(S.INSTALLED)
    assert machine.state is S.INSTALLED


def test_errors_count_per_state() -> None:
    machine = StateMachine(clock=Clock())
    crash_loop(machine, 2)  # two from STARTING
    machine.enter(S.NEW)
    assert machine.enter(S.ERRORED) is S.ERRORED  # the first from NEW (Install failed)


def test_errors_from_states_that_do_not_count_never_break() -> None:
    machine = StateMachine(clock=Clock())
    for _ in range(MAXIMUM_CONTINUAL_ERROR + 1):
        machine.enter(S.STOPPING)
        assert machine.enter(S.ERRORED) is S.ERRORED


@pytest.mark.parametrize(
    ("state", "reported", "applies"),
    [
        (S.STARTING, S.RUNNING, True),
        (S.STARTING, S.ERRORED, True),
        (S.RUNNING, S.ERRORED, True),
        (S.RUNNING, S.RUNNING, True),
        (S.RUNNING, S.FINISHED, False),
        (S.INSTALLED, S.RUNNING, False),
        (S.NEW, S.ERRORED, False),
        (S.BROKEN, S.RUNNING, False),
    ],
)
def test_which_reports_apply(state: S, reported: S, applies: bool) -> None:
    machine = StateMachine()
    machine.enter(state)
    assert machine.accepts_report(reported) is applies
