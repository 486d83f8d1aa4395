"""Vectorized random cut tree operations on a :class:`~fanwatch.rcf.bank.TreeBank`.

Each function takes parallel arrays: entry ``i`` works on bank tree ``trees[i]`` with the shingled
point ``points[i]``. Entries of one call that modify trees (:func:`insert`, :func:`delete`) must
name distinct trees; scoring entries may repeat trees freely. The formulas are AWS's (see
:mod:`fanwatch.rcf.scoring`).

Why it is fast: a descent step is five numpy calls over all walkers (one gather fetches a node's
cut and both children, leaves loop onto themselves), and everything that needs bounding boxes
only looks at the bottom of a path. Boxes grow towards the root, so once a point lies inside a
node's box it lies inside every ancestor's: there the separation probability is exactly 0, no
random cut can separate the point, and removing a point that is not on a box's boundary changes no
box above. AWS's score visitor stops at the same place. The bottom :data:`SEGMENT` levels are
taken first, for every walker at once; only the few walkers that are still outside a box there
(anomalies, mostly) are taken again over their whole path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from . import _random
from .bank import EMPTY, TreeBank
from .scoring import damp, normalizer, score_seen, score_unseen

__all__ = [
    "SEGMENT",
    "Arrivals",
    "Descent",
    "Removal",
    "Walk",
    "attribute",
    "delete",
    "descend",
    "find_leaves",
    "insert",
    "random_cut",
    "score",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
F32Array = npt.NDArray[np.float32]
_A = TypeVar("_A", bound=npt.NDArray[np.generic])

#: Levels above the leaf looked at first. On fan streams half of the walkers are inside a box
#: within 2 levels and 90 % within 6; the rest are looked at again over their whole path.
SEGMENT: Final = 4
#: Up to this many (walker, level) pairs, whole paths are looked at in one pass: for few walkers
#: the numpy calls of a second pass cost more than the levels it would save.
WHOLE_PATHS: Final = 4096
#: A descent drops the walkers that stopped once fewer than one in this many still move.
_COMPACT: Final = 2
#: "No row": a walk's row index past any walk.
_NO_ROW: Final = 1 << 30


@dataclass
class Walk:
    """Where each walker's descent went: ``nodes[level, walker]``; a leaf repeats down to the last row."""

    nodes: npt.NDArray[np.int32]
    depth: IntArray

    @property
    def leaf(self) -> npt.NDArray[np.int32]:
        return self.nodes[-1]

    def joined(self, other: Walk) -> Walk:
        """Both walks side by side (the shorter one padded with its leaves)."""
        rows = max(len(self.nodes), len(other.nodes))
        pad = [
            np.concatenate([w.nodes, np.repeat(w.nodes[-1:], rows - len(w.nodes), 0)]) for w in (self, other)
        ]
        return Walk(np.concatenate(pad, 1), np.concatenate([self.depth, other.depth]))


def descend(bank: TreeBank, trees: IntArray, points: F32Array, start: IntArray | None = None) -> Walk:
    """Follow the cuts from each tree's root (or node ``start``) down to a leaf; trees must not
    be empty.

    ``point[dim] <= cut`` goes left. All walkers step together; a walker at a leaf stays there,
    so the loop ends when a step moves nobody (tested every other step: a spare step is cheaper
    than a test). Once most walkers have stopped, only the others step on: leaves are at many
    depths, and a descent costs a gather per walker and level.
    """
    n, D = len(trees), bank.D
    node = bank.root[trees] if start is None else start.astype(np.int32)
    coordinates = np.ascontiguousarray(points, np.float32).reshape(-1)
    offset = np.arange(0, n * D, D, dtype=np.int32)
    records = bank.nodes
    rows = [node]
    columns: list[IntArray | None] = [None]  # each row's walkers (None: all)
    active: IntArray | None = None
    for level in range(bank.M + 1):
        step = records.take(node)
        right = coordinates.take(step["dim"] + offset) > step["cut"]
        below = np.where(right, step["right"], step["left"])
        if level % 2:
            moved = below != node
            moving = np.count_nonzero(moved)
            if not moving:
                break
            if moving * _COMPACT < len(node):
                keep = np.flatnonzero(moved)
                active = keep if active is None else active[keep]
                below, offset = below[keep], offset[keep]
        rows.append(below)
        columns.append(active)
        node = below
    else:
        raise ValueError("a tree is cyclic (corrupt checkpoint?)")
    if active is None:
        nodes = np.stack(rows)
    else:
        nodes = np.empty((len(rows), n), np.int32)
        for i, (row, cols) in enumerate(zip(rows, columns, strict=True)):
            if cols is None:
                nodes[i] = row
            else:
                nodes[i] = nodes[i - 1]
                nodes[i, cols] = row
    return Walk(nodes, np.count_nonzero(nodes[1:] != nodes[:-1], axis=0).astype(np.int64))


