"""Versioned checkpoints of one forest: ``dump`` writes, ``load`` restores identical behaviour.

What is stored is only what cannot be derived (the hints of AWS's ``state/`` mappers, taken further):

* the readings once, not every shingle: the union of the sampled points' windows, float32;
* per tree, its samples as indices into the table of sampled sequence numbers, in sampler order
  (their weights are recomputed from the counter-based random stream);
* per tree, its shape as preorder bits (1 internal, 0 leaf) and each internal node's cut
  (dimension, float32 value). Leaves are not stored: every sampled point is routed down the
  restored cuts to its leaf; leaf masses and bounding boxes are recomputed.

Float arrays are byte-shuffled and the body is zlib-compressed. Layout of version 1: the
``_HEADER`` struct, the shingle buffer (float32), then the compressed body of sections in order.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

import numpy as np
import numpy.typing as npt

from . import _random, tree
from .bank import CUT, DIM, EMPTY, LEFT, RIGHT, TreeBank
from .config import ForestConfig

__all__ = ["FORMAT_VERSION", "MAGIC", "dump", "load", "read_header"]

MAGIC: Final = b"FWRCF"
FORMAT_VERSION: Final = 1
# magic, version, dimensions, shingle, trees, sample size, output after, time decay, seed, seen
_HEADER = struct.Struct("<5sHHHIIIdQq")

IntArray = npt.NDArray[np.int64]


def read_header(data: bytes) -> tuple[ForestConfig, int]:
    """The configuration and seed of a checkpoint (``ValueError`` when it is not one we can read)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"a checkpoint must be bytes, got {type(data).__name__}")
    if len(data) < _HEADER.size or bytes(data[:5]) != MAGIC:
        raise ValueError("not a fanwatch RCF checkpoint (bad magic)")
    _, version, dims, shingle, trees, sample, output_after, decay, seed, _ = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported RCF checkpoint version {version} (this build reads {FORMAT_VERSION})")
    config = ForestConfig(
        dimensions=dims,
        shingle_size=shingle,
        num_trees=trees,
        sample_size=sample,
        output_after=output_after,
        time_decay=decay,
    )
    return config, seed


def _shuffle(values: npt.NDArray[np.float32]) -> bytes:
    return np.ascontiguousarray(values, np.float32).reshape(-1).view(np.uint8).reshape(-1, 4).T.tobytes()


def _unshuffle(raw: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(raw, np.uint8).reshape(4, -1).T.copy().view(np.float32).reshape(-1)


def _levels(bank: TreeBank, trees: IntArray) -> list[tuple[IntArray, IntArray]]:
    """Breadth-first levels of the trees: (tree, node id) arrays, root level first."""
    live = bank.root[trees] != EMPTY
    g, ref = trees[live], bank.root[trees][live].astype(np.int64)
    levels = []
    while len(g):
        levels.append((g, ref))
        inner = ~bank.is_leaf(ref)
        kids = bank.walk[ref[inner], LEFT:].astype(np.int64)
        g, ref = np.repeat(g[inner], 2), kids.reshape(-1)
    return levels


def _window_rows(table: IntArray, k: int) -> tuple[IntArray, IntArray]:
    """The reading indices covered by the shingles of ``table`` and where each shingle's lie."""
    covered = table[:, None] + np.arange(k)
    readings = np.unique(covered)
    return readings, np.searchsorted(readings, covered)


def _leaves(bank: TreeBank, leaves_below: IntArray, base: int, ref: IntArray) -> IntArray:
    """Leaves under node ids ``ref`` (1 for a leaf itself); ``leaves_below`` counts from id ``base``."""
    return np.where(bank.is_leaf(ref), 1, leaves_below[ref - base])


def dump(bank: TreeBank, slot: int) -> bytes:
    """Serialize forest ``slot`` of ``bank``."""
    cfg, T, S, N, M = bank.config, bank.T, bank.S, bank.N, bank.M
    k, d = cfg.shingle_size, cfg.dimensions
    trees = slot * T + np.arange(T, dtype=np.int64)
    n_slots = bank.n_slots[trees].astype(np.int64)
    in_use = np.arange(S) < n_slots[:, None]
    rows = bank.slot_row[trees][in_use]
    table, slot_index = np.unique(bank.point_seq[rows], return_inverse=True)
    readings, where = _window_rows(table, k)
    values = np.zeros((len(readings), d), np.float32)
    first = np.unique(slot_index, return_index=True)[1]
    values[where.reshape(-1)] = bank.points[rows[first]].reshape(-1, d)

    # preorder positions: subtree sizes bottom-up, then positions top-down
    levels = _levels(bank, trees)
    base = slot * T * M
    leaves_below = np.zeros(T * M, np.int64)
    for _, ref in reversed(levels):
        A = ref[~bank.is_leaf(ref)]
        kids = bank.walk[A, LEFT:].astype(np.int64)
        leaves_below[A - base] = _leaves(bank, leaves_below, base, kids[:, 0]) + _leaves(
            bank, leaves_below, base, kids[:, 1]
        )
    roots = bank.root[trees].astype(np.int64)
    empty = roots == EMPTY
    n_leaves = np.where(empty, 0, _leaves(bank, leaves_below, base, np.where(empty, trees * M + N, roots)))
    span = np.maximum(2 * n_leaves - 1, 0)
    tree_start = np.concatenate([[0], np.cumsum(span)[:-1]])
    total = int(span.sum())
    bits = np.zeros(total, np.uint8)
    cut_pos, cut_addr = [], []
    pos = tree_start[levels[0][0] - slot * T] if levels else np.zeros(0, np.int64)
    for _, ref in levels:
        inner = ~bank.is_leaf(ref)
        bits[pos[inner]] = 1
        A = ref[inner]
        cut_pos.append(pos[inner])
        cut_addr.append(A)
        left_size = 2 * _leaves(bank, leaves_below, base, bank.walk[A, LEFT].astype(np.int64)) - 1
        here = pos[inner]
        pos = np.stack([here + 1, here + 1 + left_size], 1).reshape(-1)
    if cut_pos:
        order = np.argsort(np.concatenate(cut_pos))
        addr = np.concatenate(cut_addr)[order]
    else:
        addr = np.zeros(0, np.int64)
    index_type = np.uint16 if len(table) <= 1 << 16 else np.uint32
    sections = [
        n_slots.astype(np.uint16).tobytes(),
        n_leaves.astype(np.uint16).tobytes(),
        np.diff(table, prepend=0).astype(np.uint64).tobytes(),
        _shuffle(values),
        slot_index.astype(index_type).tobytes(),
        np.packbits(bits).tobytes(),
        bank.walk[addr, DIM].astype(np.uint8).tobytes(),
        _shuffle(bank.cut_values(addr)),
    ]
    body = struct.pack("<Q", len(table)) + b"".join(struct.pack("<Q", len(s)) + s for s in sections)
    header = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        d,
        k,
        T,
        S,
        cfg.ready_after,
        cfg.lam,
        int(bank.seed[slot]),
        int(bank.seen[slot]),
    )
    return header + bank.shingle[slot].astype(np.float32).tobytes() + zlib.compress(body, 6)


