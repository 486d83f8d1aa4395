"""The bank checks its own trees: every invariant it names can be seen to fail."""

from __future__ import annotations

import numpy as np
import pytest

from fanwatch.rcf.bank import BrokenTreeError, TreeBank


def _forest(small_forest, fan_stream):
    forest = small_forest()
    forest.process(np.concatenate([fan_stream(300), np.zeros(20), fan_stream(100, seed=1)]))
    return forest._bank, forest._slot


def _an_inner_node(bank: TreeBank, slot: int) -> int:
    root = int(bank.root[slot * bank.T])
    assert not bank.is_leaf(np.array(root))
    return root


def test_a_forest_after_updates_keeps_every_invariant(small_forest, fan_stream) -> None:
    bank, slot = _forest(small_forest, fan_stream)
    bank.check_invariants(slot)


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (
            lambda bank, node: bank.nodes.__setitem__(node, (0, -1e9, *bank.children(np.array([node]))[0])),
            "cut",
        ),
        (lambda bank, node: bank.box.__setitem__((node, 0), bank.box[node, 0] + 1), "box"),
        (lambda bank, node: bank.parent.__setitem__(bank.children(np.array([node]))[0, 0], -1), "parent"),
        (lambda bank, node: bank.leaf_mass.__setitem__(bank.slot_leaf[node // bank.M, 0], 99), "mass"),
    ],
    ids=["cut", "box", "parent", "mass"],
)
def test_a_broken_fact_is_named(small_forest, fan_stream, breaks, message) -> None:
    bank, slot = _forest(small_forest, fan_stream)
    breaks(bank, _an_inner_node(bank, slot))
    with pytest.raises(BrokenTreeError, match=message):
        bank.check_invariants(slot)
