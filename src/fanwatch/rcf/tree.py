"""Vectorized random cut tree operations on a :class:`~fanwatch.rcf.bank.TreeBank`.

Each function takes parallel arrays: entry ``i`` works on tree ``g[i]`` of the bank with the
shingled point ``q[i]``. Entries of one call that modify trees (:func:`insert`, :func:`delete`) must
name distinct trees; scoring entries may repeat trees freely. The formulas are AWS's (see
:mod:`fanwatch.rcf.scoring`); the walk from the root is done level by level for all entries at once,
and the per-node arithmetic along the recorded paths in single calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import _random
from .bank import EMPTY, TreeBank
from .scoring import damp, normalizer, score_seen, score_unseen

__all__ = [
    "Path",
    "Removal",
    "attribute",
    "child_boxes",
    "delete",
    "descend",
    "insert",
    "score",
    "set_parent",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
F32Array = npt.NDArray[np.float32]


@dataclass
class Path:
    """Where each walker's descent went: the internal nodes passed, and the leaf reached."""

    entry: IntArray  # walker of each recorded node, level-major (all level-0 nodes first)
    addr: IntArray  # bank row of each recorded node (tree * N + local id)
    level: IntArray  # depth of each recorded node
    leaf: IntArray  # local leaf id reached by each walker
    depth: IntArray  # depth of that leaf

    def subset(self, walkers: IntArray) -> Path:
        """The paths of ``walkers`` only, renumbered 0, 1, ... in that order."""
        renumber = np.full(len(self.leaf), -1, np.int64)
        renumber[walkers] = np.arange(len(walkers))
        mine = renumber[self.entry] >= 0
        entry = renumber[self.entry[mine]]
        return Path(entry, self.addr[mine], self.level[mine], self.leaf[walkers], self.depth[walkers])


def descend(
    bank: TreeBank,
    g: IntArray,
    q: F32Array,
    start: IntArray | None = None,
    first_level: IntArray | None = None,
) -> Path:
    """Follow the cuts from each tree's root (or ``start`` at depth ``first_level``) down to a leaf.

    ``point[dim] <= cut`` goes left. All walkers step together, one level per round of calls.
    """
    n, N = len(g), bank.N
    dims, vals = bank.nodes["dim"], bank.nodes["val"]
    children = bank.nodes["child"]
    qflat = q.reshape(-1)
    idx = np.arange(n)
    cur = bank.root[g] if start is None else start
    base = g * N
    qoff = idx * bank.D
    entries: list[IntArray] = []
    addrs: list[IntArray] = []
    finished: list[tuple[npt.NDArray[np.integer], npt.NDArray[np.integer], int]] = []
    level = 0
    while len(idx):
        at_leaf = cur < 0
        if at_leaf.any():
            finished.append((idx[at_leaf], ~cur[at_leaf], level))
            inner = ~at_leaf
            idx, cur, base, qoff = idx[inner], cur[inner], base[inner], qoff[inner]
            if not len(idx):
                break
        if level >= N:
            raise ValueError("a tree is cyclic (corrupt checkpoint?)")
        addr = base + cur
        entries.append(idx)
        addrs.append(addr)
        right = qflat[qoff + dims[addr]] > vals[addr]
        cur = children[addr, right.view(np.int8)]
        level += 1
    leaf = np.empty(n, np.int64)
    depth = np.empty(n, np.int64)
    if finished:
        walkers = np.concatenate([f[0] for f in finished])
        leaf[walkers] = np.concatenate([f[1] for f in finished])
        depth[walkers] = np.repeat([f[2] for f in finished], [len(f[0]) for f in finished])
    if first_level is not None:
        depth += first_level
    if not entries:
        empty = np.zeros(0, np.int64)
        return Path(empty, empty, empty, leaf, depth)
    entry = np.concatenate(entries)
    lev = np.repeat(np.arange(len(entries)), [len(e) for e in entries])
    if first_level is not None:
        lev += first_level[entry]
    return Path(entry, np.concatenate(addrs).astype(np.int64), lev, leaf, depth)


def _path_boxes(bank: TreeBank, path: Path) -> tuple[F32Array, F32Array]:
    box = bank.nodes["box"][path.addr]
    return box[:, 0], box[:, 1]


def _leaf_points(bank: TreeBank, g: IntArray, leaf: IntArray) -> F32Array:
    return bank.points[bank.leaf_row[g * bank.S + leaf]]