def find_leaves(bank: TreeBank, trees: IntArray, points: F32Array) -> IntArray:
    """The leaf each point reaches in its tree (trees must not be empty): a :func:`descend` that
    keeps no path, for many points at once (a restore routes every sampled point)."""
    coordinates = np.ascontiguousarray(points, np.float32).reshape(-1)
    node = bank.root[trees].astype(np.int64)
    offset = np.arange(0, len(trees) * bank.D, bank.D, dtype=np.int64)
    leaf = np.empty(len(trees), np.int64)
    active = np.arange(len(trees))
    if not len(active):
        return leaf
    for _ in range(bank.M + 1):
        step = bank.nodes.take(node)
        right = coordinates.take(step["dim"] + offset) > step["cut"]
        below = np.where(right, step["right"], step["left"])
        stopped = below == node
        if stopped.any():
            leaf[active[stopped]] = node[stopped]
            moving = ~stopped
            active, below, offset = active[moving], below[moving], offset[moving]
            if not len(active):
                return leaf
        node = below
    raise ValueError("a tree is cyclic (corrupt checkpoint?)")


def _ancestors(
    walk: Walk, walkers: IntArray, depth: IntArray, levels: int, skip: IntArray | None = None
) -> tuple[npt.NDArray[np.int32], IntArray, npt.NDArray[np.bool_]]:
    """The ``levels`` ancestors of each walker's leaf, nearest first (rows), walkers in columns:
    node ids, levels and whether the level exists.

    ``skip`` is a row of each walker's recorded walk that is no longer on its path (the parent a
    delete spliced out): the rows below it have moved up one level.
    """
    level = depth - 1 - np.arange(levels)[:, None]
    valid = level >= 0
    row = np.maximum(level, 0)
    if skip is not None:
        row += row >= skip
    return walk.nodes.reshape(-1).take(row * walk.nodes.shape[1] + walkers), level, valid


def _chunk(remaining: IntArray) -> int:
    """Levels to look at next: all that are left when they are few, else :data:`SEGMENT`."""
    whole = max(1, int(remaining.max(initial=0)))
    return whole if len(remaining) * whole <= WHOLE_PATHS else min(whole, SEGMENT)


def _running(op: np.ufunc, x: _A) -> _A:
    """``op.accumulate(x, 0)``, row by row: the same numbers, but numpy accumulates along the first
    axis element by element, which for our short columns is 10-20 times slower than a call per row."""
    out = np.empty_like(x)
    out[0] = x[0]
    for i in range(1, len(x)):
        op(out[i - 1], x[i], out=out[i])
    return out


def _first_true(mask: npt.NDArray[np.bool_]) -> IntArray:
    """Per column, the index of the first true row (the number of rows where none is)."""
    first = np.full(mask.shape[1:], len(mask), np.int64)
    for i in range(len(mask) - 1, -1, -1):
        np.copyto(first, i, where=mask[i])
    return first


