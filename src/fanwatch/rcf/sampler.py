"""The time-decayed reservoir sampler of each tree, decided for a whole block of points at once.

As AWS's ``CompactSampler``: point ``seq`` gets the weight ``-lambda*seq + log(-log u)`` (``u``
uniform; float32) in each tree; a tree keeps the ``sample_size`` points of smallest weight, so newer
points are favoured and old ones fade. Until a sampler is full it accepts every point; then a point
is accepted when its weight is below the sample's largest, which it evicts. With lambda =
1/(10*sample_size) about one point in ten enters a tree. None of this depends on the shape of the
trees, so the acceptances of a block can be settled first and the trees updated afterwards.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import _random
from .bank import TreeBank

__all__ = ["Events", "decide", "weights"]

IntArray = npt.NDArray[np.int64]


def weights(bank: TreeBank, forest: IntArray, seq: IntArray) -> npt.NDArray[np.float32]:
    """The sampler weight of point ``seq[i]`` of forest slot ``forest[i]`` in each of its trees."""
    u = _random.uniform(bank.seed[forest][:, None], _random.SAMPLER, np.arange(bank.T)[None, :], seq[:, None])
    return (-bank.config.lam * seq[:, None].astype(np.float64) + np.log(-np.log(u))).astype(np.float32)


@dataclass
class Events:
    """Accepted (tree, row) pairs of a block, in order within each tree; ``rank`` counts per tree."""

    tree: IntArray
    row: IntArray
    slot: IntArray
    evicts: npt.NDArray[np.bool_]
    rank: IntArray


def decide(bank: TreeBank, forest: IntArray, rows: IntArray, seq: IntArray) -> Events:
    """Run the samplers over ``rows`` (block row numbers, in order within each forest).

    Updates the samplers' weights; the trees are updated later from the returned events.
    """
    T, S = bank.T, bank.S
    w = weights(bank, forest, seq)
    trees = forest[:, None] * T + np.arange(T)[None, :]
    # a point can only be accepted if it beats the threshold the tree has now: thresholds only fall
    r, t = np.nonzero(w < bank.threshold[trees])
    cand_tree, cand_w, cand_row = trees[r, t], w[r, t], rows[r]
    order = np.argsort(cand_tree, kind="stable")
    cand_tree, cand_w, cand_row = cand_tree[order], cand_w[order], cand_row[order]
    first = np.r_[True, cand_tree[1:] != cand_tree[:-1]] if len(cand_tree) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    cand_rank = np.arange(len(cand_tree)) - np.repeat(starts, np.diff(np.r_[starts, len(cand_tree)]))
    by_rank = np.argsort(cand_rank, kind="stable")
    bounds = np.searchsorted(cand_rank[by_rank], np.arange(cand_rank.max() + 2 if len(cand_rank) else 1))
    out_tree, out_row, out_slot, out_evicts = [], [], [], []
    for lo, hi in itertools.pairwise(bounds):
        pick = by_rank[lo:hi]
        g, wg = cand_tree[pick], cand_w[pick]
        accept = wg < bank.threshold[g]
        g, wg, pick = g[accept], wg[accept], pick[accept]
        if not len(g):
            continue
        full = bank.n_slots[g] >= S
        slot = np.where(full, bank.threshold_slot[g], bank.n_slots[g])
        bank.slot_weight[g, slot] = wg
        bank.n_slots[g] += ~full
        now_full = g[bank.n_slots[g] >= S]
        if len(now_full):
            sample = bank.slot_weight[now_full]
            biggest = np.argmax(sample, 1)
            bank.threshold_slot[now_full] = biggest
            bank.threshold[now_full] = sample[np.arange(len(now_full)), biggest]
        out_tree.append(g)
        out_row.append(cand_row[pick])
        out_slot.append(slot)
        out_evicts.append(full)
    if not out_tree:
        empty = np.zeros(0, np.int64)
        return Events(empty, empty, empty, np.zeros(0, bool), empty)
    tree = np.concatenate(out_tree)
    order = np.argsort(tree, kind="stable")
    tree = tree[order]
    first = np.r_[True, tree[1:] != tree[:-1]]
    starts = np.flatnonzero(first)
    rank = np.arange(len(tree)) - np.repeat(starts, np.diff(np.r_[starts, len(tree)]))
    return Events(
        tree,
        np.concatenate(out_row)[order],
        np.concatenate(out_slot)[order].astype(np.int64),
        np.concatenate(out_evicts)[order],
        rank,
    )