def _accumulate(path: Path, weights: FloatArray, p: FloatArray, n: int) -> tuple[FloatArray, FloatArray]:
    """Top-down form of the visitor's bottom-up recursion ``s <- p*unseen(depth) + (1-p)*s``.

    Returns ``sum_j w_j * prod_{i<j} (1 - p_i)`` (``weights`` hold ``p_j * unseen(j)``, or one
    column per dimension) and the product of ``1 - p`` over the whole path, which multiplies the leaf.
    """
    levels = int(path.level.max()) + 1 if len(path.level) else 0
    keep = np.ones((n, levels + 1))
    keep[path.entry, path.level + 1] = 1.0 - p
    before: FloatArray = np.cumprod(keep, 1, dtype=np.float64)
    factor = before[path.entry, path.level]
    if weights.ndim == 1:
        return np.bincount(path.entry, weights * factor, n).astype(np.float64), before[:, -1]
    acc: FloatArray = np.zeros((n, *weights.shape[1:]))
    np.add.at(acc, path.entry, weights * factor[:, None])
    return acc, before[:, -1]


def score(bank: TreeBank, g: IntArray, q: F32Array, path: Path | None = None) -> FloatArray:
    """The normalised anomaly score of ``q[i]`` in tree ``g[i]`` (trees must not be empty).

    ``path`` is the walkers' :func:`descend`, when the caller has it already.
    """
    n = len(g)
    if path is None:
        path = descend(bank, g, q)
    lo, hi = _path_boxes(bank, path)
    qe = q[path.entry]
    new_range = (np.maximum(qe, hi) - np.minimum(qe, lo)).sum(1, dtype=np.float64)
    p = 1.0 - (hi - lo).sum(1, dtype=np.float64) / new_range  # exactly 0 inside the box
    acc, prod = _accumulate(path, p * score_unseen(path.level), p, n)
    leaf_mass = bank.leaf_mass[g * bank.S + path.leaf]
    tree_mass = bank.tree_mass[g]
    same = (_leaf_points(bank, g, path.leaf) == q).all(1)
    leaf_score = np.where(
        same,
        damp(leaf_mass, tree_mass) * score_seen(path.depth, leaf_mass),
        score_unseen(path.depth),
    )
    return normalizer(acc + prod * leaf_score, tree_mass)


def attribute(bank: TreeBank, g: IntArray, q: F32Array) -> tuple[FloatArray, FloatArray]:
    """Per shingled dimension, how much of :func:`score` comes from ``q`` being high, and low.

    Summed over dimensions, high + low equals the score. Where the point equals a leaf, the (low)
    score of that tree is split evenly, as AWS's attribution visitor does before its refinement.
    """
    n, D = len(g), bank.D
    path = descend(bank, g, q)
    lo, hi = _path_boxes(bank, path)
    qe = q[path.entry]
    up = np.maximum(qe - hi, 0).astype(np.float64)
    down = np.maximum(lo - qe, 0).astype(np.float64)
    new_range = (hi - lo).sum(1, dtype=np.float64) + up.sum(1) + down.sum(1)
    unseen = score_unseen(path.level) / new_range
    p = (up.sum(1) + down.sum(1)) / new_range
    acc, prod = _accumulate(path, np.concatenate([up, down], 1) * unseen[:, None], p, n)
    leaf_point = _leaf_points(bank, g, path.leaf)
    leaf_mass = bank.leaf_mass[g * bank.S + path.leaf]
    tree_mass = bank.tree_mass[g]
    same = (leaf_point == q).all(1)
    leaf_score = np.where(
        same,
        damp(leaf_mass, tree_mass) * score_seen(path.depth, leaf_mass),
        score_unseen(path.depth),
    )
    gaps = np.concatenate([np.maximum(q - leaf_point, 0), np.maximum(leaf_point - q, 0)], 1).astype(
        np.float64
    )
    total = gaps.sum(1, keepdims=True)
    share = np.divide(gaps, total, out=np.full_like(gaps, 1.0 / (2 * D)), where=total > 0)
    result = normalizer(acc + (prod * leaf_score)[:, None] * share, tree_mass[:, None])
    return result[:, :D], result[:, D:]


def set_parent(bank: TreeBank, g: IntArray, ref: IntArray, parent: npt.ArrayLike) -> None:
    """Set the parent of child references ``ref`` (internal nodes or ``~leaf``) of trees ``g``."""
    parent = np.broadcast_to(np.asarray(parent), ref.shape)
    inner = ref >= 0
    bank.nodes["parent"][g[inner] * bank.N + ref[inner]] = parent[inner]
    bank.leaf_parent[g[~inner] * bank.S + ~ref[~inner]] = parent[~inner]


