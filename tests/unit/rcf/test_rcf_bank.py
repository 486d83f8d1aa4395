"""The bank checks its own trees: every invariant it names can be seen to fail."""

from __future__ import annotations

import numpy as np
import pytest

from fanwatch.rcf.bank import BrokenTreeError, TreeBank


def _forest(small_forest, fan_stream):
    forest = small_forest()
    forest.process(np.concatenate([fan_stream(300), np.zeros(20), fan_stream(100, seed=1)]))
    return forest._bank, forest._slot


def _an_inner_node(bank: TreeBank, slot: int) -> np.ndarray:
    root = bank.root[slot * bank.T : slot * bank.T + 1].astype(np.int64)
    assert not bank.is_leaf(root)[0]
    return root


def _cut_below_everything(bank: TreeBank, node: np.ndarray) -> None:
    tree = bank.tree_of(node)
    left, right = bank.children(node, tree)[0]
    bank.set_cut(node, tree, [0], [-1e9], np.array([left]), np.array([right]))


def _grow_box(bank: TreeBank, node: np.ndarray) -> None:
    tree = bank.tree_of(node)
    box = bank.inner_boxes(node, tree)[:, 0]
    box[0] += 1
    bank.set_boxes(node, tree, box[None, :])


def _wrong_parent(bank: TreeBank, node: np.ndarray) -> None:
    tree = bank.tree_of(node)
    left, right = bank.children(node, tree)[0]
    bank.set_parent(np.array([left]), tree, np.array([right]))


def _wrong_mass(bank: TreeBank, node: np.ndarray) -> None:
    tree = bank.tree_of(node)
    bank.add_mass(bank.sample_leaves(tree, np.array([0])), tree, 98)


@pytest.mark.parametrize(
    ("breaks", "message"),
    [(_cut_below_everything, "cut"), (_grow_box, "box"), (_wrong_parent, "parent"), (_wrong_mass, "mass")],
    ids=["cut", "box", "parent", "mass"],
)
def test_a_broken_fact_is_named(small_forest, fan_stream, breaks, message) -> None:
    bank, slot = _forest(small_forest, fan_stream)
    bank.check_invariants(slot)
    breaks(bank, _an_inner_node(bank, slot))
    with pytest.raises(BrokenTreeError, match=message):
        bank.check_invariants(slot)


def test_a_bank_writes_nothing_for_slots_no_forest_has_used(small_forest, fan_stream):
    """Growing the bank touches no page of its spare slots (RSS grows with the forests in use,
    not with the capacity); a spare slot is made empty when a forest first takes it."""
    bank, slot = _forest(small_forest, fan_stream)
    before = bank.capacity
    bank.reserve(before + 400)  # past 4 MB of nodes and boxes: those are mapped, not calloc'ed
    assert bank.nodes.nbytes >= 4 << 20
    for name in ("nodes", "parent", "free_nodes", "free_leaves", "root", "threshold"):
        spare = getattr(bank, name).reshape(bank.capacity, -1)[before:]
        assert not spare.view(np.uint8).any(), name
    fresh = bank.acquire(seed=3)
    bank.check_invariants(slot, fresh)
    assert (bank.root[bank.trees(fresh)] == -1).all()
    last = bank.capacity
    bank.reserve(last + 1)  # growing again keeps the slots in use (and copies no spare one)
    for name in ("nodes", "parent", "free_nodes", "root", "threshold"):
        spare = getattr(bank, name).reshape(bank.capacity, -1)[fresh + 1 :]
        assert not spare.view(np.uint8).any(), name
    bank.check_invariants(slot, fresh)


def test_a_bank_that_grows_keeps_its_forests_bit_for_bit(small_forest, fan_stream):
    grown, twin = small_forest(), small_forest()
    warm = fan_stream(300)
    grown.process(warm)
    twin.process(warm)
    grown._bank.reserve(400)  # its large arrays are now mapped in small pages
    assert grown._bank.box.nbytes >= 4 << 20
    later = fan_stream(200, seed=2)
    assert np.array_equal(grown.process(later), twin.process(later))
    assert grown.to_bytes() == twin.to_bytes()
    grown._bank.check_invariants(grown._slot)
