"""Message numbering: duplicates dropped, gaps and late arrivals told apart, restarts followed."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from fanwatch.cloud.sequence import MAX_TRACKED_MISSING, SequenceState, check


def test_in_order_messages_are_new_and_a_repeat_is_a_duplicate() -> None:
    state = SequenceState()
    assert [check(state, "b1", s).verdict for s in (0, 1, 2)] == ["new", "new", "new"]
    assert check(state, "b1", 1).verdict == "duplicate"
    assert state.next_seq == 3


def test_a_gap_counts_the_missing_and_a_late_arrival_fills_it_once() -> None:
    state = SequenceState()
    check(state, "b1", 0)
    gap = check(state, "b1", 4)
    assert (gap.verdict, gap.missing) == ("new", 3)
    assert check(state, "b1", 2).verdict == "late"
    assert check(state, "b1", 2).verdict == "duplicate"
    assert state.missing == {1, 3}


def test_a_restart_opens_a_new_boot_and_stragglers_of_the_old_one_are_not_new() -> None:
    state = SequenceState()
    check(state, "old", 0)
    check(state, "old", 1)
    restart = check(state, "new", 0)
    assert restart.restarted and restart.verdict == "new" and restart.missing == 0
    assert check(state, "old", 2).verdict == "late"  # sent before the restart, delivered after it
    assert check(state, "old", 1).verdict == "duplicate"
    assert check(state, "new", 1).verdict == "new"


def test_first_messages_lost_after_a_restart_are_a_gap_but_not_for_a_fan_seen_first() -> None:
    state = SequenceState()
    assert check(state, "b1", 40).missing == 0  # it was running before we listened
    assert check(state, "b2", 3).missing == 3  # it restarted and its first three were lost


def test_legacy_messages_are_unnumbered_and_leave_the_state_alone() -> None:
    state = SequenceState()
    check(state, "b1", 0)
    assert check(state, None, None).verdict == "unnumbered"
    assert state.next_seq == 1


def test_the_missing_set_stays_bounded_after_a_huge_gap() -> None:
    state = SequenceState()
    check(state, "b1", 0)
    assert check(state, "b1", 100_000).missing == 99_999
    assert len(state.missing) == MAX_TRACKED_MISSING
    assert check(state, "b1", 99_999).verdict == "late"


def test_state_survives_its_item_form() -> None:
    state = SequenceState()
    for seq in (0, 1, 5):
        check(state, "b1", seq)
    check(state, "b2", 0)
    again = SequenceState.from_item(state.to_item())
    assert again == state


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**16), st.data())
def test_any_shuffle_with_repeats_processes_each_message_exactly_once(
    n: int, seed: int, data: st.DataObject
) -> None:
    rng = random.Random(seed)
    deliveries = list(range(n)) + data.draw(st.lists(st.integers(0, n - 1), max_size=20))
    # IoT and retries reorder locally, never arbitrarily: shuffle within small windows
    for i in range(0, len(deliveries), 4):
        window = deliveries[i : i + 4]
        rng.shuffle(window)
        deliveries[i : i + 4] = window
    state = SequenceState()
    accepted = [s for s in deliveries if check(state, "b1", s).verdict in {"new", "late"}]
    assert sorted(accepted) == list(range(n))