def _replace_child(bank: TreeBank, g: IntArray, parent: IntArray, old: IntArray, new: IntArray) -> None:
    """In each ``parent`` (or at the root where it is -1), point to ``new`` where it pointed to ``old``."""
    top = parent < 0
    bank.root[g[top]] = new[top]
    below = ~top
    addr = g[below] * bank.N + parent[below]
    children = bank.nodes["child"]
    side = (children[addr, 1] == old[below]).astype(np.int64)
    children[addr, side] = new[below]


def child_boxes(bank: TreeBank, g: IntArray, ref: IntArray) -> tuple[F32Array, F32Array]:
    inner = (ref >= 0)[:, None]
    box = bank.nodes["box"][g * bank.N + np.where(ref >= 0, ref, 0)]
    point = bank.points[bank.leaf_row[g * bank.S + np.where(ref < 0, ~ref, 0)]]
    return np.where(inner, box[:, 0], point), np.where(inner, box[:, 1], point)


@dataclass
class Removal:
    """What :func:`delete` spliced out of each tree: the leaf and its parent, and the sibling that
    took the parent's place (-1 and 0 where a leaf only lost a copy)."""

    leaf: IntArray
    parent: IntArray
    sibling: IntArray


def delete(
    bank: TreeBank,
    g: IntArray,
    slot: IntArray,
    where: npt.NDArray[np.bool_] | None = None,
    path: Path | None = None,
) -> Removal:
    """Remove the point of sampler ``slot`` from tree ``g`` (a leaf loses one copy, or goes).

    Only the entries ``where`` is true (all by default); the returned removal covers every entry.
    ``path`` may give the descent of each removed point (one walker per entry ``where`` is true):
    it names the ancestors whose boxes shrink, without walking up the parents.
    """
    S, N = bank.S, bank.N
    removal = Removal(np.full(len(g), -1), np.full(len(g), -1), np.zeros(len(g), np.int64))
    events = np.arange(len(g)) if where is None else np.flatnonzero(where)
    walker = np.arange(len(events))
    g, slot = g[events], slot[events]
    leaf = bank.slot_leaf[g, slot].astype(np.int64)
    bank.release_points(bank.slot_row[g, slot])
    L = g * S + leaf
    bank.leaf_mass[L] -= 1
    bank.tree_mass[g] -= 1
    gone = bank.leaf_mass[L] == 0
    g, leaf, L, events, walker = g[gone], leaf[gone], L[gone], events[gone], walker[gone]
    bank.release_points(bank.leaf_row[L])
    parent = bank.leaf_parent[L].astype(np.int64)
    bank.push_leaves(g, leaf)
    alone = parent < 0
    bank.root[g[alone]] = EMPTY
    g, leaf, parent, events, walker = g[~alone], leaf[~alone], parent[~alone], events[~alone], walker[~alone]
    if not len(g):
        return removal
    P = g * N + parent
    children = bank.nodes["child"][P].astype(np.int64)
    sibling = np.where(children[:, 1] == ~leaf, children[:, 0], children[:, 1])
    grand = bank.nodes["parent"][P].astype(np.int64)
    bank.push_nodes(g, parent)
    _replace_child(bank, g, grand, parent, sibling)
    set_parent(bank, g, sibling, grand)
    removal.leaf[events], removal.parent[events], removal.sibling[events] = leaf, parent, sibling
    # the boxes above shrink. An ancestor's box is the union of the boxes hanging off the path
    # below it, so one cumulative min/max along each path to the root recomputes them all.
    if not (grand >= 0).any():
        return removal
    g, walker, grand = g[grand >= 0], walker[grand >= 0], grand[grand >= 0]
    chain = _ancestors(bank, g, grand) if path is None else _chain(path.subset(walker), g, N)
    levels = chain.shape[1]
    addr = g[:, None] * N + np.maximum(chain, 0)
    kids = bank.nodes["child"][addr].astype(np.int64)
    below = np.concatenate([np.full((len(g), 1), N), chain[:, :-1]], 1)  # N: no child is N
    other = np.where(kids[..., 0] == below, kids[..., 1], kids[..., 0])
    lo, hi = child_boxes(bank, np.repeat(g, levels), other.reshape(-1))
    lo, hi = lo.reshape(len(g), levels, -1), hi.reshape(len(g), levels, -1)
    first_lo, first_hi = child_boxes(bank, g, kids[:, 0, 1])  # the lowest ancestor keeps both children
    lo[:, 0] = np.minimum(lo[:, 0], first_lo)
    hi[:, 0] = np.maximum(hi[:, 0], first_hi)
    valid = chain >= 0
    bank.nodes["box"][:, 0][addr[valid]] = np.minimum.accumulate(lo, 1)[valid]
    bank.nodes["box"][:, 1][addr[valid]] = np.maximum.accumulate(hi, 1)[valid]
    return removal


