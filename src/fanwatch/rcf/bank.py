"""Every tree of every forest in one set of flat numpy arrays, plus the points they share.

Why one bank: a numpy call costs microseconds however little it does, so the trees of one forest,
and the forests of a whole fleet, are stepped in lock-step by single calls over all of them. A tree
is rows of integer node ids, never Python objects. Tree ``g`` of the bank is tree ``g % T`` of
forest slot ``g // T``; it owns the node ids ``g*M .. g*M+M-1`` (``M = 2*S - 1``): the first
``N = S - 1`` are its internal nodes, the other ``S`` its leaves. One id space for both means a
descent needs no test for "is this a leaf": a leaf's children are the leaf itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import numpy as np
import numpy.typing as npt

from . import _random
from .config import ForestConfig

__all__ = ["CUT", "DIM", "EMPTY", "FREE", "LEFT", "RIGHT", "TreeBank"]

#: Root of a tree that holds no point.
EMPTY: Final = -1
#: Parent of an unused node (the root's parent is -1).
FREE: Final = -2
#: Columns of :attr:`TreeBank.walk`: the cut's dimension, the cut's float32 value (its bits), the
#: child where ``point[dim] <= value`` and the other one. One row is all a descent step reads.
DIM, CUT, LEFT, RIGHT = 0, 1, 2, 3

IntArray = npt.NDArray[np.int64]


class TreeBank:
    """Storage for up to :attr:`capacity` forests of one :class:`ForestConfig` (grows on demand).

    Per node id: ``walk`` (see :data:`DIM`), ``box`` (the bounding box as ``-low`` then ``high``,
    float32, so that the union of boxes, or of a box and a point, is one ``np.maximum``; a leaf's
    box is its point), ``parent``, and for leaves ``leaf_row`` (its point in the store) and
    ``leaf_mass`` (copies of the point).
    """

    walk: npt.NDArray[np.int32]
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

    def cut_values(self, node: npt.NDArray[np.integer]) -> npt.NDArray[np.float32]:
        return self.walk[node, CUT].view(np.float32)

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
        grow("walk", (G * M, 4), np.int32, 0)
        grow("box", (G * M, 2 * D), np.float32, 0.0)
        grow("parent", (G * M,), np.int32, FREE)
        grow("leaf_row", (G * M,), np.int32, 0)
        grow("leaf_mass", (G * M,), np.int32, 0)
        new_trees = np.arange(old * T, G, dtype=np.int64)
        leaves = (new_trees[:, None] * M + self.N + np.arange(S)).reshape(-1)
        self.walk[leaves, LEFT] = leaves  # a leaf is its own child: descents stop there by themselves
        self.walk[leaves, RIGHT] = leaves
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

    def pop_nodes(self, g: IntArray) -> IntArray:
        """A fresh internal node id in each of the distinct trees ``g``."""
        self.n_free_nodes[g] -= 1
        return self.free_nodes[g, self.n_free_nodes[g]].astype(np.int64)

    def pop_leaves(self, g: IntArray) -> IntArray:
        """A fresh leaf id in each of the distinct trees ``g``."""
        self.n_free_leaves[g] -= 1
        return self.free_leaves[g, self.n_free_leaves[g]].astype(np.int64)

    def push_nodes(self, g: IntArray, node: IntArray) -> None:
        self.parent[node] = FREE
        self.free_nodes[g, self.n_free_nodes[g]] = node
        self.n_free_nodes[g] += 1

    def push_leaves(self, g: IntArray, leaf: IntArray) -> None:
        self.parent[leaf] = FREE
        self.leaf_mass[leaf] = 0
        self.free_leaves[g, self.n_free_leaves[g]] = leaf
        self.n_free_leaves[g] += 1

    @property
    def points_in_use(self) -> int:
        return len(self.points) - self._n_free_rows

    def nbytes(self) -> int:
        """Bytes held by the bank's arrays (what a resident forest costs, times the forests)."""
        return sum(a.nbytes for a in vars(self).values() if isinstance(a, np.ndarray))
