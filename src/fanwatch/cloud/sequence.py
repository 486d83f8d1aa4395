"""Per-fan bookkeeping of message numbers: drop duplicates, flag gaps, spot late arrivals.

A device numbers its telemetry per boot (``boot``, ``seq`` from 0). IoT Core delivers at least once
and runs rule actions in parallel, and Lambda retries the tail of a batch after a partial failure, so
the detector sees repeats and, now and then, a message after its successors. :func:`check` compares a
message with the fan's :class:`SequenceState` and says what it is; the state is plain data so the
detector can keep it in DynamoDB between invocations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = ["MAX_TRACKED_MISSING", "SequenceCheck", "SequenceState", "check"]

#: Missing sequence numbers remembered per fan, so that late arrivals are told from duplicates.
MAX_TRACKED_MISSING: Final = 256

Verdict = Literal["new", "duplicate", "late", "unnumbered"]


@dataclass(slots=True)
class SequenceState:
    """Where a fan's message numbering stands (plain data; see :meth:`to_item`)."""

    boot: str | None = None
    next_seq: int = 0
    missing: set[int] = field(default_factory=set)
    previous_boot: str | None = None  # the boot before a restart, whose stragglers may still come
    previous_next_seq: int = 0

    def to_item(self) -> dict[str, Any]:
        return {
            "boot": self.boot,
            "next_seq": self.next_seq,
            "missing": sorted(self.missing),
            "previous_boot": self.previous_boot,
            "previous_next_seq": self.previous_next_seq,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> SequenceState:
        return cls(
            boot=item.get("boot"),
            next_seq=int(item.get("next_seq", 0)),
            missing={int(s) for s in item.get("missing", [])},
            previous_boot=item.get("previous_boot"),
            previous_next_seq=int(item.get("previous_next_seq", 0)),
        )


@dataclass(frozen=True, slots=True)
class SequenceCheck:
    """What a message is: ``new`` (in order or after a gap), ``duplicate``, ``late`` or ``unnumbered``.

    ``missing`` counts the messages skipped just before a ``new`` one (a gap); ``restarted`` says the
    message opened a new boot.
    """

    verdict: Verdict
    missing: int = 0
    restarted: bool = False


def check(state: SequenceState, boot: str | None, seq: int | None) -> SequenceCheck:
    """Classify the message ``(boot, seq)`` and advance ``state`` accordingly."""
    if boot is None or seq is None:
        return SequenceCheck("unnumbered")  # legacy messages carry no numbering
    if boot == state.previous_boot:
        return SequenceCheck("late" if seq >= state.previous_next_seq else "duplicate")
    if boot != state.boot:
        restarted = state.boot is not None
        state.previous_boot, state.previous_next_seq = state.boot, state.next_seq
        state.boot, state.next_seq = boot, seq + 1
        state.missing = set(range(max(0, seq - MAX_TRACKED_MISSING), seq))  # may still come, late
        # After a restart a boot starts at 0, so a first message numbered above that means its elders
        # were lost; a fan seen for the first time may simply have been running before we listened.
        return SequenceCheck("new", missing=seq if restarted else 0, restarted=restarted)
    if seq == state.next_seq:
        state.next_seq += 1
        return SequenceCheck("new")
    if seq > state.next_seq:
        skipped = range(state.next_seq, seq)
        state.missing.update(skipped[-MAX_TRACKED_MISSING:])
        if len(state.missing) > MAX_TRACKED_MISSING:
            state.missing = set(sorted(state.missing)[-MAX_TRACKED_MISSING:])
        state.next_seq = seq + 1
        return SequenceCheck("new", missing=len(skipped))
    if seq in state.missing:
        state.missing.discard(seq)
        return SequenceCheck("late")
    return SequenceCheck("duplicate")