def _chain(path: Path, g: IntArray, N: int) -> IntArray:
    """From each removed point's descent: its leaf's grandparent and the ancestors above, in rows."""
    above = path.level <= path.depth[path.entry] - 2
    entry = path.entry[above]
    column = path.depth[entry] - 2 - path.level[above]
    chain = np.full((len(g), max(1, int(path.depth.max()) - 1)), -1, np.int64)
    chain[entry, column] = path.addr[above] - g[entry] * N
    return chain


def _ancestors(bank: TreeBank, g: IntArray, node: IntArray) -> IntArray:
    """Each ``node`` of tree ``g`` and its ancestors up to the root, one row each, -1 padded."""
    parents = bank.nodes["parent"]
    columns: list[tuple[IntArray, IntArray]] = []
    active, cur = np.arange(len(g)), node
    while len(active):
        columns.append((active, cur))
        up = parents[g[active] * bank.N + cur].astype(np.int64)
        keep = up >= 0
        active, cur = active[keep], up[keep]
    chain = np.full((len(g), max(1, len(columns))), -1, np.int64)
    for level, (rows, nodes) in enumerate(columns):
        chain[rows, level] = nodes
    return chain


def _repair(bank: TreeBank, g: IntArray, q: F32Array, path: Path, removal: Removal) -> Path:
    """The descent each point would take after ``removal``: the spliced parent leaves the path,
    everything below it moves up a level, and a walk that ended on the removed leaf goes on into
    the sibling that took the parent's place."""
    spliced = ((g * bank.N + removal.parent)[path.entry] == path.addr) & (removal.parent[path.entry] >= 0)
    cut = np.full(len(g), np.iinfo(np.int64).max)
    cut[path.entry[spliced]] = path.level[spliced]
    keep = ~spliced
    entry, addr, level = path.entry[keep], path.addr[keep], path.level[keep]
    level = level - (level > cut[entry])
    leaf, depth = path.leaf.copy(), path.depth.copy()
    moved = cut < np.iinfo(np.int64).max
    depth[moved] -= 1
    lost = np.flatnonzero(moved & (leaf == removal.leaf))
    if len(lost):
        more = descend(bank, g[lost], q[lost], start=removal.sibling[lost], first_level=cut[lost])
        entry = np.concatenate([entry, lost[more.entry]])
        addr = np.concatenate([addr, more.addr])
        level = np.concatenate([level, more.level])
        leaf[lost], depth[lost] = more.leaf, more.depth
    return Path(entry, addr, level, leaf, depth)


def random_cut(lo: F32Array, hi: F32Array, factor: FloatArray) -> tuple[IntArray, F32Array]:
    """AWS's ``randomCut``: a cut of each box at ``factor`` of its range sum, walked dimension by
    dimension, so a dimension is chosen in proportion to its range and the value uniformly in it.
    The value lies in [min, max) of its dimension; returns (dimension, float32 value)."""
    gap = hi.astype(np.float64) - lo
    breakpoint = factor * gap.sum(1)
    cumulative = np.cumsum(gap, 1)
    fits = (breakpoint[:, None] <= cumulative) & (gap > 0)
    dim = np.argmax(fits, 1)
    # float rounding can push the breakpoint past the last range: cut just below its top instead
    overflow = ~fits.any(1)
    dim[overflow] = gap.shape[1] - 1 - np.argmax((gap > 0)[overflow, ::-1], 1)
    k = np.arange(len(dim))
    top, bottom = hi[k, dim], lo[k, dim]
    value = (bottom + (breakpoint - cumulative[k, dim] + gap[k, dim])).astype(np.float32)
    clip = overflow | (value >= top)
    value[clip] = np.nextafter(top[clip], bottom[clip])
    return dim.astype(np.int64), value


