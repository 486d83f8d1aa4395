"""Small forests and streams for the RCF unit tests (fast: tens of trees, short streams)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fanwatch.rcf import RandomCutForest
from fanwatch.rcf.bank import DIM, EMPTY, FREE, LEFT, RIGHT, TreeBank

SMALL = {"num_trees": 12, "sample_size": 32}


def make_fan_stream(n: int, *, seed: int = 0, level: float = 1500.0, noise: float = 5.0) -> np.ndarray:
    """A 1 Hz RPM stream: slow drift plus noise, quantised like a tachometer's readings."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.normal(0, 0.2, n))
    return np.round(level + drift + rng.normal(0, noise, n))


@pytest.fixture
def small_forest() -> Callable[..., RandomCutForest]:
    def make(dimensions: int = 1, **options: object) -> RandomCutForest:
        return RandomCutForest(dimensions, **{**SMALL, **options})  # type: ignore[arg-type]

    return make


def assert_invariants(bank: TreeBank, *slots: int) -> None:
    """Every structural fact a correct bank keeps about forests ``slots`` (all that hold points)."""
    T, S, N, M, D = bank.T, bank.S, bank.N, bank.M, bank.D
    refs = np.zeros(len(bank.points), np.int64)
    for g in (g for slot in slots for g in range(slot * T, (slot + 1) * T)):
        n = int(bank.n_slots[g])
        assert bank.tree_mass[g] == n
        slots = np.arange(n)
        np.add.at(refs, bank.slot_row[g, slots], 1)
        if n == 0:
            assert bank.root[g] == EMPTY
            continue
        # the leaves reachable from the root are exactly the leaves the slots point to
        seen_leaves: dict[int, int] = {}
        stack = [(int(bank.root[g]), -1)]
        while stack:
            node, parent = stack.pop()
            assert g * M <= node < (g + 1) * M, "a tree's nodes are its own"
            assert bank.parent[node] == parent
            if bank.is_leaf(node):
                assert (bank.walk[node, LEFT:] == node).all(), "a leaf is its own child"
                point = bank.points[bank.leaf_row[node]]
                assert np.array_equal(bank.box[node], np.concatenate([-point, point]))
                seen_leaves[node] = 0
                continue
            lo, hi = _subtree_box(bank, node)
            assert np.array_equal(-bank.box[node, :D], lo) and np.array_equal(bank.box[node, D:], hi)
            left_node, right_node = (int(c) for c in bank.walk[node, LEFT:])
            left, right = _subtree_box(bank, left_node), _subtree_box(bank, right_node)
            dim, cut = int(bank.walk[node, DIM]), bank.cut_values(np.array([node]))[0]
            assert left[1][dim] <= cut < right[0][dim], "the cut separates the children"
            stack += [(left_node, node), (right_node, node)]
        for leaf in bank.slot_leaf[g, slots]:
            seen_leaves[int(leaf)] += 1
        for leaf, mass in seen_leaves.items():
            assert mass == bank.leaf_mass[leaf] > 0
            refs[bank.leaf_row[leaf]] += 1
        for s in slots:
            leaf = bank.slot_leaf[g, s]
            assert np.array_equal(bank.points[bank.slot_row[g, s]], bank.points[bank.leaf_row[leaf]])
        ids = np.arange(g * M, (g + 1) * M)
        unused_nodes = ids[:N][bank.parent[ids[:N]] == FREE]
        assert len(unused_nodes) == N - (len(seen_leaves) - 1)
        assert sorted(bank.free_nodes[g, : bank.n_free_nodes[g]]) == unused_nodes.tolist()
        unused_leaves = ids[N:][bank.parent[ids[N:]] == FREE]
        assert len(unused_leaves) == S - len(seen_leaves)
        assert sorted(bank.free_leaves[g, : bank.n_free_leaves[g]]) == unused_leaves.tolist()
        if n == S:
            assert bank.threshold[g] == bank.slot_weight[g].max()
    held = bank.point_ref > 0
    assert np.array_equal(refs[held], bank.point_ref[held])


def _subtree_box(bank: TreeBank, node: int) -> tuple[np.ndarray, np.ndarray]:
    """The bounding box of the points under ``node``, from the points themselves."""
    if bank.is_leaf(node):
        point = bank.points[bank.leaf_row[node]]
        return point, point
    lo0, hi0 = _subtree_box(bank, int(bank.walk[node, LEFT]))
    lo1, hi1 = _subtree_box(bank, int(bank.walk[node, RIGHT]))
    return np.minimum(lo0, lo1), np.maximum(hi0, hi1)


@pytest.fixture
def fan_stream() -> Callable[..., np.ndarray]:
    return make_fan_stream


@pytest.fixture
def check_invariants() -> Callable[..., None]:
    return assert_invariants
