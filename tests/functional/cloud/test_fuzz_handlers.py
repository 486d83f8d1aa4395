"""The fuzz harness over the cloud handlers, with real boto3 against moto server: batches that mix
valid, poisoned, damaged and junk records; no batch fails, and exactly the records the contract
refuses are dead-lettered (or, in the lake, left to the error prefix)."""

from __future__ import annotations

import pytest

from fanwatch.fuzz.handlers import handler_targets
from fanwatch.fuzz.harness import run

BATCHES = 20


@pytest.mark.parametrize("index", [0, 1, 2], ids=["detector", "notifier", "lake"])
def test_a_handler_never_fails_a_batch_because_of_one_record(moto_endpoint: str, index: int) -> None:
    tally = run(handler_targets(moto_endpoint)[index], examples=BATCHES)
    assert tally.escaped == 0, "\n\n".join(tally.escapes)
    assert tally.tried == BATCHES
    assert tally.accepted > 0 and tally.refused > 0, tally.line()
