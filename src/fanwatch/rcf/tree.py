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

__all__ = ["Path", "attribute", "child_boxes", "delete", "descend", "insert", "score", "set_parent"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
F32Array = npt.NDArray[np.float32]


@dataclass
class Path:
    """Where each entry's walk went: the internal nodes passed, level by level, and the leaf."""

    entry: IntArray  # entry index of each recorded node, level-major (level 0 first)
    node: IntArray  # local internal node id of each recorded node
    level: IntArray  # depth of each recorded node
    starts: list[int]  # offset of each level in the arrays above, plus the end
    leaf: IntArray  # local leaf id reached by each entry
    depth: IntArray  # depth of that leaf


def descend(bank: TreeBank, g: IntArray, q: F32Array) -> Path:
    """Follow the cuts from each tree's root to a leaf (``point[dim] <= cut`` goes left)."""
    n, N, D = len(g), bank.N, bank.D
    dims, vals = bank.nodes["dim"], bank.nodes["val"]
    children = bank.nodes["child"]
    qflat = q.reshape(-1)
    leaf = np.empty(n, np.int64)
    depth = np.empty(n, np.int64)
    idx = np.arange(n)
    cur = bank.root[g].astype(np.int64)
    base = g * N
    entries: list[IntArray] = []
    nodes: list[IntArray] = []
    level = 0
    while len(idx):
        at_leaf = cur < 0
        if at_leaf.any():
            done = idx[at_leaf]
            leaf[done] = ~cur[at_leaf]
            depth[done] = level
            inner = ~at_leaf
            idx, cur = idx[inner], cur[inner]
            if not len(idx):
                break
        if level >= N:
            raise ValueError("a tree is cyclic (corrupt checkpoint?)")
        entries.append(idx)
        nodes.append(cur)
        addr = base[idx] + cur
        right = qflat[idx * D + dims[addr]] > vals[addr]
        cur = children[addr, right.view(np.int8)].astype(np.int64)
        level += 1
    sizes = [len(e) for e in entries]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64).tolist()
    if entries:
        entry, node = np.concatenate(entries), np.concatenate(nodes)
        lev = np.repeat(np.arange(len(sizes)), sizes)
    else:
        entry = node = lev = np.zeros(0, np.int64)
    return Path(entry, node, lev, starts, leaf, depth)


def _path_boxes(bank: TreeBank, g: IntArray, path: Path) -> tuple[F32Array, F32Array]:
    box = bank.nodes["box"][g[path.entry] * bank.N + path.node]
    return box[:, 0], box[:, 1]


def _leaf_points(bank: TreeBank, g: IntArray, leaf: IntArray) -> F32Array:
    return bank.points[bank.leaf_row[g * bank.S + leaf]]


def _accumulate(path: Path, weights: FloatArray, p: FloatArray, n: int) -> tuple[FloatArray, FloatArray]:
    """Top-down form of the visitor's bottom-up recursion ``s <- p*unseen(depth) + (1-p)*s``.

    Returns ``sum_j w_j * prod_{i<j} (1 - p_i)`` (``weights`` already hold ``p_j * unseen(j)``, or one
    column per dimension) and the product of ``1 - p`` over the whole path, which multiplies the leaf.
    """
    acc = np.zeros((n, *weights.shape[1:]))
    prod = np.ones(n)
    for lo, hi in zip(path.starts[:-1], path.starts[1:], strict=True):
        i = path.entry[lo:hi]
        before = prod[i]
        if weights.ndim == 1:
            acc[i] += weights[lo:hi] * before
        else:
            acc[i] += weights[lo:hi] * before[:, None]
        prod[i] = before * (1.0 - p[lo:hi])
    return acc, prod


def score(bank: TreeBank, g: IntArray, q: F32Array) -> FloatArray:
    """The normalised anomaly score of ``q[i]`` in tree ``g[i]`` (trees must not be empty)."""
    n = len(g)
    path = descend(bank, g, q)
    lo, hi = _path_boxes(bank, g, path)
    qe = q[path.entry]
    diff = (np.maximum(qe - hi, 0) + np.maximum(lo - qe, 0)).sum(1, dtype=np.float64)
    p = diff / ((hi - lo).sum(1, dtype=np.float64) + diff)
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
    lo, hi = _path_boxes(bank, g, path)
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


