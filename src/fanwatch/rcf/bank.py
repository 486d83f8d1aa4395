"""Every tree of every forest in one set of flat numpy arrays, plus the points they share.

Why one bank: a numpy call costs microseconds however little it does, so the trees of one forest,
and the forests of a whole fleet, are stepped in lock-step by single calls over all of them. A tree
is rows of integer node ids, never Python objects. Bank tree ``t`` is tree ``t % T`` of forest
slot ``t // T``; it owns the node ids ``t*M .. t*M+M-1`` (``M = 2*S - 1``): the first ``N = S - 1``
are its internal nodes, the other ``S`` its leaves. One id space for both means a descent needs no
test for "is this a leaf": a leaf's children are the leaf itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import numpy as np
import numpy.typing as npt

from . import _random
from .config import ForestConfig

__all__ = ["EMPTY", "FREE", "NODE", "BrokenTreeError", "TreeBank"]

#: Root of a tree that holds no point.
EMPTY: Final = -1
#: Parent of an unused node (the root's parent is -1).
FREE: Final = -2
#: One record of :attr:`TreeBank.nodes`: the cut (``point[dim] <= cut`` goes ``left``, else
#: ``right``) and both children. One record is all a descent step reads, in one gather.
NODE: Final = np.dtype([("dim", "<i4"), ("cut", "<f4"), ("left", "<i4"), ("right", "<i4")])

IntArray = npt.NDArray[np.int64]


class BrokenTreeError(AssertionError):
    """:meth:`TreeBank.check_invariants` found a fact a correct bank always keeps broken."""


class TreeBank:
    """Storage for up to :attr:`capacity` forests of one :class:`ForestConfig` (grows on demand).

    Per node id: ``nodes`` (see :data:`NODE`), ``box`` (the bounding box as ``-low`` then ``high``,
    float32, so that the union of boxes, or of a box and a point, is one ``np.maximum``; a leaf's
    box is its point), ``parent``, and for leaves ``leaf_row`` (its point in the store) and
    ``leaf_mass`` (copies of the point).
    """

    nodes: npt.NDArray[np.void]
    box: npt.NDArray[np.float32]
    parent: npt.NDArray[np.int32]
    leaf_row: npt.NDArray[np.int32]
    leaf_mass: npt.NDArray[np.int32]
    free_nodes: npt.NDArray[np.int32]
    n_free_nodes: npt.NDArray[np.int32]
    free_leaves: npt.NDArray[np.int32]
    n_free_leaves: npt.NDArray[np.int32]
    root: npt.NDArray[np.int32]
    tree_mass: npt.NDArray[np.int32]
    slot_weight: npt.NDArray[np.float32]
    slot_row: npt.NDArray[np.int32]
    slot_leaf: npt.NDArray[np.int32]
    n_slots: npt.NDArray[np.int32]
    threshold: npt.NDArray[np.float32]
    threshold_slot: npt.NDArray[np.int32]
    cut_key: npt.NDArray[np.uint64]
    sample_key: npt.NDArray[np.uint64]
    seen: npt.NDArray[np.int64]
    shingle: npt.NDArray[np.float32]
    seed: npt.NDArray[np.uint64]

    def __init__(self, config: ForestConfig, *, capacity: int = 1) -> None:
        self.config = config
        self.T = config.num_trees
        self.S = config.sample_size
        self.N = config.sample_size - 1
        self.M = 2 * config.sample_size - 1
        self.D = config.shingled_dimensions
        self.capacity = 0
        self._free_slots: list[int] = []
        self._allocate(max(1, capacity))
        # the point store: one float32 row per sampled (shingled) point, shared by the trees
        rows = 1024
        self.points = np.zeros((rows, self.D), np.float32)
        self.point_seq = np.zeros(rows, np.int64)
        self.point_ref = np.zeros(rows, np.int32)
        self._free_rows = np.arange(rows - 1, -1, -1, dtype=np.int64)
        self._ledger: list[tuple[npt.NDArray[np.integer], int]] | None = None
        self._n_free_rows = rows

    # ---- node ids -----------------------------------------------------------------------------

    def is_leaf(self, node: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
        return np.asarray(node % self.M >= self.N)

    def children(self, node: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """``(len(node), 2)``: the left and the right child of each node (a leaf: itself, twice)."""
        record = self.nodes[node]
        return np.stack([record["left"], record["right"]], -1).astype(np.int64)

    def set_cut(
        self,
        node: npt.NDArray[np.integer],
        dim: npt.ArrayLike,
        cut: npt.ArrayLike,
        left: npt.ArrayLike,
        right: npt.ArrayLike,
    ) -> None:
        """Make each ``node`` an internal node that cuts at ``point[dim] <= cut``."""
        record = np.empty(len(node), NODE)
        record["dim"], record["cut"], record["left"], record["right"] = dim, cut, left, right
        self.nodes[node] = record

    def _fresh_stacks(self, trees: IntArray) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        """Each tree's unused internal nodes and leaves, popped from the end (lowest id first)."""
        base = (trees * self.M)[:, None]
        nodes = base + np.arange(self.N - 1, -1, -1)
        leaves = base + self.N + np.arange(self.S - 1, -1, -1)
        return nodes.astype(np.int32), leaves.astype(np.int32)

    # ---- forest slots -------------------------------------------------------------------------

    def _allocate(self, capacity: int) -> None:
        """(Re)allocate the per-forest arrays for ``capacity`` forests, keeping the existing ones."""
        cfg, old = self.config, self.capacity
        T, S, M, D = self.T, self.S, self.M, self.D
        k = cfg.shingle_size
        if capacity * T * M >= 2**31:
            raise ValueError(f"a bank holds at most {(2**31 - 1) // (T * M)} forests of this size")

        def grow(name: str, shape: tuple[int, ...], dtype: npt.DTypeLike, fill: object) -> None:
            # zeros come from calloc: the pages are only touched when a forest uses them
            zero = isinstance(fill, (int, float)) and fill == 0
            fresh = np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
            kept = len(getattr(self, name)) if old else 0
            if kept:
                fresh[:kept] = getattr(self, name)
            if not zero:
                fresh[kept:] = fill
            setattr(self, name, fresh)

        G = capacity * T
        grow("nodes", (G * M,), NODE, 0)
        grow("box", (G * M, 2 * D), np.float32, 0.0)
        grow("parent", (G * M,), np.int32, FREE)
        grow("leaf_row", (G * M,), np.int32, 0)
        grow("leaf_mass", (G * M,), np.int32, 0)
        new_trees = np.arange(old * T, G, dtype=np.int64)
        leaves = (new_trees[:, None] * M + self.N + np.arange(S)).reshape(-1)
        self.nodes["left"][leaves] = leaves  # a leaf is its own child: descents stop there by themselves
        self.nodes["right"][leaves] = leaves
        nodes, leaf_stack = self._fresh_stacks(new_trees)
        grow("free_nodes", (G, self.N), np.int32, nodes)
        grow("n_free_nodes", (G,), np.int32, self.N)
        grow("free_leaves", (G, S), np.int32, leaf_stack)
        grow("n_free_leaves", (G,), np.int32, S)
        grow("root", (G,), np.int32, EMPTY)
        grow("tree_mass", (G,), np.int32, 0)
        grow("slot_weight", (G, S), np.float32, 0.0)
        grow("slot_row", (G, S), np.int32, 0)
        grow("slot_leaf", (G, S), np.int32, 0)
        grow("n_slots", (G,), np.int32, 0)
        grow("threshold", (G,), np.float32, np.inf)
        grow("threshold_slot", (G,), np.int32, 0)
        grow("cut_key", (G,), np.uint64, 0)
        grow("sample_key", (G,), np.uint64, 0)
        grow("seen", (capacity,), np.int64, 0)
        grow("shingle", (capacity, k - 1, cfg.dimensions), np.float32, 0.0)
        grow("seed", (capacity,), np.uint64, 0)
        self._free_slots = list(range(capacity - 1, old - 1, -1)) + self._free_slots
        self.capacity = capacity

    def trees(self, slot: int) -> IntArray:
        """Bank tree ids of forest ``slot``."""
        return slot * self.T + np.arange(self.T, dtype=np.int64)

    def reserve(self, forests: int) -> None:
        """Make room for ``forests`` more forests in one allocation (growing copies the bank)."""
        short = forests - len(self._free_slots)
        if short > 0:
            self._allocate(max(self.capacity + short, self.capacity * 2))

    def acquire(self, seed: int) -> int:
        """A fresh, empty forest slot seeded with ``seed``."""
        self.reserve(1)
        slot = self._free_slots.pop()
        self.seed[slot] = np.uint64(seed % 2**64)
        trees = self.trees(slot)
        self.cut_key[trees] = _random.key(self.seed[slot], _random.CUT, trees % self.T)
        self.sample_key[trees] = _random.key(self.seed[slot], _random.SAMPLER, trees % self.T)
        return slot

    def release(self, slot: int) -> None:
        """Empty forest ``slot`` and give its points back to the store."""
        T, S, M = self.T, self.S, self.M
        trees = self.trees(slot)
        ids = slice(slot * T * M, (slot + 1) * T * M)
        live_leaves = (self.parent[ids] != FREE) & self.is_leaf(np.arange(ids.start, ids.stop))
        live_slots = np.arange(S) < self.n_slots[trees, None]
        rows = np.concatenate([self.leaf_row[ids][live_leaves], self.slot_row[trees][live_slots]])
        self.point_ref[rows] = 0
        self.free_rows(np.unique(rows))
        self.parent[ids] = FREE
        self.leaf_mass[ids] = 0
        self.free_nodes[trees], self.free_leaves[trees] = self._fresh_stacks(trees)
        self.n_free_nodes[trees] = self.N
        self.n_free_leaves[trees] = S
        self.root[trees] = EMPTY
        self.tree_mass[trees] = 0
        self.n_slots[trees] = 0
        self.threshold[trees] = np.inf
        self.seen[slot] = 0
        self.shingle[slot] = 0.0
        self._free_slots.append(slot)

    # ---- the point store ----------------------------------------------------------------------

    def store_points(self, values: npt.NDArray[np.float32], seqs: IntArray) -> IntArray:
        """Rows for new points; each starts with one reference, held by the caller."""
        m = len(values)
        if m > self._n_free_rows:
            self._grow_points(m)
        rows = self._free_rows[self._n_free_rows - m : self._n_free_rows][::-1].copy()
        self._n_free_rows -= m
        self.points[rows] = values
        self.point_seq[rows] = seqs
        self.point_ref[rows] = 1
        return rows

    def release_points(self, rows: npt.NDArray[np.integer]) -> None:
        """Drop one reference from each of ``rows`` (repeats count), freeing rows nobody holds."""
        if self._ledger is not None:
            self._ledger.append((rows, -1))
        elif len(rows):
            np.subtract.at(self.point_ref, rows, 1)
            self.free_rows(np.unique(rows[self.point_ref[rows] == 0]))

    def hold_points(self, rows: npt.NDArray[np.integer]) -> None:
        """Add one reference to each of ``rows`` (repeats count)."""
        if self._ledger is not None:
            self._ledger.append((rows, 1))
        else:
            np.add.at(self.point_ref, rows, 1)

    @contextmanager
    def deferred_references(self) -> Iterator[None]:
        """Count point references in one call at the end (rows the caller holds stay alive)."""
        self._ledger = []
        try:
            yield
        finally:
            ledger, self._ledger = self._ledger, None
            if ledger:
                rows = np.concatenate([r for r, _ in ledger])
                signs = np.concatenate([np.full(len(r), sign, np.int32) for r, sign in ledger])
                np.add.at(self.point_ref, rows, signs)
                released = rows[signs < 0]
                self.free_rows(np.unique(released[self.point_ref[released] == 0]))

    def free_rows(self, rows: npt.NDArray[np.integer]) -> None:
        m = len(rows)
        self._free_rows[self._n_free_rows : self._n_free_rows + m] = rows
        self._n_free_rows += m

    def _grow_points(self, needed: int) -> None:
        old = len(self.points)
        new = max(2 * old, old + needed)
        self.points = np.concatenate([self.points, np.zeros((new - old, self.D), np.float32)])
        self.point_seq = np.concatenate([self.point_seq, np.zeros(new - old, np.int64)])
        self.point_ref = np.concatenate([self.point_ref, np.zeros(new - old, np.int32)])
        free = np.empty(new, np.int64)
        free[: self._n_free_rows] = self._free_rows[: self._n_free_rows]
        free[self._n_free_rows : self._n_free_rows + new - old] = np.arange(new - 1, old - 1, -1)
        self._free_rows = free
        self._n_free_rows += new - old

    # ---- unused nodes -------------------------------------------------------------------------

    def pop_nodes(self, trees: IntArray) -> IntArray:
        """A fresh internal node id in each of the distinct ``trees``."""
        self.n_free_nodes[trees] -= 1
        return self.free_nodes[trees, self.n_free_nodes[trees]].astype(np.int64)

    def pop_leaves(self, trees: IntArray) -> IntArray:
        """A fresh leaf id in each of the distinct ``trees``."""
        self.n_free_leaves[trees] -= 1
        return self.free_leaves[trees, self.n_free_leaves[trees]].astype(np.int64)

    def push_nodes(self, trees: IntArray, node: IntArray) -> None:
        """Give internal node ``node[i]`` back to ``trees[i]`` (the trees distinct)."""
        self.parent[node] = FREE
        self.free_nodes[trees, self.n_free_nodes[trees]] = node
        self.n_free_nodes[trees] += 1

    def push_leaves(self, trees: IntArray, leaf: IntArray) -> None:
        """Give leaf ``leaf[i]`` back to ``trees[i]`` (the trees distinct)."""
        self.parent[leaf] = FREE
        self.leaf_mass[leaf] = 0
        self.free_leaves[trees, self.n_free_leaves[trees]] = leaf
        self.n_free_leaves[trees] += 1

    def nbytes(self) -> int:
        """Bytes held by the bank's arrays (what a resident forest costs, times the forests)."""
        return sum(a.nbytes for a in vars(self).values() if isinstance(a, np.ndarray))

    # ---- self-checks --------------------------------------------------------------------------

    def check_invariants(self, *slots: int) -> None:
        """Check every structural fact a correct bank keeps about forests ``slots``.

        Why here: the bank owns its layout, so it is the one to say what a valid tree is (as AWS's
        trees validate themselves); tests call it after every kind of change. Slow (a Python walk
        of every tree); raises :class:`BrokenTreeError` naming the first broken fact.
        """
        refs = np.zeros(len(self.points), np.int64)
        for tree in (t for slot in slots for t in range(slot * self.T, (slot + 1) * self.T)):
            self._check_tree(tree, refs)
        held = self.point_ref > 0
        _require(np.array_equal(refs[held], self.point_ref[held]), "point references match their holders")

    def _check_tree(self, tree: int, refs: npt.NDArray[np.int64]) -> None:
        S, N, M, D = self.S, self.N, self.M, self.D
        samples = np.arange(int(self.n_slots[tree]))
        _require(self.tree_mass[tree] == len(samples), f"tree {tree}: its mass is its sample's size")
        np.add.at(refs, self.slot_row[tree, samples], 1)
        if not len(samples):
            _require(self.root[tree] == EMPTY, f"tree {tree}: an empty sample has no root")
            return
        leaf_mass: dict[int, int] = {}
        stack = [(int(self.root[tree]), -1)]
        while stack:
            node, parent = stack.pop()
            _require(tree * M <= node < (tree + 1) * M, f"node {node}: a tree's nodes are its own")
            _require(self.parent[node] == parent, f"node {node}: its parent is the node above it")
            if self.is_leaf(np.array(node)):
                _require(
                    self.children(np.array([node]))[0].tolist() == [node] * 2, f"leaf {node}: its own child"
                )
                point = self.points[self.leaf_row[node]]
                _require(np.array_equal(self.box[node], np.concatenate([-point, point])), f"leaf {node}: box")
                leaf_mass[node] = 0
                continue
            low, high = self._subtree_box(node)
            _require(
                np.array_equal(-self.box[node, :D], low) and np.array_equal(self.box[node, D:], high),
                f"node {node}: its box bounds exactly the points below it",
            )
            record = self.nodes[node]
            left, right = int(record["left"]), int(record["right"])
            dim, cut = int(record["dim"]), record["cut"]
            _require(
                self._subtree_box(left)[1][dim] <= cut < self._subtree_box(right)[0][dim],
                f"node {node}: its cut separates its children",
            )
            stack += [(left, node), (right, node)]
        for leaf in self.slot_leaf[tree, samples]:
            leaf_mass[int(leaf)] += 1
        for leaf, mass in leaf_mass.items():
            _require(mass == self.leaf_mass[leaf] > 0, f"leaf {leaf}: its mass counts the samples there")
            refs[self.leaf_row[leaf]] += 1
        for sample in samples:
            leaf = self.slot_leaf[tree, sample]
            _require(
                np.array_equal(self.points[self.slot_row[tree, sample]], self.points[self.leaf_row[leaf]]),
                f"tree {tree}: sample {sample} sits at the leaf of its point",
            )
        ids = np.arange(tree * M, (tree + 1) * M)
        unused_nodes = ids[:N][self.parent[ids[:N]] == FREE]
        _require(len(unused_nodes) == N - (len(leaf_mass) - 1), f"tree {tree}: n leaves hang off n-1 nodes")
        free_nodes = self.free_nodes[tree, : self.n_free_nodes[tree]]
        _require(sorted(free_nodes) == unused_nodes.tolist(), f"tree {tree}: the unused nodes are free")
        unused_leaves = ids[N:][self.parent[ids[N:]] == FREE]
        _require(len(unused_leaves) == S - len(leaf_mass), f"tree {tree}: the other leaves are unused")
        free_leaves = self.free_leaves[tree, : self.n_free_leaves[tree]]
        _require(sorted(free_leaves) == unused_leaves.tolist(), f"tree {tree}: the unused leaves are free")
        if len(samples) == S:
            _require(self.threshold[tree] == self.slot_weight[tree].max(), f"tree {tree}: sampler threshold")

    def _subtree_box(self, node: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The bounding box (low, high) of the points under ``node``, from the points themselves."""
        if self.is_leaf(np.array(node)):
            point = self.points[self.leaf_row[node]]
            return point, point
        record = self.nodes[node]
        low0, high0 = self._subtree_box(int(record["left"]))
        low1, high1 = self._subtree_box(int(record["right"]))
        return np.minimum(low0, low1), np.maximum(high0, high1)


def _require(fact: bool | np.bool_, what: str) -> None:
    if not fact:
        raise BrokenTreeError(what)
