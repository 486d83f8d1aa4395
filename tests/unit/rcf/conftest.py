"""Small forests and streams for the RCF unit tests (fast: tens of trees, short streams)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fanwatch.rcf import RandomCutForest
from fanwatch.rcf.bank import EMPTY, FREE, TreeBank

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


def assert_invariants(bank: TreeBank, slot: int) -> None:
    """Every structural fact a correct bank keeps about forest ``slot``."""
    T, S, N = bank.T, bank.S, bank.N
    refs = np.zeros(len(bank.points), np.int64)
    for g in range(slot * T, (slot + 1) * T):
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
            ref, parent = stack.pop()
            if ref < 0:
                leaf = ~ref
                assert bank.leaf_parent[g * S + leaf] == parent
                seen_leaves[leaf] = 0
                continue
            node = bank.nodes[g * N + ref]
            assert node["parent"] == parent
            lo, hi = _subtree_box(bank, g, ref)
            assert np.array_equal(node["box"][0], lo) and np.array_equal(node["box"][1], hi)
            left, right = (
                _subtree_box(bank, g, int(node["child"][0])),
                _subtree_box(bank, g, int(node["child"][1])),
            )
            dim, cut = int(node["dim"]), node["val"]
            assert left[1][dim] <= cut < right[0][dim], "the cut separates the children"
            stack += [(int(node["child"][0]), ref), (int(node["child"][1]), ref)]
        for leaf in bank.slot_leaf[g, slots]:
            seen_leaves[int(leaf)] += 1
        for leaf, mass in seen_leaves.items():
            assert mass == bank.leaf_mass[g * S + leaf] > 0
            refs[bank.leaf_row[g * S + leaf]] += 1
        for s in slots:
            leaf = bank.slot_leaf[g, s]
            assert np.array_equal(bank.points[bank.slot_row[g, s]], bank.points[bank.leaf_row[g * S + leaf]])
        unused_nodes = np.flatnonzero(bank.nodes["parent"][g * N : (g + 1) * N] == FREE)
        assert len(unused_nodes) == N - (len(seen_leaves) - 1)
        assert sorted(bank.free_nodes[g, : bank.n_free_nodes[g]]) == unused_nodes.tolist()
        unused_leaves = np.flatnonzero(bank.leaf_parent[g * S : (g + 1) * S] == FREE)
        assert sorted(bank.free_leaves[g, : bank.n_free_leaves[g]]) == unused_leaves.tolist()
        if n == S:
            assert bank.threshold[g] == bank.slot_weight[g].max()
    held = bank.point_ref > 0
    assert np.array_equal(refs[held], bank.point_ref[held])


def _subtree_box(bank: TreeBank, g: int, ref: int) -> tuple[np.ndarray, np.ndarray]:
    if ref < 0:
        point = bank.points[bank.leaf_row[g * bank.S + ~ref]]
        return point, point
    node = bank.nodes[g * bank.N + ref]
    lo0, hi0 = _subtree_box(bank, g, int(node["child"][0]))
    lo1, hi1 = _subtree_box(bank, g, int(node["child"][1]))
    return np.minimum(lo0, lo1), np.maximum(hi0, hi1)


@pytest.fixture
def fan_stream() -> Callable[..., np.ndarray]:
    return make_fan_stream


@pytest.fixture
def check_invariants() -> Callable[[TreeBank, int], None]:
    return assert_invariants
