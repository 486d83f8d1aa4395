"""The time-decayed reservoir sampler of each tree, decided for a whole block of points at once.

As AWS's ``CompactSampler``: point ``seq`` gets the weight ``-lambda*seq + log(-log u)`` (``u``
uniform; float32) in each tree; a tree keeps the ``sample_size`` points of smallest weight, so newer
points are favoured and old ones fade. Until a sampler is full it accepts every point; then a point
is accepted when its weight is below the sample's largest, which it evicts. With lambda =
1/(10*sample_size) about one point in ten enters a tree. None of this depends on the shape of the
trees, so the acceptances of a block can be settled first and the trees updated afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import _random
from .bank import TreeBank

__all__ = ["Events", "decide", "weights"]

#: Candidates taken per tree before the ones that can no longer be accepted are dropped.
_STEPS_PER_FILTER = 16
#: (point, tree) weights drawn at once.
_PAIRS_PER_CHUNK = 1 << 16

IntArray = npt.NDArray[np.int64]


def weights(bank: TreeBank, forest: IntArray, seq: IntArray) -> npt.NDArray[np.float32]:
    """The sampler weight of point ``seq[i]`` of forest slot ``forest[i]`` in each of its trees."""
    trees = forest[:, None] * bank.T + np.arange(bank.T)[None, :]
    u = _random.uniform_from(bank.sample_key[trees], seq[:, None])
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
    T = bank.T
    out: list[tuple[IntArray, IntArray, IntArray, npt.NDArray[np.bool_]]] = []
    # in chunks: a point can only be accepted if it beats the threshold its tree has when the
    # chunk starts (thresholds only fall), and a later point's weight is lower for the time decay
    chunk = max(1, _PAIRS_PER_CHUNK // T)
    for lo in range(0, len(rows), chunk):
        part = slice(lo, lo + chunk)
        w = weights(bank, forest[part], seq[part])
        trees = forest[part, None] * T + np.arange(T)[None, :]
        r, t = np.nonzero(w < bank.threshold[trees])
        order = np.argsort(trees[r, t], kind="stable")
        _run(bank, trees[r, t][order], w[r, t][order], rows[part][r][order], out)
    if not out:
        empty = np.zeros(0, np.int64)
        return Events(empty, empty, empty, np.zeros(0, bool), empty)
    tree = np.concatenate([o[0] for o in out])
    order = np.argsort(tree, kind="stable")
    tree = tree[order]
    first = np.r_[True, tree[1:] != tree[:-1]]
    starts = np.flatnonzero(first)
    rank = np.arange(len(tree)) - np.repeat(starts, np.diff(np.r_[starts, len(tree)]))
    return Events(
        tree,
        np.concatenate([o[1] for o in out])[order],
        np.concatenate([o[2] for o in out])[order].astype(np.int64),
        np.concatenate([o[3] for o in out])[order],
        rank,
    )


def _run(
    bank: TreeBank,
    cand_tree: IntArray,
    cand_w: npt.NDArray[np.float32],
    cand_row: IntArray,
    out: list[tuple[IntArray, IntArray, IntArray, npt.NDArray[np.bool_]]],
) -> None:
    """Offer the candidates (grouped by tree, in order within each) to their samplers."""
    S = bank.S
    while len(cand_tree):
        # the k-th candidate of every tree in step k; after a few steps the thresholds have fallen
        # (a filling sampler has none until it is full), so drop the candidates that cannot win
        first = np.flatnonzero(np.r_[True, cand_tree[1:] != cand_tree[:-1]])
        counts = np.diff(np.r_[first, len(cand_tree)])
        filling = S - int(bank.n_slots[cand_tree[first]].min())  # accepted without a threshold
        steps = min(max(_STEPS_PER_FILTER, filling), int(counts.max()))
        for k in range(steps):
            pick = first[counts > k] + k
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
            out.append((g, cand_row[pick], slot, full))
        later = np.arange(len(cand_tree)) - np.repeat(first, counts) >= steps
        later &= cand_w < bank.threshold[cand_tree]
        cand_tree, cand_w, cand_row = cand_tree[later], cand_w[later], cand_row[later]
