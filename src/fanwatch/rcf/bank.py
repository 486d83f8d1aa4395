"""Every tree of every forest in one set of flat numpy arrays, plus the points they share.

Why one bank: a numpy call costs microseconds however little it does, so the trees of one forest,
and the forests of a whole fleet, are stepped in lock-step by single calls over all of them. A tree
is rows of small-integer indices, never Python objects. Tree ``g`` of the bank is tree ``g % T`` of
forest slot ``g // T``; its internal nodes are rows ``g*N .. g*N+N-1`` of :attr:`TreeBank.nodes`
and its leaves rows ``g*S .. g*S+S-1`` of the leaf arrays. A child reference ``c`` is an internal
node when ``c >= 0`` and the leaf ``~c`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import numpy as np
import numpy.typing as npt

from .config import ForestConfig

__all__ = ["EMPTY", "FREE", "TreeBank", "node_dtype"]

#: Root of a tree that holds no point.
EMPTY: Final = 32_767
#: Parent of an unused node or leaf row (the root's parent is -1).
FREE: Final = -2

IntArray = npt.NDArray[np.int64]


def node_dtype(shingled_dimensions: int) -> np.dtype[np.void]:
    """One internal node: its bounding box first, so one gather fetches everything a walk needs."""
    return np.dtype(
        [
            ("box", np.float32, (2, shingled_dimensions)),
            ("val", np.float32),
            ("child", np.int16, (2,)),
            ("parent", np.int16),
            ("dim", np.uint8),
        ],
        align=True,  # unaligned float fields make numpy's fancy indexing many times slower
    )


class TreeBank:
    """Storage for up to :attr:`capacity` forests of one :class:`ForestConfig` (grows on demand)."""

    nodes: npt.NDArray[np.void]
    leaf_row: npt.NDArray[np.int32]
    leaf_mass: npt.NDArray[np.int16]
    leaf_parent: npt.NDArray[np.int16]
    free_nodes: npt.NDArray[np.int16]
    n_free_nodes: npt.NDArray[np.int32]
    free_leaves: npt.NDArray[np.int16]
    n_free_leaves: npt.NDArray[np.int32]
    root: npt.NDArray[np.int32]
    tree_mass: npt.NDArray[np.int32]
    slot_weight: npt.NDArray[np.float32]
    slot_row: npt.NDArray[np.int32]
    slot_leaf: npt.NDArray[np.int16]
    n_slots: npt.NDArray[np.int32]
    threshold: npt.NDArray[np.float32]
    threshold_slot: npt.NDArray[np.int32]
    seen: npt.NDArray[np.int64]
    shingle: npt.NDArray[np.float32]
    seed: npt.NDArray[np.uint64]

    def __init__(self, config: ForestConfig, *, capacity: int = 1) -> None:
        self.config = config
        self.T = config.num_trees
        self.S = config.sample_size
        self.N = config.sample_size - 1
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

    # ---- forest slots -------------------------------------------------------------------------

    def _allocate(self, capacity: int) -> None:
        """(Re)allocate the per-forest arrays for ``capacity`` forests, keeping the existing ones."""
        cfg, old = self.config, self.capacity
        T, S, N, D = self.T, self.S, self.N, self.D
        k = cfg.shingle_size

        def grow(name: str, shape: tuple[int, ...], dtype: npt.DTypeLike, fill: object) -> None:
            fresh = np.empty(shape, dtype)
            fresh[...] = fill
            if old:
                previous = getattr(self, name)
                fresh[: len(previous)] = previous
            setattr(self, name, fresh)

        G = capacity * T
        nodes = np.zeros(G * N, node_dtype(D))
        nodes["parent"] = FREE
        if old:
            nodes[: old * T * N] = self.nodes
        self.nodes = nodes
        grow("leaf_row", (G * S,), np.int32, 0)
        grow("leaf_mass", (G * S,), np.int16, 0)
        grow("leaf_parent", (G * S,), np.int16, FREE)
        # per tree, a stack of unused node and leaf rows (popped from the end: 0 first)
        grow("free_nodes", (G, N), np.int16, np.arange(N - 1, -1, -1))
        grow("n_free_nodes", (G,), np.int32, N)
        grow("free_leaves", (G, S), np.int16, np.arange(S - 1, -1, -1))
        grow("n_free_leaves", (G,), np.int32, S)
        grow("root", (G,), np.int32, EMPTY)
        grow("tree_mass", (G,), np.int32, 0)
        grow("slot_weight", (G, S), np.float32, 0.0)
        grow("slot_row", (G, S), np.int32, 0)
        grow("slot_leaf", (G, S), np.int16, 0)
        grow("n_slots", (G,), np.int32, 0)
        grow("threshold", (G,), np.float32, np.inf)
        grow("threshold_slot", (G,), np.int32, 0)
        grow("seen", (capacity,), np.int64, 0)
        grow("shingle", (capacity, k - 1, cfg.dimensions), np.float32, 0.0)
        grow("seed", (capacity,), np.uint64, 0)
        self._free_slots = list(range(capacity - 1, old - 1, -1)) + self._free_slots
        self.capacity = capacity

    def acquire(self, seed: int) -> int:
        """A fresh, empty forest slot seeded with ``seed``."""
        if not self._free_slots:
            self._allocate(self.capacity * 2)
        slot = self._free_slots.pop()
        self.seed[slot] = np.uint64(seed % 2**64)
        return slot

    def release(self, slot: int) -> None:
        """Empty forest ``slot`` and give its points back to the store."""
        T, S, N = self.T, self.S, self.N
        trees = slice(slot * T, (slot + 1) * T)
        leaves = slice(slot * T * S, (slot + 1) * T * S)
        live_leaves = self.leaf_parent[leaves] != FREE
        live_slots = np.arange(S) < self.n_slots[trees, None]
        rows = np.concatenate([self.leaf_row[leaves][live_leaves], self.slot_row[trees][live_slots]])
        self.point_ref[rows] = 0
        self.free_rows(np.unique(rows))
        self.nodes[slot * T * N : (slot + 1) * T * N] = np.zeros(1, self.nodes.dtype)
        self.nodes["parent"][slot * T * N : (slot + 1) * T * N] = FREE
        self.leaf_parent[leaves] = FREE
        self.leaf_mass[leaves] = 0
        self.free_nodes[trees] = np.arange(N - 1, -1, -1)
        self.n_free_nodes[trees] = N
        self.free_leaves[trees] = np.arange(S - 1, -1, -1)
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

    def pop_nodes(self, g: IntArray) -> IntArray:
        """A fresh internal node row in each of the distinct trees ``g``."""
        self.n_free_nodes[g] -= 1
        return self.free_nodes[g, self.n_free_nodes[g]].astype(np.int64)

    def pop_leaves(self, g: IntArray) -> IntArray:
        """A fresh leaf row in each of the distinct trees ``g``."""
        self.n_free_leaves[g] -= 1
        return self.free_leaves[g, self.n_free_leaves[g]].astype(np.int64)

    def push_nodes(self, g: IntArray, node: IntArray) -> None:
        self.nodes["parent"][g * self.N + node] = FREE
        self.free_nodes[g, self.n_free_nodes[g]] = node
        self.n_free_nodes[g] += 1

    def push_leaves(self, g: IntArray, leaf: IntArray) -> None:
        self.leaf_parent[g * self.S + leaf] = FREE
        self.free_leaves[g, self.n_free_leaves[g]] = leaf
        self.n_free_leaves[g] += 1

    @property
    def points_in_use(self) -> int:
        return len(self.points) - self._n_free_rows

    def nbytes(self) -> int:
        """Bytes held by the bank's arrays (what a resident forest costs, times the forests)."""
        return sum(a.nbytes for a in vars(self).values() if isinstance(a, np.ndarray))