class _Reader:
    """Sequential sections of a checkpoint body; a short or malformed body is a ``ValueError``."""

    def __init__(self, body: bytes) -> None:
        self.body, self.at = body, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.body):
            raise ValueError("corrupt RCF checkpoint (truncated body)")
        chunk = self.body[self.at : self.at + size]
        self.at += size
        return chunk

    def count(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def section(self, dtype: npt.DTypeLike, expected: int | None = None) -> npt.NDArray[np.generic]:
        raw = self.take(self.count())
        itemsize = np.dtype(dtype).itemsize
        if len(raw) % itemsize or (expected is not None and len(raw) != expected * itemsize):
            raise ValueError("corrupt RCF checkpoint (section size)")
        return np.frombuffer(raw, dtype)


def load(bank: TreeBank, slot: int, data: bytes) -> None:
    """Restore a checkpoint written by :func:`dump` into the empty forest ``slot`` of ``bank``."""
    try:
        _load(bank, slot, data)
    except ValueError:
        bank.release(slot)
        raise
    except (IndexError, zlib.error, struct.error) as exc:
        bank.release(slot)
        raise ValueError(f"corrupt RCF checkpoint ({exc})") from None


def _load(bank: TreeBank, slot: int, data: bytes) -> None:
    cfg, T, S, N, M = bank.config, bank.T, bank.S, bank.N, bank.M
    k, d = cfg.shingle_size, cfg.dimensions
    fields = _HEADER.unpack_from(data)
    seen = fields[-1]
    shingle_bytes = 4 * (k - 1) * d
    bank.shingle[slot] = np.frombuffer(data, np.float32, (k - 1) * d, _HEADER.size).reshape(k - 1, d)
    inflate = zlib.decompressobj()
    reader = _Reader(inflate.decompress(bytes(data[_HEADER.size + shingle_bytes :])))
    if not inflate.eof or inflate.unused_data:
        raise ValueError("corrupt RCF checkpoint (body is truncated or followed by other data)")
    m = reader.count()
    n_slots = reader.section(np.uint16, T).astype(np.int64)
    n_leaves = reader.section(np.uint16, T).astype(np.int64)
    table = np.cumsum(reader.section(np.uint64, m)).astype(np.int64)
    readings, where = _window_rows(table, k)
    values = _unshuffle(reader.take(reader.count())).reshape(-1, d)
    if len(values) != len(readings) or (n_slots > S).any() or (n_leaves > n_slots).any():
        raise ValueError("corrupt RCF checkpoint (inconsistent sizes)")
    index_type = np.uint16 if m <= 1 << 16 else np.uint32
    slot_index = reader.section(index_type, int(n_slots.sum())).astype(np.int64)
    span = np.maximum(2 * n_leaves - 1, 0)
    bits = np.unpackbits(reader.section(np.uint8).astype(np.uint8))[: int(span.sum())].astype(np.int64)
    n_inner = int(bits.sum())
    dims = reader.section(np.uint8, n_inner).astype(np.int64)
    vals = _unshuffle(reader.take(reader.count()))
    if (
        len(vals) != n_inner
        or (dims >= bank.D).any()
        or (slot_index >= m).any()
        or reader.at != len(reader.body)
    ):
        raise ValueError("corrupt RCF checkpoint (inconsistent cuts)")
    bank.seen[slot] = seen

    # the points, one store row per sampled sequence number
    rows = bank.store_points(values[where].reshape(m, bank.D), table)
    trees = slot * T + np.arange(T, dtype=np.int64)
    slot_tree = np.repeat(trees, n_slots)
    slot_pos = np.arange(len(slot_tree)) - np.repeat(np.cumsum(n_slots) - n_slots, n_slots)
    slot_rows = rows[slot_index]
    bank.slot_row[slot_tree, slot_pos] = slot_rows
    bank.n_slots[trees] = n_slots
    bank.tree_mass[trees] = n_slots
    u = _random.uniform(bank.seed[slot], _random.SAMPLER, slot_tree % T, table[slot_index])
    bank.slot_weight[slot_tree, slot_pos] = (-cfg.lam * table[slot_index] + np.log(-np.log(u))).astype(
        np.float32
    )
    full = trees[n_slots >= S]
    if len(full):
        biggest = np.argmax(bank.slot_weight[full], 1)
        bank.threshold_slot[full] = biggest
        bank.threshold[full] = bank.slot_weight[full, biggest]

    # the shapes: in preorder the left child follows its parent, and the right child is the next
    # position of the same tree whose running count (internal +1, leaf -1) equals the parent's
    total = int(span.sum())
    pos_tree = np.repeat(trees, span)
    tree_first = np.cumsum(span) - span
    used = span > 0
    step = 2 * bits - 1
    running = np.cumsum(step) - step
    inner_rank = np.cumsum(bits) - bits
    leaf_rank = np.cumsum(1 - bits) - (1 - bits)
    for counter in (running, inner_rank, leaf_rank):
        counter -= np.repeat(counter[tree_first[used]], span[used])
    if (running < 0).any() or (
        np.bincount(pos_tree - slot * T, bits, T) != np.maximum(n_leaves - 1, 0)
    ).any():
        raise ValueError("corrupt RCF checkpoint (tree shape)")
    order = np.lexsort((np.arange(total), running, pos_tree))
    same = (pos_tree[order][1:] == pos_tree[order][:-1]) & (running[order][1:] == running[order][:-1])
    following = np.full(total, -1)
    following[order[:-1][same]] = order[1:][same]
    ref_of = pos_tree * M + np.where(bits == 1, inner_rank, N + leaf_rank)
    inner = np.flatnonzero(bits)
    right = following[inner]
    if (right < 0).any():
        raise ValueError("corrupt RCF checkpoint (tree shape)")
    A = ref_of[inner]
    bank.walk[A, DIM] = dims
    bank.walk[A, CUT] = vals.view(np.int32)
    for side, child in ((LEFT, inner + 1), (RIGHT, right)):
        bank.walk[A, side] = ref_of[child]
        bank.parent[ref_of[child]] = A
    bank.n_free_nodes[trees] = N - np.maximum(n_leaves - 1, 0)
    bank.n_free_leaves[trees] = S - n_leaves
    roots = ref_of[tree_first[used]]
    bank.root[trees[used]] = roots
    bank.parent[roots] = -1

    # the leaves: route every sampled point down the cuts to its leaf
    slot_points = bank.points[slot_rows]
    leaf = tree.descend(bank, slot_tree, slot_points).leaf.astype(np.int64)
    bank.slot_leaf[slot_tree, slot_pos] = leaf
    keys, first, mass = np.unique(leaf, return_index=True, return_counts=True)
    if len(keys) != n_leaves.sum():
        raise ValueError("corrupt RCF checkpoint (samples do not match the leaves)")
    bank.leaf_row[keys] = slot_rows[first]
    bank.leaf_mass[keys] = mass
    if not (bank.points[bank.leaf_row[leaf]] == slot_points).all():
        raise ValueError("corrupt RCF checkpoint (samples do not match the leaves)")
    bank.box[keys] = np.concatenate([-slot_points[first], slot_points[first]], 1)
    # every stored point is held by its samples, and by the leaf it is the point of
    bank.point_ref[rows] = np.bincount(slot_index, minlength=m) + np.bincount(slot_index[first], minlength=m)

    # the bounding boxes, bottom-up
    for _, ref in reversed(_levels(bank, trees)):
        A = ref[~bank.is_leaf(ref)]
        bank.box[A] = bank.box.take(bank.walk[A, LEFT:], axis=0).max(1)