def _both_ways(q: F32Array) -> F32Array:
    """Points as boxes in the bank's layout (``-q`` then ``q``), one column per point."""
    return np.ascontiguousarray(np.concatenate([-q, q], 1).T)


def _sum_dims(values: npt.NDArray[np.floating]) -> FloatArray:
    """Sum over the first axis in float64, in the order numpy sums one row of a box.

    Short rows are summed in order, which is what a reduction over the first axis does; from 8
    numbers on numpy sums a row pairwise, so take that path for those.
    """
    if len(values) < 8:
        return values.sum(0, dtype=np.float64)
    return np.ascontiguousarray(np.moveaxis(values, 0, -1)).sum(-1, dtype=np.float64)


def _separation(
    box: F32Array, valid: npt.NDArray[np.bool_], as_boxes: F32Array
) -> tuple[F32Array, npt.NDArray[np.bool_], FloatArray]:
    """The merge of boxes ``box`` (2D x levels x walkers) with the points ``as_boxes`` (2D x
    walkers), whether each point is inside, and its separation probability (exactly 0 inside the
    box, and where not ``valid``)."""
    D = len(box) // 2
    merged = np.maximum(box, as_boxes[:, None, :])
    inside = ~(merged != box).any(0) & valid
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 1.0 - _sum_dims(box[D:] + box[:D]) / _sum_dims(merged[D:] + merged[:D])
    p[~valid] = 0.0
    return merged, inside, p


