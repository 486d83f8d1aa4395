"""Every tree of every forest in one set of flat numpy arrays, plus the points they share.

Why one bank: a numpy call costs microseconds however little it does, so the trees of one forest,
and the forests of a whole fleet, are stepped in lock-step by single calls over all of them. A tree
is rows of integer node ids, never Python objects. Bank tree ``t`` is tree ``t % T`` of forest
slot ``t // T``; it owns the node ids ``t*M .. t*M+M-1`` (``M = 2*S - 1``): the first ``N = S - 1``
are its internal nodes, the other ``S`` its leaves. One id space for both means a descent needs no
test for "is this a leaf": a leaf's children are the leaf itself.

Why the arrays are narrow: a forest ready to score is what a fleet keeps many of (2.3 MB at 100
trees x 256, 3.6 MB before), so it holds only what a score or an update reads. Only internal nodes
have a bounding box (a leaf's box is its point in the store); leaf data is indexed by leaf, not by
node; parents, free lists and the sampler's leaves are *local* ids (``id - t*M``, uint16). The
node records keep global int32 children: local ones would save another 0.36 MB a forest, but the
addition they need at every level of a descent cost 15 % of the speed (measured).
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

from fanwatch.errors import FanwatchError

from . import _random
from .config import ForestConfig

__all__ = ["EMPTY", "NODE", "BrokenTreeError", "TreeBank"]

#: Root of a tree that holds no point.
EMPTY: Final = -1
#: The stored (local) parent of a root, and of an unused node.
_NO_PARENT: Final = 0xFFFF
_FREE: Final = 0xFFFE
#: One record of :attr:`TreeBank.nodes` (16 bytes): the cut (``point[dim] <= cut`` goes ``left``,
#: else ``right``) and both children (ids). One record is all a descent step reads, in one gather.
NODE: Final = np.dtype([("cut", "<f4"), ("left", "<i4"), ("right", "<i4"), ("dim", "u1")], align=True)

IntArray = npt.NDArray[np.int64]
_Row = TypeVar("_Row", bound=np.generic)


class BrokenTreeError(FanwatchError, AssertionError):
    """:meth:`TreeBank.check_invariants` found a fact a correct bank always keeps broken."""


class TreeBank:
    """Storage for up to :attr:`capacity` forests of one :class:`ForestConfig` (grows on demand).

    Per node id: ``nodes`` (see :data:`NODE`) and ``parent`` (a local id). Per internal node
    (``t*N + local``): ``box``, its bounding box as ``-low`` then ``high``, float32, so that the
    union of boxes, or of a box and a point, is one ``np.maximum``. Per leaf (``t*S + local - N``):
    ``leaf_row`` (its point in the store) and ``leaf_mass`` (copies of it).
    Per tree and sampler slot: ``slot_weight``, ``slot_row`` (the sampled point) and ``slot_leaf``
    (the local id of the leaf it sits at).
    """

    nodes: npt.NDArray[np.void]
    box: npt.NDArray[np.float32]
    parent: npt.NDArray[np.uint16]
    leaf_row: npt.NDArray[np.int32]
    leaf_mass: npt.NDArray[np.uint16]
    free_nodes: npt.NDArray[np.uint16]
    n_free_nodes: npt.NDArray[np.int32]
    free_leaves: npt.NDArray[np.uint16]
    n_free_leaves: npt.NDArray[np.int32]
    root: npt.NDArray[np.int32]
    tree_mass: npt.NDArray[np.int32]
    slot_weight: npt.NDArray[np.float32]
    slot_row: npt.NDArray[np.int32]
    slot_leaf: npt.NDArray[np.uint16]
    n_slots: npt.NDArray[np.int32]
    threshold: npt.NDArray[np.float32]
    threshold_slot: npt.NDArray[np.int32]
    cut_key: npt.NDArray[np.uint64]
    sample_key: npt.NDArray[np.uint64]
    seen: npt.NDArray[np.int64]
    shingle: npt.NDArray[np.float32]
    seed: npt.NDArray[np.uint64]
    _cleared: npt.NDArray[np.bool_]  # per slot: made empty once (see _clear)

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
        self._free_rows = np.arange(rows - 1, -1, -1, dtype=np.int32)
        self._ledger: list[tuple[npt.NDArray[np.integer], int]] | None = None
        self._n_free_rows = rows

    # ---- node ids -----------------------------------------------------------------------------
    # Every accessor takes the bank tree of each node (``trees``, broadcast against the nodes):
    # callers always know it, and it turns each id into an array index with one subtraction.

    def is_leaf(self, node: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
        return np.asarray(node % self.M >= self.N)

    def tree_of(self, node: npt.NDArray[np.integer]) -> IntArray:
        """The bank tree each node id belongs to (for callers that do not know it)."""
        return np.asarray(node, np.int64) // self.M

    def children(self, node: npt.NDArray[np.integer], trees: npt.NDArray[np.integer]) -> IntArray:
        """``(*node.shape, 2)``: the left and the right child of each node (a leaf: itself, twice)."""
        record = self.nodes.take(node)
        return np.stack([record["left"], record["right"]], -1).astype(np.int64)

    def set_cut(
        self,
        node: IntArray,
        trees: IntArray,
        dim: npt.ArrayLike,
        cut: npt.ArrayLike,
        left: IntArray,
        right: IntArray,
    ) -> None:
        """Make each ``node`` an internal node that cuts at ``point[dim] <= cut`` (children as ids)."""
        record = np.empty(len(node), NODE)
        record["dim"], record["cut"], record["left"], record["right"] = dim, cut, left, right
        self.nodes[node] = record

    def set_child(self, node: IntArray, trees: IntArray, old: IntArray, new: IntArray) -> None:
        """In each ``node``, point to ``new`` where it pointed to ``old``."""
        was_right = self.nodes["right"][node] == old
        self.nodes["right"][node[was_right]] = new[was_right]
        self.nodes["left"][node[~was_right]] = new[~was_right]

    def parent_of(self, node: IntArray, trees: IntArray) -> IntArray:
        """Each node's parent (-1 for a root)."""
        local = self.parent[node].astype(np.int64)
        return np.where(local == _NO_PARENT, -1, trees * self.M + local)

    def set_parent(self, node: IntArray, trees: IntArray, parent: npt.ArrayLike) -> None:
        """Set each node's parent (-1: the node is a root)."""
        parent = np.asarray(parent, np.int64)
        self.parent[node] = np.where(parent < 0, _NO_PARENT, parent - trees * self.M)

    def in_use(self, node: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
        """Whether each node is part of its tree."""
        return np.asarray(self.parent[node] != _FREE)

    # ---- boxes and leaves ---------------------------------------------------------------------

    def inner_boxes(
        self, node: npt.NDArray[np.integer], trees: npt.NDArray[np.integer]
    ) -> npt.NDArray[np.float32]:
        """Boxes of internal ``node`` with the box coordinates first: ``(2D, *node.shape)``.

        One gather fetches each node's box (rows of the bank); the transpose makes every later
        reduction over the dimensions a few whole-array operations instead of one per box. A leaf
        among ``node`` gets some box of the bank: callers mask such entries out.
        """
        index = (node - np.asarray(trees, np.int64) * self.S).reshape(-1)
        rows = self.box.take(index, axis=0, mode="clip")
        return np.ascontiguousarray(rows.T).reshape(2 * self.D, *node.shape)

    def _leaf_index(self, leaf: npt.NDArray[np.integer], trees: npt.NDArray[np.integer]) -> IntArray:
        """Where leaves' data are in :attr:`leaf_row` and :attr:`leaf_mass` (``t*S + local - N``)."""
        return np.asarray(leaf - np.asarray(trees, np.int64) * self.N - self.N, np.int64)

    def leaf_points(
        self, leaf: npt.NDArray[np.integer], trees: npt.NDArray[np.integer]
    ) -> npt.NDArray[np.float32]:
        """The point of each leaf, ``(*leaf.shape, D)``."""
        return self.points.take(self.leaf_row.take(self._leaf_index(leaf, trees)), axis=0)

    def leaves(
        self, leaf: npt.NDArray[np.integer], trees: npt.NDArray[np.integer]
    ) -> tuple[npt.NDArray[np.float32], IntArray]:
        """The point and the mass of each leaf (one index computation for both)."""
        index = self._leaf_index(leaf, trees)
        return self.points.take(self.leaf_row.take(index), axis=0), self.leaf_mass.take(index).astype(
            np.int64
        )

    def boxes(self, node: npt.NDArray[np.integer], trees: npt.NDArray[np.integer]) -> npt.NDArray[np.float32]:
        """:meth:`inner_boxes` of any nodes: a leaf's box is its point."""
        trees = np.asarray(trees, np.int64)
        local = node - trees * self.M
        rows = self.box.take((local + trees * self.N).reshape(-1), axis=0, mode="clip")
        leaf = (local >= self.N).reshape(-1)
        if leaf.any():
            point = self.points.take(
                self.leaf_row.take((local + trees * self.S - self.N).reshape(-1)[leaf]), axis=0
            )
            rows[leaf] = np.concatenate([-point, point], 1)
        return np.ascontiguousarray(rows.T).reshape(2 * self.D, *np.shape(node))

    def set_boxes(self, node: IntArray, trees: IntArray, rows: npt.NDArray[np.float32]) -> None:
        """Set the boxes of internal ``node`` (rows of ``-low`` then ``high``)."""
        self.box[node - trees * self.S] = rows

    def set_leaves(self, leaf: IntArray, trees: IntArray, row: npt.ArrayLike, mass: npt.ArrayLike) -> None:
        index = self._leaf_index(leaf, trees)
        self.leaf_row[index] = row
        self.leaf_mass[index] = mass

    def mass(self, leaf: npt.NDArray[np.integer], trees: npt.NDArray[np.integer]) -> IntArray:
        return self.leaf_mass[self._leaf_index(leaf, trees)].astype(np.int64)

    def add_mass(self, leaf: IntArray, trees: IntArray, delta: int) -> None:
        """Add ``delta`` copies to each of the distinct ``leaf``."""
        index = self._leaf_index(leaf, trees)
        self.leaf_mass[index] = self.leaf_mass[index].astype(np.int64) + delta

    def rows_of(self, leaf: IntArray, trees: IntArray) -> npt.NDArray[np.int32]:
        """The point store row of each leaf's point."""
        return self.leaf_row[self._leaf_index(leaf, trees)]

    def sample_leaves(self, trees: IntArray, slots: IntArray) -> IntArray:
        """The leaf (id) each sampler slot's point sits at."""
        return trees * self.M + self.slot_leaf[trees, slots]

    def set_sample_leaves(self, trees: IntArray, slots: IntArray, leaf: IntArray) -> None:
        self.slot_leaf[trees, slots] = leaf - trees * self.M

    def _fresh_stacks(self, trees: IntArray) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
        """Each tree's unused internal nodes and leaves (local ids), popped from the end (lowest first)."""
        nodes = np.broadcast_to(np.arange(self.N - 1, -1, -1, dtype=np.uint16), (len(trees), self.N))
        leaves = np.broadcast_to(
            self.N + np.arange(self.S - 1, -1, -1, dtype=np.uint16), (len(trees), self.S)
        )
        return nodes, leaves

    # ---- forest slots -------------------------------------------------------------------------

    def _allocate(self, capacity: int) -> None:
        """(Re)allocate the per-forest arrays for ``capacity`` forests, keeping the existing ones."""
        cfg, old = self.config, self.capacity
        T, S, N, M, D = self.T, self.S, self.N, self.M, self.D
        k = cfg.shingle_size
        if capacity * T * M >= 2**31:
            raise ValueError(f"a bank holds at most {(2**31 - 1) // (T * M)} forests of this size")

        # slots past the last one a forest ever took hold only zeros: copying them would touch
        # their pages
        kept = int(np.flatnonzero(self._cleared).max(initial=-1)) + 1 if old else 0

        def grow(name: str, shape: tuple[int, ...], dtype: npt.DTypeLike) -> None:
            # zeros whose pages are only touched when a forest uses them; a slot's other initial
            # values are written when it is first acquired (_clear)
            fresh = _zeros(shape, dtype)
            if kept:
                current = getattr(self, name)
                rows = len(current) // old * kept  # every array has a row count per slot
                fresh[:rows] = current[:rows]
            setattr(self, name, fresh)

        G = capacity * T
        grow("nodes", (G * M,), NODE)
        grow("box", (G * N, 2 * D), np.float32)
        grow("parent", (G * M,), np.uint16)
        grow("leaf_row", (G * S,), np.int32)
        grow("leaf_mass", (G * S,), np.uint16)
        grow("free_nodes", (G, N), np.uint16)
        grow("n_free_nodes", (G,), np.int32)
        grow("free_leaves", (G, S), np.uint16)
        grow("n_free_leaves", (G,), np.int32)
        grow("root", (G,), np.int32)
        grow("tree_mass", (G,), np.int32)
        grow("slot_weight", (G, S), np.float32)
        grow("slot_row", (G, S), np.int32)
        grow("slot_leaf", (G, S), np.uint16)
        grow("n_slots", (G,), np.int32)
        grow("threshold", (G,), np.float32)
        grow("threshold_slot", (G,), np.int32)
        grow("cut_key", (G,), np.uint64)
        grow("sample_key", (G,), np.uint64)
        grow("seen", (capacity,), np.int64)
        grow("shingle", (capacity, k - 1, cfg.dimensions), np.float32)
        grow("seed", (capacity,), np.uint64)
        grow("_cleared", (capacity,), np.bool_)
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
        if not self._cleared[slot]:
            self._clear(slot)
        self.seed[slot] = np.uint64(seed % 2**64)
        trees = self.trees(slot)
        self.cut_key[trees] = _random.key(self.seed[slot], _random.CUT, trees % self.T)
        self.sample_key[trees] = _random.key(self.seed[slot], _random.SAMPLER, trees % self.T)
        return slot

    def release(self, slot: int) -> None:
        """Empty forest ``slot`` and give its points back to the store."""
        T, S = self.T, self.S
        trees = self.trees(slot)
        leaves = slice(slot * T * S, (slot + 1) * T * S)
        live_leaves = self.leaf_mass[leaves] > 0
        live_slots = np.arange(S) < self.n_slots[trees, None]
        rows = np.concatenate([self.leaf_row[leaves][live_leaves], self.slot_row[trees][live_slots]])
        # each distinct row once, without a sort: of the writes to one row, exactly one survives
        tag = np.arange(len(rows), dtype=np.int32)
        self.point_ref[rows] = tag
        distinct = rows[self.point_ref[rows] == tag]
        self.point_ref[rows] = 0
        self.free_rows(distinct)
        self._clear(slot)
        self._free_slots.append(slot)

    def _clear(self, slot: int) -> None:
        """Make forest ``slot`` empty: what a release leaves, and what a never used slot gets on
        its first acquire (the bank allocates zeros, so that growing it touches no page)."""
        T, S, M = self.T, self.S, self.M
        trees = self.trees(slot)
        if not self._cleared[slot]:  # a leaf is its own child: descents stop there by themselves
            leaves = (trees[:, None] * M + self.N + np.arange(S)).reshape(-1)
            self.nodes["left"][leaves] = leaves
            self.nodes["right"][leaves] = leaves
            self._cleared[slot] = True
        self.parent[slot * T * M : (slot + 1) * T * M] = _FREE
        self.leaf_mass[slot * T * S : (slot + 1) * T * S] = 0
        self.free_nodes[trees], self.free_leaves[trees] = self._fresh_stacks(trees)
        self.n_free_nodes[trees] = self.N
        self.n_free_leaves[trees] = S
        self.root[trees] = EMPTY
        self.tree_mass[trees] = 0
        self.n_slots[trees] = 0
        self.threshold[trees] = np.inf
        self.seen[slot] = 0
        self.shingle[slot] = 0.0

    # ---- the point store ----------------------------------------------------------------------

    def store_points(self, values: npt.NDArray[np.float32], seqs: IntArray) -> IntArray:
        """Rows for new points; each starts with one reference, held by the caller."""
        m = len(values)
        if m > self._n_free_rows:
            self._grow_points(m)
        rows = self._free_rows[self._n_free_rows - m : self._n_free_rows][::-1].astype(np.int64)
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

        def grown(kept: npt.NDArray[_Row]) -> npt.NDArray[_Row]:
            # calloc'ed zeros: the rows past the used ones are not touched until they are used
            fresh = np.zeros((new, *kept.shape[1:]), kept.dtype)
            fresh[:old] = kept
            return fresh

        self.points, self.point_seq, self.point_ref = (
            grown(self.points),
            grown(self.point_seq),
            grown(self.point_ref),
        )
        free = np.empty(new, np.int32)
        free[: self._n_free_rows] = self._free_rows[: self._n_free_rows]
        free[self._n_free_rows : self._n_free_rows + new - old] = np.arange(new - 1, old - 1, -1)
        self._free_rows = free
        self._n_free_rows += new - old

    # ---- unused nodes -------------------------------------------------------------------------

    def pop_nodes(self, trees: IntArray) -> IntArray:
        """A fresh internal node id in each of the distinct ``trees``."""
        self.n_free_nodes[trees] -= 1
        return trees * self.M + self.free_nodes[trees, self.n_free_nodes[trees]]

    def pop_leaves(self, trees: IntArray) -> IntArray:
        """A fresh leaf id in each of the distinct ``trees``."""
        self.n_free_leaves[trees] -= 1
        return trees * self.M + self.free_leaves[trees, self.n_free_leaves[trees]]

    def push_nodes(self, trees: IntArray, node: IntArray) -> None:
        """Give internal node ``node[i]`` back to ``trees[i]`` (the trees distinct)."""
        self.parent[node] = _FREE
        self.free_nodes[trees, self.n_free_nodes[trees]] = node - trees * self.M
        self.n_free_nodes[trees] += 1

    def push_leaves(self, trees: IntArray, leaf: IntArray) -> None:
        """Give leaf ``leaf[i]`` back to ``trees[i]`` (the trees distinct)."""
        self.parent[leaf] = _FREE
        self.leaf_mass[self._leaf_index(leaf, trees)] = 0
        self.free_leaves[trees, self.n_free_leaves[trees]] = leaf - trees * self.M
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
        owner = np.array([tree])
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
            at = np.array([node])
            _require(tree * M <= node < (tree + 1) * M, f"node {node}: a tree's nodes are its own")
            _require(self.parent_of(at, owner)[0] == parent, f"node {node}: its parent is the node above it")
            if self.is_leaf(at)[0]:
                _require(self.children(at, owner)[0].tolist() == [node] * 2, f"leaf {node}: its own child")
                _require(
                    np.array_equal(self.boxes(at, owner)[D:, 0], self.leaf_points(at, owner)[0]),
                    f"leaf {node}: box",
                )
                leaf_mass[node] = 0
                continue
            low, high = self._subtree_box(node, owner)
            _require(
                np.array_equal(-self.inner_boxes(at, owner)[:D, 0], low)
                and np.array_equal(self.inner_boxes(at, owner)[D:, 0], high),
                f"node {node}: its box bounds exactly the points below it",
            )
            left, right = (int(child) for child in self.children(at, owner)[0])
            dim, cut = int(self.nodes["dim"][node]), self.nodes["cut"][node]
            _require(
                self._subtree_box(left, owner)[1][dim] <= cut < self._subtree_box(right, owner)[0][dim],
                f"node {node}: its cut separates its children",
            )
            stack += [(left, node), (right, node)]
        for leaf in self.sample_leaves(np.full(len(samples), tree), samples):
            leaf_mass[int(leaf)] += 1
        for leaf, mass in leaf_mass.items():
            _require(
                mass == self.mass(np.array([leaf]), owner)[0] > 0,
                f"leaf {leaf}: its mass counts the samples there",
            )
            refs[self.rows_of(np.array([leaf]), owner)[0]] += 1
        for sample in samples:
            leaf = self.sample_leaves(np.array([tree]), np.array([sample]))
            _require(
                np.array_equal(self.points[self.slot_row[tree, sample]], self.leaf_points(leaf, owner)[0]),
                f"tree {tree}: sample {sample} sits at the leaf of its point",
            )
        ids = np.arange(tree * M, (tree + 1) * M)
        unused_nodes = ids[:N][~self.in_use(ids[:N])]
        _require(len(unused_nodes) == N - (len(leaf_mass) - 1), f"tree {tree}: n leaves hang off n-1 nodes")
        free_nodes = tree * M + self.free_nodes[tree, : self.n_free_nodes[tree]].astype(np.int64)
        _require(sorted(free_nodes) == unused_nodes.tolist(), f"tree {tree}: the unused nodes are free")
        unused_leaves = ids[N:][~self.in_use(ids[N:])]
        _require(len(unused_leaves) == S - len(leaf_mass), f"tree {tree}: the other leaves are unused")
        free_leaves = tree * M + self.free_leaves[tree, : self.n_free_leaves[tree]].astype(np.int64)
        _require(sorted(free_leaves) == unused_leaves.tolist(), f"tree {tree}: the unused leaves are free")
        _require((self.mass(unused_leaves, owner) == 0).all(), f"tree {tree}: unused leaves hold nothing")
        if len(samples) == S:
            _require(self.threshold[tree] == self.slot_weight[tree].max(), f"tree {tree}: sampler threshold")

    def _subtree_box(
        self, node: int, owner: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The bounding box (low, high) of the points under ``node``, from the points themselves."""
        at = np.array([node])
        if self.is_leaf(at)[0]:
            point = self.leaf_points(at, owner)[0]
            return point, point
        left, right = (int(child) for child in self.children(at, owner)[0])
        low0, high0 = self._subtree_box(left, owner)
        low1, high1 = self._subtree_box(right, owner)
        return np.minimum(low0, low1), np.maximum(high0, high1)


#: From this size on, numpy asks for transparent huge pages (and so would the kernel, unasked).
_HUGE_PAGES_FROM: Final = 4 << 20


def _zeros(shape: tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """``np.zeros``, but a large array is mapped in small pages.

    Why: numpy asks for transparent huge pages for arrays of 4 MB and more, and where the kernel
    compacts memory to find them (THP ``madvise``, as on the project's machine), faulting in a
    restored forest took 12.8-15.4 ms of CPU a model instead of 8.5-9.6 (500 forests loaded into
    a new bank), and the fleet's scoring afterwards was no slower (medians of six alternating
    pairs 5,836 against 5,800 points/s): the descents' gathers gained nothing measurable from
    huge pages.
    """
    count = math.prod(shape)
    size = count * np.dtype(dtype).itemsize
    if size < _HUGE_PAGES_FROM or not hasattr(mmap, "MADV_NOHUGEPAGE"):
        return np.zeros(shape, dtype)
    memory = mmap.mmap(-1, size)  # anonymous: zeros, each page mapped on its first touch
    memory.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(memory, dtype, count).reshape(shape)


def _require(fact: bool | np.bool_, what: str) -> None:
    if not fact:
        raise BrokenTreeError(what)
