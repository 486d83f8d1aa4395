"""Forests of a bank to checkpoint states and back (AWS's ``ForestMapper``).

Why apart from :mod:`fanwatch.rcf.state`: the format says what a checkpoint holds and is read by
anything that inspects one; the mapper knows the bank's layout, which changes when the bank does
while the format stays. A restore places many states in one vectorized pass (a Lambda batch brings
back many fans at once); leaf masses and bounding boxes are recomputed, not stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import _random, tree
from .bank import EMPTY, TreeBank
from .state import FORMAT_VERSION, ForestState, decode, encode, read_header, read_version, shingle_windows

__all__ = ["capture", "dump", "load", "restore", "upgrade"]

IntArray = npt.NDArray[np.int64]
F32Array = npt.NDArray[np.float32]


# ---- bank -> state -----------------------------------------------------------------------------


def _levels(bank: TreeBank, trees: IntArray) -> list[IntArray]:
    """Breadth-first levels of the trees' node ids, roots first."""
    live = bank.root[trees] != EMPTY
    nodes = bank.root[trees][live].astype(np.int64)
    levels = []
    while len(nodes):
        levels.append(nodes)
        inner = nodes[~bank.is_leaf(nodes)]
        nodes = bank.children(inner, bank.tree_of(inner)).reshape(-1)
    return levels