def _top_down(weights: FloatArray, p: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The visitor's bottom-up recursion ``s <- w + (1-p)*s`` in top-down form, in AWS's order.

    Rows are levels, nearest the leaf first (``weights`` may have more axes after the walkers).
    Returns ``sum_j w_j * prod_{i above j} (1 - p_i)``, summed from the top, and the product of
    ``1 - p`` over all levels (it multiplies the leaf's score). Levels where p is 0 change neither,
    bit for bit, so a walk cut where the point is inside a box gives the numbers of the whole path.
    """
    keep = 1.0 - p[::-1]
    before = _running(np.multiply, np.concatenate([np.ones((1, p.shape[1])), keep]))
    factor = before[:-1].reshape(before[:-1].shape + (1,) * (weights.ndim - 2))
    return _running(np.add, weights[::-1] * factor)[-1], before[-1]


def _leaf_score(
    bank: TreeBank, trees: IntArray, points: F32Array, leaf: npt.NDArray[np.int32], depth: IntArray
) -> FloatArray:
    leaf_point, leaf_mass = bank.leaves(leaf, trees)
    same = (leaf_point == points).all(1)
    return np.where(
        same, damp(leaf_mass, bank.tree_mass[trees]) * score_seen(depth, leaf_mass), score_unseen(depth)
    )


def score(bank: TreeBank, trees: IntArray, points: F32Array, walk: Walk) -> FloatArray:
    """The normalised anomaly score of ``points[i]`` in ``trees[i]`` (trees must not be empty).

    ``walk`` is the points' :func:`descend` (it may hold more walkers after these): the engine
    shares one descent between the scores and the updates of a round.
    """
    n = len(trees)
    depth = walk.depth[:n]
    as_boxes = _both_ways(points)
    # separation probabilities up from the leaf, until the point is inside a box (0 from there)
    p_all = np.zeros((max(1, int(depth.max(initial=0))), n))
    needed = np.ones(n, np.int64)
    active, start = np.arange(n), 0
    while len(active):
        rows = _chunk(depth[active] - start)
        node, level, valid = _ancestors(walk, active, depth[active] - start, rows)
        _, inside, p = _separation(bank.inner_boxes(node, trees[active]), valid, as_boxes[:, active])
        p_all[start : start + rows, active] = p
        needed[active] = start + rows
        active = active[~inside.any(0) & (level[-1] > 0)]
        start += rows
    acc, prod = np.empty(n), np.empty(n)
    if n * int(needed.max(initial=1)) <= WHOLE_PATHS:  # few: one pass over the longest
        needed[:] = needed.max(initial=1)
    for rows in np.unique(needed):
        w = np.flatnonzero(needed == rows)
        p = p_all[:rows, w]
        level = depth[w] - 1 - np.arange(rows)[:, None]
        acc[w], prod[w] = _top_down(p * score_unseen(np.maximum(level, 0)), p)
    leaf_score = _leaf_score(bank, trees, points, walk.leaf[:n], depth)
    return normalizer(acc + prod * leaf_score, bank.tree_mass[trees])


def attribute(bank: TreeBank, trees: IntArray, points: F32Array) -> tuple[FloatArray, FloatArray]:
    """Per shingled dimension, how much of :func:`score` comes from ``points`` being high, and low.

    Summed over dimensions, high + low equals the score. Where the point equals a leaf, the (low)
    score of that tree is split evenly, as AWS's attribution visitor does before its refinement.
    """
    n, D = len(trees), bank.D
    walk = descend(bank, trees, points)
    node, level, valid = _ancestors(walk, np.arange(n), walk.depth, max(1, int(walk.depth.max())))
    box = bank.inner_boxes(node, trees)
    coordinates = points.T[:, None, :]
    up = np.where(valid, np.maximum(coordinates - box[D:], 0), 0).astype(np.float64)
    down = np.where(valid, np.maximum(-box[:D] - coordinates, 0), 0).astype(np.float64)
    grown = _sum_dims(up) + _sum_dims(down)
    with np.errstate(invalid="ignore", divide="ignore"):
        new_range = _sum_dims(box[D:] + box[:D]) + _sum_dims(up) + _sum_dims(down)
        unseen = np.where(valid, score_unseen(np.maximum(level, 0)) / new_range, 0.0)
        p = np.where(valid, grown / new_range, 0.0)
    weights = np.moveaxis(np.concatenate([up, down]) * unseen, 0, -1)
    acc, prod = _top_down(weights, p)
    leaf_point = bank.leaf_points(walk.leaf, trees)
    gaps = np.concatenate([np.maximum(points - leaf_point, 0), np.maximum(leaf_point - points, 0)], 1)
    gaps = gaps.astype(np.float64)
    total = gaps.sum(1, keepdims=True)
    share = np.divide(gaps, total, out=np.full_like(gaps, 1.0 / (2 * D)), where=total > 0)
    leaf_score = _leaf_score(bank, trees, points, walk.leaf, walk.depth)
    result = normalizer(acc + (prod * leaf_score)[:, None] * share, bank.tree_mass[trees][:, None])
    return result[:, :D], result[:, D:]


def _replace_child(bank: TreeBank, trees: IntArray, parent: IntArray, old: IntArray, new: IntArray) -> None:
    """In each ``parent`` (or at the root where it is -1), point to ``new`` where it pointed to ``old``."""
    top = parent < 0
    bank.root[trees[top]] = new[top]
    bank.set_child(parent[~top], trees[~top], old[~top], new[~top])


@dataclass
class Descent:
    """Where each entry's point went down its tree: walker ``column[i]`` of ``walk``.

    ``removal`` is the delete of the same round, done after the walk: it may have spliced a node
    out of the path (see :func:`_repair`).
    """

    walk: Walk
    column: IntArray
    removal: Removal | None = None

    def subset(self, keep: npt.NDArray[np.bool_] | IntArray) -> Descent:
        removal = self.removal.subset(keep) if self.removal is not None else None
        return Descent(self.walk, self.column[keep], removal)


@dataclass
class Removal:
    """What :func:`delete` spliced out of each tree: the leaf and its parent, and the sibling that
    took the parent's place (-1 where a leaf only lost a copy)."""

    leaf: IntArray
    parent: IntArray
    sibling: IntArray

    @classmethod
    def none(cls, n: int) -> Removal:
        return cls(np.full(n, -1), np.full(n, -1), np.full(n, -1))

    def subset(self, keep: npt.NDArray[np.bool_] | IntArray) -> Removal:
        return Removal(self.leaf[keep], self.parent[keep], self.sibling[keep])

    def spread(self, at: IntArray, n: int) -> Removal:
        """This removal's entries placed at ``at`` among ``n`` (the others removed nothing)."""
        out = Removal.none(n)
        out.leaf[at], out.parent[at], out.sibling[at] = self.leaf, self.parent, self.sibling
        return out


def delete(bank: TreeBank, trees: IntArray, slots: IntArray, descent: Descent) -> Removal:
    """Remove the point of sampler slot ``slots[i]`` from ``trees[i]`` (its leaf loses one copy, or goes).

    ``descent`` is each removed point's path: it names the ancestors whose boxes shrink.
    """
    removal = Removal.none(len(trees))
    walk, column = descent.walk, descent.column
    entries = np.arange(len(trees))
    leaf = bank.sample_leaves(trees, slots)
    bank.release_points(bank.slot_row[trees, slots])
    bank.add_mass(leaf, trees, -1)
    bank.tree_mass[trees] -= 1
    gone = bank.mass(leaf, trees) == 0
    trees, leaf, entries, column = trees[gone], leaf[gone], entries[gone], column[gone]
    bank.release_points(bank.rows_of(leaf, trees))
    parent = bank.parent_of(leaf, trees)
    bank.push_leaves(trees, leaf)
    alone = parent < 0
    bank.root[trees[alone]] = EMPTY
    trees, leaf, parent = trees[~alone], leaf[~alone], parent[~alone]
    entries, column = entries[~alone], column[~alone]
    if not len(trees):
        return removal
    kids = bank.children(parent, trees)
    sibling = np.where(kids[:, 1] == leaf, kids[:, 0], kids[:, 1])
    grand = bank.parent_of(parent, trees)
    # the boxes above shrink: each ancestor's new box is the union of the sibling's box and the
    # boxes hanging off the path between them (a cumulative maximum up the path), up to the first
    # box that stays the same (the removed point was not on its boundary): none above changes
    up = np.flatnonzero(grand >= 0)
    below, union = parent[up], None
    remaining = walk.depth[column[up]] - 1  # levels from the grandparent up to the root
    while len(up):
        rows = _chunk(remaining)
        ancestor, level, valid = _ancestors(walk, column[up], remaining, rows)
        owner = trees[up]
        record = bank.nodes.take(ancestor)
        on_path = np.concatenate([below[None, :], ancestor[:-1]])
        other = np.where(record["left"] == on_path, record["right"], record["left"])
        if union is None:  # the first pass: the sibling's box is fetched with the others
            other = np.concatenate([sibling[up][None, :], other])
        hanging = bank.boxes(other, owner)
        if union is None:
            union, hanging = hanging[:, 0], hanging[:, 1:]
        stack = np.concatenate([union[:, None, :], hanging], 1).swapaxes(0, 1)
        shrunk = _running(np.maximum, stack)[1:].swapaxes(0, 1)
        changed = _running(np.logical_and, (shrunk != bank.inner_boxes(ancestor, owner)).any(0) & valid)
        bank.set_boxes(
            ancestor[changed], np.broadcast_to(owner, ancestor.shape)[changed], shrunk[:, changed].T
        )
        more = changed[-1] & (level[-1] > 0)
        up, below, union = up[more], ancestor[-1, more], shrunk[:, -1, more]
        remaining = remaining[more] - rows
    bank.push_nodes(trees, parent)
    _replace_child(bank, trees, grand, parent, sibling)
    bank.set_parent(sibling, trees, grand)
    removal.leaf[entries], removal.parent[entries], removal.sibling[entries] = leaf, parent, sibling
    return removal


def random_cut(low: F32Array, high: F32Array, factor: FloatArray) -> tuple[IntArray, F32Array]:
    """AWS's ``randomCut``: a cut of each box at ``factor`` of its range sum, walked dimension by
    dimension, so a dimension is chosen in proportion to its range and the value uniformly in it.
    The value lies in [min, max) of its dimension; returns (dimension, float32 value)."""
    return _cut(np.ascontiguousarray(low.T), np.ascontiguousarray(high.T), factor)


def _cut(low: F32Array, high: F32Array, factor: FloatArray) -> tuple[IntArray, F32Array]:
    """:func:`random_cut` of boxes given dimension-first: ``low`` and ``high`` are ``(D, boxes)``."""
    D, n = low.shape
    gap = high.astype(np.float64) - low
    target = factor * _sum_dims(gap)  # how far into the summed ranges the cut falls
    cumulative = _running(np.add, gap)
    dim = _first_true((target <= cumulative) & (gap > 0))
    # float rounding can push the target past the last range: cut just below its top instead
    overflow = dim == D
    if overflow.any():
        last = _first_true(gap[::-1, overflow] > 0)
        dim[overflow] = D - 1 - np.where(last == D, 0, last)
    at = dim * n + np.arange(n)
    top, bottom = high.reshape(-1)[at], low.reshape(-1)[at]
    value = (bottom + (target - cumulative.reshape(-1)[at] + gap.reshape(-1)[at])).astype(np.float32)
    clip = overflow | (value >= top)
    value[clip] = np.nextafter(top[clip], bottom[clip])
    return dim.astype(np.int64), value


@dataclass
class Arrivals:
    """Points entering trees: entry ``i`` puts the stored point ``row[i]`` (shingled ``point[i]``,
    sequence number ``seq[i]``, which seeds its random cuts) into sampler slot ``slot[i]`` of bank
    tree ``tree[i]``. The trees are distinct."""

    tree: IntArray
    slot: IntArray
    row: IntArray
    seq: IntArray
    point: F32Array

    def __len__(self) -> int:
        return len(self.tree)

    def subset(self, keep: npt.NDArray[np.bool_] | IntArray) -> Arrivals:
        return Arrivals(self.tree[keep], self.slot[keep], self.row[keep], self.seq[keep], self.point[keep])


@dataclass
class _Candidates:
    """Random cuts at candidate attachment points (levels x entries): whether each separates the
    new point from the candidate's box, whether the box holds the point, and the merged box."""

    node: npt.NDArray[np.int32]
    separates: npt.NDArray[np.bool_]
    grows: npt.NDArray[np.bool_]
    inside: npt.NDArray[np.bool_]
    merged: F32Array
    dim: IntArray
    value: F32Array


def _candidates(
    bank: TreeBank,
    new: Arrivals,
    node: npt.NDArray[np.int32],
    box: F32Array,
    level: IntArray,
    valid: npt.NDArray[np.bool_],
) -> _Candidates:
    """AWS's ``addPoint`` cuts at ``node`` (boxes ``box``): one fresh random cut of (box + point) per
    level, counter-based on (tree, sequence number, level). A box that holds the point can never be
    cut apart from it."""
    D, m = bank.D, len(new)
    rows = node.shape[0]
    merged, inside, _ = _separation(box, valid, _both_ways(new.point))
    factor = _random.uniform_from(bank.cut_key[new.tree], new.seq, np.maximum(level, 0))
    flat_merged = merged.reshape(2 * D, -1)
    dim, value = _cut(-flat_merged[:D], flat_merged[D:], factor.reshape(-1))
    k = np.arange(rows * m)
    flat_box = box.reshape(-1)
    coordinate = new.point.T.reshape(-1)[dim * m + k % m]
    low, high = -flat_box[dim * rows * m + k], flat_box[(D + dim) * rows * m + k]
    separates = ((coordinate <= value) & (value < low)) | ((coordinate > value) & (value >= high))
    return _Candidates(node, separates.reshape(rows, m) & valid, valid & ~inside, inside, merged, dim, value)


@dataclass
class _Attachment:
    """Where each new point goes: beside ``saved`` (a node or leaf), with the cut (dim, value)
    and the merged box (one row each); and the ancestors whose boxes grow to ``grown_box``."""

    saved: IntArray
    dim: IntArray
    value: F32Array
    merged: F32Array
    grown_node: IntArray
    grown_tree: IntArray
    grown_box: F32Array


def _attachment(trees: IntArray, passes: list[tuple[IntArray, _Candidates]], D: int) -> _Attachment:
    """The highest candidate whose cut separates, over all passes (later passes are higher up),
    and the candidates above it whose boxes grow."""
    m = len(trees)
    chosen_pass, chosen_row = np.full(m, -1), np.full(m, -1)
    for k, (entry, c) in enumerate(passes):
        top = np.where(c.separates, np.arange(len(c.node))[:, None], -1).max(0)
        hit = top >= 0
        chosen_pass[entry[hit]], chosen_row[entry[hit]] = k, top[hit]
    at = _Attachment(
        np.empty(m, np.int64),
        np.empty(m, np.int64),
        np.empty(m, np.float32),
        np.empty((m, 2 * D), np.float32),
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        np.zeros((0, 2 * D), np.float32),
    )
    grown_node, grown_tree, grown_box = [], [], []
    for k, (entry, c) in enumerate(passes):
        mine = np.flatnonzero(chosen_pass[entry] == k)
        pick = chosen_row[entry[mine]] * len(entry) + mine
        at.saved[entry[mine]] = c.node.reshape(-1)[pick]
        at.dim[entry[mine]], at.value[entry[mine]] = c.dim[pick], c.value[pick]
        at.merged[entry[mine]] = c.merged.reshape(2 * D, -1)[:, pick].T
        rows = np.arange(len(c.node))[:, None]
        above = c.grows & (
            (k > chosen_pass[entry]) | ((k == chosen_pass[entry]) & (rows > chosen_row[entry]))
        )
        grown_node.append(c.node[above].astype(np.int64))
        grown_tree.append(np.broadcast_to(trees[entry], c.node.shape)[above])
        grown_box.append(c.merged[:, above].T)
    at.grown_node, at.grown_tree = np.concatenate(grown_node), np.concatenate(grown_tree)
    at.grown_box = np.concatenate(grown_box)
    return at


def insert(bank: TreeBank, new: Arrivals, descent: Descent) -> None:
    """Add each arriving point to its tree, as AWS's ``addPoint``.

    The new leaf is attached at the highest node of the point's path where a random cut of (node
    box + point), one fresh factor per level, separates the point from the box; a point equal to
    the leaf it reaches only adds a copy to that leaf. ``descent`` is each point's path (taken
    before the round's delete, which it names).
    """
    bank.slot_row[new.tree, new.slot] = new.row
    bank.hold_points(new.row)
    bank.tree_mass[new.tree] += 1
    empty = bank.root[new.tree] == EMPTY
    if empty.any():
        _plant(bank, new.subset(empty))
        new, descent = new.subset(~empty), descent.subset(~empty)
    if not len(new):
        return
    walk, column, skip = _repair(bank, new, descent)
    depth = walk.depth[column] - (skip < _NO_ROW)
    leaf = walk.leaf[column].astype(np.int64)
    leaf_point = bank.leaf_points(leaf, new.tree)
    same = (leaf_point == new.point).all(1)
    bank.add_mass(leaf[same], new.tree[same], 1)
    bank.set_sample_leaves(new.tree[same], new.slot[same], leaf[same])
    fresh = np.flatnonzero(~same)
    if not len(fresh):
        return
    new, leaf, depth, column, skip = new.subset(fresh), leaf[fresh], depth[fresh], column[fresh], skip[fresh]
    leaf_point = leaf_point[fresh]
    # candidates up from the leaf (first row of the first pass), until one box holds the point
    passes: list[tuple[IntArray, _Candidates]] = []
    active, start = np.arange(len(new)), 0
    while len(active):
        rows = _chunk(depth[active] + 1 - start)
        node, level, valid = _ancestors(walk, column[active], depth[active] + 1 - start, rows, skip[active])
        box = bank.inner_boxes(node, new.tree[active])
        if start == 0:  # the first row is the leaf the point reached
            node[0], valid[0] = leaf, True
            box[:, 0] = _both_ways(leaf_point)
        passes.append((active, _candidates(bank, new.subset(active), node, box, level, valid)))
        active = active[~passes[-1][1].inside.any(0) & (level[-1] > 0)]
        start += rows
    _link(bank, new, _attachment(new.tree, passes, bank.D))


def _plant(bank: TreeBank, new: Arrivals) -> None:
    """The first point of each (empty) tree: a lone leaf at the root."""
    leaf = bank.pop_leaves(new.tree)
    bank.set_leaves(leaf, new.tree, new.row, 1)
    bank.set_parent(leaf, new.tree, -1)
    bank.root[new.tree] = leaf
    bank.set_sample_leaves(new.tree, new.slot, leaf)
    bank.hold_points(new.row)


def _link(bank: TreeBank, new: Arrivals, at: _Attachment) -> None:
    """Make a node with the cut ``at`` over (the saved subtree, a new leaf for the point)."""
    node = bank.pop_nodes(new.tree)
    leaf = bank.pop_leaves(new.tree)
    parent = bank.parent_of(at.saved, new.tree)
    goes_left = new.point[np.arange(len(new)), at.dim] <= at.value
    bank.set_cut(
        node,
        new.tree,
        at.dim,
        at.value,
        np.where(goes_left, leaf, at.saved),
        np.where(goes_left, at.saved, leaf),
    )
    bank.set_boxes(node, new.tree, at.merged)
    bank.set_parent(node, new.tree, parent)
    _replace_child(bank, new.tree, parent, at.saved, node)
    bank.set_parent(at.saved, new.tree, node)
    bank.set_leaves(leaf, new.tree, new.row, 1)
    bank.set_parent(leaf, new.tree, node)
    bank.hold_points(new.row)
    bank.set_sample_leaves(new.tree, new.slot, leaf)
    bank.set_boxes(
        at.grown_node, at.grown_tree, at.grown_box
    )  # the nodes above the new one now hold the point too


def _repair(bank: TreeBank, new: Arrivals, descent: Descent) -> tuple[Walk, IntArray, IntArray]:
    """Each point's path after the round's removal: the walk, each point's column in it, and the
    row of the walk to skip (:data:`_NO_ROW` for none).

    A removal splices a parent out of the path, and everything below it moves up a level (the
    row to skip); a walk that ended on the removed leaf is walked again from the sibling that took
    the parent's place.
    """
    walk, column, removal = descent.walk, descent.column, descent.removal
    if removal is None:
        return walk, column, np.full(len(column), _NO_ROW)
    on_path = walk.nodes[:, column] == removal.parent.astype(np.int32)
    skip = np.where(on_path.any(0), np.argmax(on_path, 0), _NO_ROW)
    lost = np.flatnonzero((removal.leaf >= 0) & (walk.leaf[column] == removal.leaf))
    if len(lost):
        above = skip[lost]
        below = descend(bank, new.tree[lost], new.point[lost], removal.sibling[lost])
        rows = np.arange(int((above + len(below.nodes)).max()))[:, None]
        kept = walk.nodes[np.minimum(rows, len(walk.nodes) - 1), column[lost]]
        again = below.nodes[np.clip(rows - above, 0, len(below.nodes) - 1), np.arange(len(lost))]
        column = column.copy()
        column[lost] = walk.nodes.shape[1] + np.arange(len(lost))
        skip[lost] = _NO_ROW
        walk = walk.joined(Walk(np.where(rows < above, kept, again), above + below.depth))
    return walk, column, skip