def insert(
    bank: TreeBank,
    g: IntArray,
    slot: IntArray,
    row: IntArray,
    seq: IntArray,
    q: F32Array,
    path: Path | None = None,
    removal: Removal | None = None,
) -> None:
    """Add the stored point ``row`` (shingled ``q``, sequence index ``seq``) to tree ``g`` as ``slot``.

    As AWS's ``addPoint``: the new leaf is attached at the highest node of the path where a random
    cut of (node box + point), one fresh factor per level, separates the point from the box; a
    point equal to the leaf it reaches only adds a copy to that leaf. ``path`` may give each
    point's descent taken before ``removal`` (the delete of the same round), saving a new walk.
    """
    S, N, T = bank.S, bank.N, bank.T
    bank.slot_row[g, slot] = row
    bank.hold_points(row)
    bank.tree_mass[g] += 1
    empty = bank.root[g] == EMPTY
    if empty.any():
        ge = g[empty]
        fresh = bank.pop_leaves(ge)
        Lg = ge * S + fresh
        bank.leaf_row[Lg] = row[empty]
        bank.leaf_mass[Lg] = 1
        bank.leaf_parent[Lg] = -1
        bank.root[ge] = ~fresh
        bank.slot_leaf[ge, slot[empty]] = fresh
        bank.hold_points(row[empty])
        keep = ~empty
        g, slot, row, seq, q = g[keep], slot[keep], row[keep], seq[keep], q[keep]
        path = None
    if not len(g):
        return
    if path is None:
        path = descend(bank, g, q)
    elif removal is not None:
        path = _repair(bank, g, q, path, removal)
    reached = g * S + path.leaf
    leaf_point = bank.points[bank.leaf_row[reached]]
    same = (leaf_point == q).all(1)
    bank.leaf_mass[reached[same]] += 1
    bank.slot_leaf[g[same], slot[same]] = path.leaf[same]
    new = ~same
    if not new.any():
        return
    # candidate attachment points: every internal node on the path, then the leaf itself
    on_path = new[path.entry]
    e_nodes = path.entry[on_path]
    e_leaf = np.flatnonzero(new)
    entry = np.concatenate([e_nodes, e_leaf])
    ref = np.concatenate([path.addr[on_path] - g[e_nodes] * N, ~path.leaf[e_leaf]])
    level = np.concatenate([path.level[on_path], path.depth[e_leaf]])
    node_box = bank.nodes["box"][path.addr[on_path]]
    lo = np.concatenate([node_box[:, 0], leaf_point[e_leaf]])
    hi = np.concatenate([node_box[:, 1], leaf_point[e_leaf]])
    qe = q[entry]
    merged_lo, merged_hi = np.minimum(lo, qe), np.maximum(hi, qe)
    factor = _random.uniform(bank.seed[g[entry] // T], _random.CUT, g[entry] % T, seq[entry], level)
    dim, value = random_cut(merged_lo, merged_hi, factor)
    k = np.arange(len(entry))
    qd = qe[k, dim]
    separates = ((qd <= value) & (value < lo[k, dim])) | ((qd > value) & (value >= hi[k, dim]))
    highest = np.full(len(g), np.iinfo(np.int64).max)
    np.minimum.at(highest, entry[separates], level[separates])
    chosen = np.flatnonzero(separates & (level == highest[entry]))
    chosen = chosen[np.argsort(entry[chosen], kind="stable")]
    ev = entry[chosen]  # the new (non-duplicate) entries, ascending
    ge, saved = g[ev], ref[chosen]
    saved_inner = saved >= 0
    parent = np.empty(len(ev), np.int64)
    parent[saved_inner] = bank.nodes["parent"][ge[saved_inner] * N + saved[saved_inner]]
    parent[~saved_inner] = bank.leaf_parent[ge[~saved_inner] * S + ~saved[~saved_inner]]
    node = bank.pop_nodes(ge)
    fresh = bank.pop_leaves(ge)
    A = ge * N + node
    goes_left = qe[chosen, dim[chosen]] <= value[chosen]
    bank.nodes["box"][:, 0][A] = merged_lo[chosen]
    bank.nodes["box"][:, 1][A] = merged_hi[chosen]
    bank.nodes["val"][A] = value[chosen]
    bank.nodes["dim"][A] = dim[chosen]
    bank.nodes["child"][A, 0] = np.where(goes_left, ~fresh, saved)
    bank.nodes["child"][A, 1] = np.where(goes_left, saved, ~fresh)
    bank.nodes["parent"][A] = parent
    _replace_child(bank, ge, parent, saved, node)
    set_parent(bank, ge, saved, node)
    Lg = ge * S + fresh
    bank.leaf_row[Lg] = row[ev]
    bank.leaf_mass[Lg] = 1
    bank.leaf_parent[Lg] = node
    bank.hold_points(row[ev])
    bank.slot_leaf[ge, slot[ev]] = fresh
    # the nodes above the new one now also contain the point
    above = np.flatnonzero((ref >= 0) & (level < highest[entry]))
    A = g[entry[above]] * N + ref[above]
    bank.nodes["box"][:, 0][A] = merged_lo[above]
    bank.nodes["box"][:, 1][A] = merged_hi[above]