def capture(bank: TreeBank, slot: int) -> ForestState:
    """The state of forest ``slot`` of ``bank``, in the current :data:`FORMAT_VERSION`."""
    cfg, T, S, M = bank.config, bank.T, bank.S, bank.M
    k, d = cfg.shingle_size, cfg.dimensions
    trees = slot * T + np.arange(T, dtype=np.int64)
    samples_per_tree = bank.n_slots[trees].astype(np.int64)
    in_use = np.arange(S) < samples_per_tree[:, None]
    rows = bank.slot_row[trees][in_use]
    sequence, first, sample_index = np.unique(bank.point_seq[rows], return_index=True, return_inverse=True)
    where = shingle_windows(sequence, k)
    readings = np.zeros((int(where.max(initial=-1)) + 1, d), np.float32)
    readings[where.reshape(-1)] = bank.points[rows[first]].reshape(-1, d)

    # every tree's nodes level by level: each level of _levels is in tree order already
    base = slot * T * M
    nodes = np.concatenate(_levels(bank, trees) or [np.zeros(0, np.int64)])
    nodes = nodes[np.argsort((nodes // M - slot * T).astype(np.uint16), kind="stable")]
    inner = ~bank.is_leaf(nodes)
    leaves = nodes[~inner]
    leaves_per_tree = np.bincount(leaves // M - slot * T, minlength=T)
    rank = np.zeros(T * M, np.int64)  # each leaf's rank among its tree's leaves in level order
    rank[leaves - base] = np.arange(len(leaves)) - np.repeat(
        np.cumsum(leaves_per_tree) - leaves_per_tree, leaves_per_tree
    )
    slot_leaf = (np.arange(T)[:, None] * M + bank.slot_leaf[trees])[in_use]
    cuts = nodes[inner]
    return ForestState(
        config=cfg,
        seed=int(bank.seed[slot]),
        seen=int(bank.seen[slot]),
        shingle=bank.shingle[slot].astype(np.float32),
        samples_per_tree=samples_per_tree,
        leaves_per_tree=leaves_per_tree,
        sequence=sequence.astype(np.int64),
        readings=readings,
        sample_index=sample_index.astype(np.int64),
        shape_bits=inner.astype(np.int64),
        cut_dims=bank.nodes["dim"][cuts].astype(np.int64),
        cut_values=bank.nodes["cut"][cuts].astype(np.float32),
        version=FORMAT_VERSION,
        sample_leaves=rank[slot_leaf],
    )


def dump(bank: TreeBank, slot: int) -> bytes:
    """The checkpoint of forest ``slot`` of ``bank``."""
    return encode(capture(bank, slot))


def upgrade(data: bytes) -> bytes:
    """Checkpoint ``data`` rewritten in the current :data:`FORMAT_VERSION` (the same forest: its
    later scores are identical); a current checkpoint comes back as it is."""
    if read_version(data) == FORMAT_VERSION:
        return bytes(data)
    config, seed = read_header(data)
    bank = TreeBank(config)
    slot = bank.acquire(seed)
    load(bank, slot, data)
    return dump(bank, slot)


# ---- state -> bank -----------------------------------------------------------------------------


def load(bank: TreeBank, slot: int, data: bytes) -> None:
    """Restore checkpoint ``data`` into the empty forest ``slot`` of ``bank`` (``ValueError`` when
    it is corrupt; the slot is then empty again)."""
    try:
        restore(bank, [slot], [decode(data)])
    except ValueError:
        bank.release(slot)
        raise
    except IndexError as exc:  # a cut or a child out of place that no size check could see
        bank.release(slot)
        raise ValueError(f"corrupt RCF checkpoint ({exc})") from None


def restore(bank: TreeBank, slots: list[int], states: list[ForestState]) -> None:
    """Put each state into its empty forest slot of ``bank``, many in one vectorized pass.

    A state whose trees do not fit together raises ``ValueError`` (the slots keep what was
    restored: release them).
    """
    for state in states:
        if state.config != bank.config:
            raise ValueError(
                f"a checkpoint with parameters {state.config} does not fit a bank of {bank.config}"
            )
    for version in sorted({state.version for state in states}):
        mine = [i for i, state in enumerate(states) if state.version == version]
        _restore(bank, [slots[i] for i in mine], [states[i] for i in mine])


def _restore(bank: TreeBank, slots: list[int], states: list[ForestState]) -> None:
    """:func:`restore` of states of one version."""
    cfg, T, S = bank.config, bank.T, bank.S
    slot_array = np.asarray(slots, np.int64)
    trees = (slot_array[:, None] * T + np.arange(T)).reshape(-1)
    for slot, state in zip(slots, states, strict=True):
        bank.seen[slot] = state.seen
        bank.shingle[slot] = state.shingle

    # the points, one store row per sampled sequence number of each forest
    shingled = [state.points()[0] for state in states]
    sequence = np.concatenate([state.sequence for state in states])
    rows = bank.store_points(np.concatenate(shingled).astype(np.float32), sequence)
    first_row = np.cumsum([0] + [len(state.sequence) for state in states])[:-1]
    samples_per_tree = np.concatenate([state.samples_per_tree for state in states])
    sample_index = np.concatenate(
        [state.sample_index + first for state, first in zip(states, first_row, strict=True)]
    )
    slot_tree = np.repeat(trees, samples_per_tree)
    slot_pos = np.arange(len(slot_tree)) - np.repeat(
        np.cumsum(samples_per_tree) - samples_per_tree, samples_per_tree
    )
    slot_rows = rows[sample_index]
    slot_seq = sequence[sample_index]
    # flat positions in the (tree, slot) arrays: one index instead of a pair per write
    slot_at = slot_tree * S + slot_pos
    bank.slot_row.reshape(-1)[slot_at] = slot_rows
    bank.n_slots[trees] = samples_per_tree
    bank.tree_mass[trees] = samples_per_tree
    u = _random.uniform_from(bank.sample_key[slot_tree], slot_seq)
    bank.slot_weight.reshape(-1)[slot_at] = (-cfg.lam * slot_seq + np.log(-np.log(u))).astype(np.float32)
    full = trees[samples_per_tree >= S]
    if len(full):
        biggest = np.argmax(bank.slot_weight[full], 1)
        bank.threshold_slot[full] = biggest
        bank.threshold[full] = bank.slot_weight[full, biggest]

    leaves_per_tree = np.concatenate([state.leaves_per_tree for state in states])
    slot_points = bank.points[slot_rows]
    if states[0].version == 1:
        _restore_shapes(bank, trees, leaves_per_tree, states)
        leaf = tree.find_leaves(bank, slot_tree, slot_points)  # route every sampled point
        leaves, first, mass = _first_of_each(leaf)
        if len(leaves) != leaves_per_tree.sum():
            raise ValueError("corrupt RCF checkpoint (samples do not match the leaves)")
        bank.set_sample_leaves(slot_tree, slot_pos, leaf)
        bank.set_leaves(leaves, slot_tree[first], slot_rows[first], mass)
        leaf_points = bank.leaf_points(leaf, slot_tree)
    else:  # a tree's leaves take its leaf ids in level order: the stored ranks name them
        layout = _restore_levels(bank, trees, leaves_per_tree, states)
        rank = np.concatenate([state.sample_leaves for state in states if state.sample_leaves is not None])
        # the leaves in level order over all trees (the order of their boxes in the layout)
        # are the bank's leaf data in that order: tree after tree, each from its first leaf
        key = np.repeat(np.arange(len(trees)), samples_per_tree) * S + rank
        mass = np.bincount(key, minlength=len(trees) * S)
        at = np.flatnonzero(mass)
        if len(at) != leaves_per_tree.sum():
            raise ValueError("corrupt RCF checkpoint (samples do not match the leaves)")
        first_of = np.full(len(trees) * S, len(key))
        np.minimum.at(first_of, key, np.arange(len(key)))
        first = first_of[at]
        bank.slot_leaf.reshape(-1)[slot_at] = bank.N + rank
        leaf_data = trees[at // S] * S + at % S
        bank.leaf_row[leaf_data] = slot_rows[first]
        bank.leaf_mass[leaf_data] = mass[at]
        leaf_points = slot_points[first_of[key]]
    if not (leaf_points == slot_points).all():
        raise ValueError("corrupt RCF checkpoint (samples do not match the leaves)")
    # every stored point is held by its samples, and by the leaf it is the point of
    bank.point_ref[rows] = np.bincount(sample_index, minlength=len(rows)) + np.bincount(
        sample_index[first], minlength=len(rows)
    )
    if states[0].version == 1:
        _restore_boxes(bank, trees, leaves, slot_points[first])
    else:
        _restore_level_boxes(bank, slot_array, layout, slot_points[first])


def _restore_level_boxes(bank: TreeBank, slots: IntArray, layout: _Layout, points: F32Array) -> None:
    """The boxes of trees restored from level order (``points``: their leaves' in level order),
    deepest level first; checks every cut.

    Why a scratch array laid out as the bank: its first rows are the forests' internal boxes in
    the bank's order (so each forest's boxes go to the bank in one copy), the leaves' boxes follow
    in level order (so they are written in one slice); each level is then one gather of both
    children's boxes. Why the cuts are checked here: a version 2 checkpoint names each sample's
    leaf instead of routing it, so nothing else would notice a cut that does not separate its
    children.
    """
    D, block = bank.D, bank.T * bank.N  # one forest's internal boxes
    inner_rows = len(slots) * block
    box = np.zeros((inner_rows + len(points), 2 * D), np.float32)
    box[inner_rows:, :D] = -points
    box[inner_rows:, D:] = points
    for level in layout.levels:
        box[layout.inner_row[level]] = np.maximum(
            box.take(layout.left_row[level], axis=0), box.take(layout.right_row[level], axis=0)
        )
    flat = box.reshape(-1)
    left_high = flat.take(layout.left_row * (2 * D) + D + layout.cut_dims)
    right_low = -flat.take(layout.right_row * (2 * D) + layout.cut_dims)
    if not ((left_high <= layout.cut_values) & (layout.cut_values < right_low)).all():
        raise ValueError("corrupt RCF checkpoint (a cut does not separate its children)")
    for i, slot in enumerate(slots.tolist()):  # a forest's trees are consecutive in the bank
        bank.box[slot * block : (slot + 1) * block] = box[i * block : (i + 1) * block]


def _first_of_each(leaf: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """The distinct values of ``leaf`` (sorted), where each first occurs, and how often."""
    small = len(leaf) and leaf.max() < 1 << 16  # a stable sort of 16-bit keys is a radix sort
    order = np.argsort(leaf.astype(np.uint16) if small else leaf, kind="stable")
    ordered = leaf[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]])) if len(leaf) else order
    return ordered[starts], order[starts], np.diff(np.append(starts, len(leaf)))


def _restore_boxes(bank: TreeBank, trees: IntArray, leaves: IntArray, points: F32Array) -> None:
    """The trees' bounding boxes, bottom-up from the leaves' ``points``.

    Why a scratch array: it holds every node's box, leaves included (the bank keeps only the
    internal nodes'), so that each level is one gather of both children's boxes.
    """
    M = bank.M
    position = np.full(bank.capacity * bank.T, -1, np.int64)
    position[trees] = np.arange(len(trees))

    def row(node: IntArray) -> IntArray:
        return position[node // M] * M + node % M

    scratch = np.empty((len(trees) * M, 2 * bank.D), np.float32)
    scratch[row(leaves)] = np.concatenate([-points, points], 1)
    inner_nodes = []
    for nodes in reversed(_levels(bank, trees)):
        inner = nodes[~bank.is_leaf(nodes)]
        scratch[row(inner)] = scratch.take(row(bank.children(inner, inner // M)), axis=0).max(1)
        inner_nodes.append(inner)
    if inner_nodes:
        inner = np.concatenate(inner_nodes)
        bank.set_boxes(inner, inner // M, scratch[row(inner)])


@dataclass
class _Layout:
    """The internal nodes of trees restored from level order, and where their boxes are computed:
    rows of :func:`_restore_level_boxes`' scratch array (internal nodes as in the bank, then the
    leaves in level order)."""

    inner_row: IntArray  # per internal node
    left_row: IntArray  # per internal node: its left child's row
    right_row: IntArray  # per internal node: its right child's row
    cut_dims: IntArray  # per internal node
    cut_values: F32Array
    levels: list[IntArray]  # the internal nodes (indices into the above), level by level, deepest first


def _restore_levels(
    bank: TreeBank, trees: IntArray, leaves_per_tree: IntArray, states: list[ForestState]
) -> _Layout:
    """The trees' nodes and cuts from their level-order bits (version 2).

    In level order the children of a tree's k-th internal node are its nodes 2k+1 and 2k+2: every
    node is placed with a few whole-array steps. Internal nodes take the ids 0, 1... and leaves
    N, N+1... of their tree in that order (what a fresh tree's free lists hand out next).
    """
    N, M = bank.N, bank.M
    bits = np.concatenate([state.shape_bits for state in states]).astype(bool)
    inners = np.maximum(leaves_per_tree - 1, 0)
    span = np.maximum(2 * leaves_per_tree - 1, 0)
    tree_first = np.cumsum(span) - span
    inner = np.flatnonzero(bits)
    if len(inner) != inners.sum():
        raise ValueError("corrupt RCF checkpoint (tree shape)")
    rank = np.arange(len(inner)) - np.repeat(np.cumsum(inners) - inners, inners)
    base = np.repeat(tree_first, inners)
    # each tree's internal nodes lie in it, and each comes before its children
    if ((inner < base) | (inner - base > 2 * rank)).any():
        raise ValueError("corrupt RCF checkpoint (tree shape)")
    left = base + 2 * rank + 1
    leaf = np.flatnonzero(~bits)
    local = np.empty(len(bits), np.int64)  # each node's id in its tree
    local[inner] = rank
    local[leaf] = (
        N + np.arange(len(leaf)) - np.repeat(np.cumsum(leaves_per_tree) - leaves_per_tree, leaves_per_tree)
    )
    owner = np.repeat(trees, inners)
    offset = owner * M
    dims = np.concatenate([state.cut_dims for state in states])
    values = np.concatenate([state.cut_values for state in states])
    bank.set_cut(offset + rank, owner, dims, values, offset + local[left], offset + local[left + 1])
    # every node but the roots is the child of one internal node: one write sets all parents
    parent = np.empty(len(bits), np.uint16)
    parent[left] = rank
    parent[left + 1] = rank
    bank.parent[np.repeat(trees * M, span) + local] = parent
    used = span > 0
    bank.n_free_nodes[trees] = N - inners
    bank.n_free_leaves[trees] = bank.S - leaves_per_tree
    roots = trees[used] * M + local[tree_first[used]]
    bank.root[trees[used]] = roots
    bank.set_parent(roots, trees[used], -1)

    # level d + 1 of a tree holds the children of its internal nodes of level d; those of each
    # level are a run of the tree's internal nodes (a tree's positions are sorted by level)
    levels = []
    first = tree_first[used]
    lo = count = np.searchsorted(inner, first)  # a tree's internal nodes start at index count
    hi = lo + bits[first]
    while len(lo):
        size = hi - lo
        levels.append(np.repeat(lo - np.cumsum(size) + size, size) + np.arange(int(size.sum())))
        lo = np.searchsorted(inner, first + 2 * (lo - count) + 1)
        hi = np.searchsorted(inner, first + 2 * (hi - count) + 1)
        going = hi > lo
        lo, hi, first, count = lo[going], hi[going], first[going], count[going]
    row = np.empty(len(bits), np.int64)  # each node's row in the scratch array of the boxes
    row[inner] = np.repeat(np.arange(len(trees)) * N, inners) + rank
    row[leaf] = len(trees) * N + np.arange(len(leaf))
    return _Layout(row[inner], row[left], row[left + 1], dims, values, levels[::-1])


def _restore_shapes(
    bank: TreeBank, trees: IntArray, leaves_per_tree: IntArray, states: list[ForestState]
) -> None:
    """The trees' nodes and cuts from their preorder bits.

    In preorder the left child follows its parent, and the right child is the next position of
    the same tree whose running count (internal +1, leaf -1) equals the parent's.
    """
    N, M = bank.N, bank.M
    bits = np.concatenate([state.shape_bits for state in states])
    span = np.maximum(2 * leaves_per_tree - 1, 0)
    total = int(span.sum())
    pos_tree = np.repeat(np.arange(len(trees)), span)
    tree_first = np.cumsum(span) - span
    used = span > 0
    step = 2 * bits - 1
    running = np.cumsum(step) - step
    inner_rank = np.cumsum(bits) - bits
    leaf_rank = np.cumsum(1 - bits) - (1 - bits)
    for counter in (running, inner_rank, leaf_rank):
        counter -= np.repeat(counter[tree_first[used]], span[used])
    if (running < 0).any() or (
        np.bincount(pos_tree, bits, len(trees)) != np.maximum(leaves_per_tree - 1, 0)
    ).any():
        raise ValueError("corrupt RCF checkpoint (tree shape)")
    order = np.lexsort((np.arange(total), running, pos_tree))
    same = (pos_tree[order][1:] == pos_tree[order][:-1]) & (running[order][1:] == running[order][:-1])
    following = np.full(total, -1)
    following[order[:-1][same]] = order[1:][same]
    node_id = trees[pos_tree] * M + np.where(bits == 1, inner_rank, N + leaf_rank)
    inner = np.flatnonzero(bits)
    right = following[inner]
    if (right < 0).any():
        raise ValueError("corrupt RCF checkpoint (tree shape)")
    parents, owner = node_id[inner], trees[pos_tree[inner]]
    bank.set_cut(
        parents,
        owner,
        np.concatenate([state.cut_dims for state in states]),
        np.concatenate([state.cut_values for state in states]),
        node_id[inner + 1],
        node_id[right],
    )
    bank.set_parent(node_id[inner + 1], owner, parents)
    bank.set_parent(node_id[right], owner, parents)
    bank.n_free_nodes[trees] = N - np.maximum(leaves_per_tree - 1, 0)
    bank.n_free_leaves[trees] = bank.S - leaves_per_tree
    roots = node_id[tree_first[used]]
    bank.root[trees[used]] = roots
    bank.set_parent(roots, trees[used], -1)