def delete(bank: TreeBank, g: IntArray, slot: IntArray) -> None:
    """Remove the point of sampler ``slot`` from tree ``g`` (a leaf loses one copy, or goes)."""
    S, N = bank.S, bank.N
    leaf = bank.slot_leaf[g, slot].astype(np.int64)
    bank.release_points(bank.slot_row[g, slot])
    L = g * S + leaf
    bank.leaf_mass[L] -= 1
    bank.tree_mass[g] -= 1
    gone = bank.leaf_mass[L] == 0
    g, leaf, L = g[gone], leaf[gone], L[gone]
    bank.release_points(bank.leaf_row[L])
    parent = bank.leaf_parent[L].astype(np.int64)
    bank.push_leaves(g, leaf)
    alone = parent < 0
    bank.root[g[alone]] = EMPTY
    g, leaf, parent = g[~alone], leaf[~alone], parent[~alone]
    if not len(g):
        return
    P = g * N + parent
    children = bank.nodes["child"][P].astype(np.int64)
    sibling = np.where(children[:, 1] == ~leaf, children[:, 0], children[:, 1])
    grand = bank.nodes["parent"][P].astype(np.int64)
    bank.push_nodes(g, parent)
    _replace_child(bank, g, grand, parent, sibling)
    set_parent(bank, g, sibling, grand)
    # the boxes above shrink; stop where a box no longer changes
    g, cur = g[grand >= 0], grand[grand >= 0]
    while len(cur):
        A = g * N + cur
        kids = bank.nodes["child"][A].astype(np.int64)
        lo0, hi0 = child_boxes(bank, g, kids[:, 0])
        lo1, hi1 = child_boxes(bank, g, kids[:, 1])
        lo, hi = np.minimum(lo0, lo1), np.maximum(hi0, hi1)
        box = bank.nodes["box"][A]
        changed = (lo != box[:, 0]).any(1) | (hi != box[:, 1]).any(1)
        bank.nodes["box"][:, 0][A[changed]] = lo[changed]
        bank.nodes["box"][:, 1][A[changed]] = hi[changed]
        up = bank.nodes["parent"][A].astype(np.int64)
        keep = changed & (up >= 0)
        g, cur = g[keep], up[keep]


def insert(
    bank: TreeBank,
    g: IntArray,
    slot: IntArray,
    row: IntArray,
    seq: IntArray,
    q: F32Array,
) -> None:
    """Add the stored point ``row`` (shingled ``q``, sequence index ``seq``) to tree ``g`` as ``slot``.

    As AWS's ``addPoint``: the new leaf is attached at the highest node of the path where a random
    cut of (node box + point), one fresh factor per level, separates the point from the box; a
    point equal to the leaf it reaches only adds a copy to that leaf.
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
    if not len(g):
        return
    path = descend(bank, g, q)
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
    ref = np.concatenate([path.node[on_path], ~path.leaf[e_leaf]])
    level = np.concatenate([path.level[on_path], path.depth[e_leaf]])
    node_box = bank.nodes["box"][g[e_nodes] * N + path.node[on_path]]
    lo = np.concatenate([node_box[:, 0], leaf_point[e_leaf]])
    hi = np.concatenate([node_box[:, 1], leaf_point[e_leaf]])
    qe = q[entry]
    merged_lo, merged_hi = np.minimum(lo, qe), np.maximum(hi, qe)
    gap = merged_hi.astype(np.float64) - merged_lo
    factor = _random.uniform(bank.seed[g[entry] // T], _random.CUT, g[entry] % T, seq[entry], level)
    breakpoint = factor * gap.sum(1)
    cumulative = np.cumsum(gap, 1)
    fits = (breakpoint[:, None] <= cumulative) & (gap > 0)
    dim = np.argmax(fits, 1)
    # float rounding can push the breakpoint past the last range: cut just below its top instead
    overflow = ~fits.any(1)
    dim[overflow] = gap.shape[1] - 1 - np.argmax((gap > 0)[overflow, ::-1], 1)
    k = np.arange(len(entry))
    top, bottom = merged_hi[k, dim], merged_lo[k, dim]
    value = (bottom + (breakpoint - cumulative[k, dim] + gap[k, dim])).astype(np.float32)
    clip = overflow | (value >= top)
    value[clip] = np.nextafter(top[clip], bottom[clip])
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
