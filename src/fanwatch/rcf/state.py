"""Versioned checkpoints of forests: the format written down once, and a mapper to and from the bank.

As AWS's ``state/`` package: a checkpoint is decoded into a :class:`ForestState` (plain arrays, what
the format holds), and a mapper turns states into forests of a bank (:func:`restore`, many at once)
and forests into states (:func:`capture`). The layout of each version is the tables below; both
:func:`encode` and :func:`decode` walk them, so there is no second description to keep in step.

What is stored is only what cannot be derived cheaply:

* the readings once, not every shingle: the union of the sampled points' windows, float32;
* per tree, its samples as indices into the table of sampled sequence numbers, in sampler order
  (their weights are recomputed from the counter-based random stream);
* per tree, its shape as bits (1 internal, 0 leaf) and each internal node's cut (dimension,
  float32 value). Version 1 lists the nodes in preorder and no leaves: a restore routes every
  sampled point down the cuts to find its leaf. Version 2 lists them level by level (breadth
  first) and stores the leaf each sample sits at: in level order the children of the k-th internal
  node are nodes 2k+1 and 2k+2, so a restore places every node and every sample without a walk
  or a sort (about ten times faster). Leaf masses and bounding boxes are recomputed.

A version 1 checkpoint still loads (:func:`restore` routes its points); :func:`upgrade` rewrites
one as version 2, and every checkpoint written is version 2.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from . import _random, tree
from .bank import EMPTY, TreeBank
from .config import ForestConfig

__all__ = [
    "BODY",
    "FORMAT_VERSION",
    "HEADER",
    "MAGIC",
    "ForestState",
    "Header",
    "Section",
    "capture",
    "decode",
    "dump",
    "encode",
    "load",
    "read_header",
    "restore",
    "upgrade",
]

MAGIC: Final = b"FWRCF"
#: zlib level of each version's body: for version 2, 1 compresses within 2 % of 6, twice as fast
_COMPRESSION: Final = {1: 6, 2: 1}
#: The version every checkpoint is written in.
FORMAT_VERSION: Final = 2


class Header(NamedTuple):
    """The fields of :data:`HEADER`, in order (the same in every version)."""

    magic: bytes  # MAGIC
    version: int  # a key of BODY
    dimensions: int
    shingle_size: int
    num_trees: int
    sample_size: int
    output_after: int
    time_decay: float
    seed: int
    seen: int  # points given to the forest so far


#: The header of a checkpoint, little-endian (:class:`Header`), then the shingle buffer:
#: ``(shingle_size - 1) x dimensions`` float32, the readings a forest holds before its next point.
HEADER: Final = struct.Struct("<5sHHHIIIdQq")


@dataclass(frozen=True)
class Section:
    """One array of a checkpoint body: stored as a uint64 byte length, then the array's bytes."""

    name: str
    #: numpy dtype of the stored values (little-endian); "index": uint16 while the checkpoint has
    #: at most 65,536 sampled sequence numbers, else uint32; "leaf": uint8 while a tree holds at
    #: most 256 leaves (sample_size <= 256), else uint16.
    dtype: str
    #: float32 arrays are byte-shuffled (all first bytes, then all second bytes...): it compresses
    #: about a third better.
    shuffled: bool
    #: How many values, and what they are.
    holds: str


_SAMPLES = (
    Section("samples_per_tree", "<u2", False, "num_trees: the points in each tree's sampler"),
    Section("leaves_per_tree", "<u2", False, "num_trees: the distinct points (leaves) of each tree"),
    Section(
        "sequence_steps",
        "<u8",
        False,
        "samples: the sampled sequence numbers, sorted and distinct, each as its step from the "
        "one before (the first from 0)",
    ),
    Section(
        "readings",
        "<f4",
        True,
        "the readings the sampled shingles cover, each once, oldest first (x dimensions)",
    ),
    Section(
        "sample_index",
        "index",
        False,
        "sum(samples_per_tree): each tree's samples in sampler-slot order, as indices into the "
        "sequence numbers",
    ),
)
_CUTS = (
    Section("cut_dims", "u1", False, "the internal nodes in shape_bits order: the cut's dimension"),
    Section("cut_values", "<f4", True, "the same nodes: the cut's value"),
)

#: The body of each version, after the header and the shingle buffer: zlib-compressed, a uint64
#: ``samples`` (the number of distinct sampled sequence numbers), then these sections in order.
BODY: Final = {
    1: (
        *_SAMPLES,
        Section(
            "shape_bits",
            "u1",
            False,
            "each tree's nodes in preorder, 1 internal and 0 leaf (2 x leaves - 1 bits per tree), "
            "trees one after the other, packed 8 to a byte, most significant bit first",
        ),
        *_CUTS,
    ),
    2: (
        *_SAMPLES,
        Section(
            "shape_bits",
            "u1",
            False,
            "each tree's nodes level by level, each level left to right, 1 internal and 0 leaf "
            "(2 x leaves - 1 bits per tree), trees one after the other, packed 8 to a byte, most "
            "significant bit first",
        ),
        *_CUTS,
        Section(
            "sample_leaves",
            "leaf",
            False,
            "sum(samples_per_tree), in sample_index order: the leaf each sample sits at, as its "
            "rank among its tree's leaves in shape_bits order",
        ),
    ),
}

IntArray = npt.NDArray[np.int64]
F32Array = npt.NDArray[np.float32]


@dataclass
class ForestState:
    """One forest as a checkpoint holds it (the sections decoded, ``shape_bits`` unpacked)."""

    config: ForestConfig
    seed: int
    seen: int
    shingle: F32Array
    samples_per_tree: IntArray
    leaves_per_tree: IntArray
    sequence: IntArray  # the sampled sequence numbers (sorted, distinct)
    readings: F32Array
    sample_index: IntArray
    shape_bits: IntArray  # in preorder (version 1) or level order (version 2)
    cut_dims: IntArray
    cut_values: F32Array
    version: int = FORMAT_VERSION
    sample_leaves: IntArray | None = None  # version 2: each sample's leaf rank in its tree

    def points(self) -> tuple[F32Array, IntArray]:
        """The shingled point of each sampled sequence number, ``(samples, D)``, and where in
        :attr:`readings` each shingle's readings lie."""
        where = _windows(self.sequence, self.config.shingle_size)
        return self.readings[where].reshape(len(self.sequence), self.config.shingled_dimensions), where


def _windows(sequence: IntArray, k: int) -> IntArray:
    """Where the ``k`` readings of each sampled shingle lie in the union of all their windows.

    Why no sort: ``sequence`` is sorted and distinct, so the window of a sequence number starts
    ``min(step from the one before, k)`` readings after the one before it starts.
    """
    steps = np.minimum(np.diff(sequence), k)
    start = np.concatenate([np.zeros(min(1, len(sequence)), np.int64), np.cumsum(steps)])
    return start[:, None] + np.arange(k)


# ---- bytes <-> state ---------------------------------------------------------------------------


def read_header(data: bytes) -> tuple[ForestConfig, int]:
    """The configuration and seed of a checkpoint (``ValueError`` when it is not one we can read)."""
    header = _header(data)
    return _config(header), header.seed


def _header(data: bytes) -> Header:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"a checkpoint must be bytes, got {type(data).__name__}")
    if len(data) < HEADER.size or bytes(data[:5]) != MAGIC:
        raise ValueError("not a fanwatch RCF checkpoint (bad magic)")
    header = Header(*HEADER.unpack_from(data))
    if header.version not in BODY:
        raise ValueError(
            f"unsupported RCF checkpoint version {header.version} (this build reads {sorted(BODY)})"
        )
    return header


def _config(header: Header) -> ForestConfig:
    return ForestConfig(
        dimensions=header.dimensions,
        shingle_size=header.shingle_size,
        num_trees=header.num_trees,
        sample_size=header.sample_size,
        output_after=header.output_after,
        time_decay=header.time_decay,
    )


def _dtype(section: Section, samples: int, sample_size: int) -> str:
    """The stored dtype of ``section`` in a checkpoint of ``samples`` sequence numbers."""
    if section.dtype == "index":
        return "<u2" if samples <= 1 << 16 else "<u4"
    if section.dtype == "leaf":
        return "u1" if sample_size <= 1 << 8 else "<u2"
    return section.dtype


def encode(state: ForestState) -> bytes:
    """The checkpoint bytes of ``state``, in its version (:func:`capture` gives the current one)."""
    cfg = state.config
    arrays = {
        "samples_per_tree": state.samples_per_tree,
        "leaves_per_tree": state.leaves_per_tree,
        "sequence_steps": np.diff(state.sequence, prepend=0),
        "readings": state.readings,
        "sample_index": state.sample_index,
        "shape_bits": np.packbits(state.shape_bits.astype(np.uint8)),
        "cut_dims": state.cut_dims,
        "cut_values": state.cut_values,
        "sample_leaves": state.sample_leaves,
    }
    body = [struct.pack("<Q", len(state.sequence))]
    for section in BODY[state.version]:
        dtype = _dtype(section, len(state.sequence), cfg.sample_size)
        raw = np.ascontiguousarray(arrays[section.name]).astype(dtype).reshape(-1)
        stored = (
            raw.view(np.uint8).reshape(-1, raw.itemsize).T.tobytes() if section.shuffled else raw.tobytes()
        )
        body.append(struct.pack("<Q", len(stored)) + stored)
    header = HEADER.pack(
        *Header(
            magic=MAGIC,
            version=state.version,
            dimensions=cfg.dimensions,
            shingle_size=cfg.shingle_size,
            num_trees=cfg.num_trees,
            sample_size=cfg.sample_size,
            output_after=cfg.ready_after,
            time_decay=cfg.lam,
            seed=state.seed,
            seen=state.seen,
        )
    )
    shingle = state.shingle.astype("<f4").tobytes()
    return header + shingle + zlib.compress(b"".join(body), _COMPRESSION[state.version])


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

    def section(self, section: Section, dtype: str) -> npt.NDArray[np.generic]:
        raw = self.take(self.count())
        itemsize = np.dtype(dtype).itemsize
        if len(raw) % itemsize:
            raise ValueError(f"corrupt RCF checkpoint (size of section {section.name})")
        if section.shuffled:
            return np.frombuffer(raw, np.uint8).reshape(itemsize, -1).T.copy().view(dtype).reshape(-1)
        return np.frombuffer(raw, dtype)


def decode(data: bytes) -> ForestState:
    """The state a checkpoint holds (``ValueError`` when it is not a well-formed checkpoint)."""
    header = _header(data)
    config = _config(header)
    T, S, d, k = config.num_trees, config.sample_size, config.dimensions, config.shingle_size
    shingle_end = HEADER.size + 4 * (k - 1) * d
    if len(data) < shingle_end:
        raise ValueError("corrupt RCF checkpoint (truncated shingle)")
    shingle = np.frombuffer(data, "<f4", (k - 1) * d, HEADER.size).astype(np.float32).reshape(k - 1, d)
    try:
        inflate = zlib.decompressobj()
        body = inflate.decompress(bytes(data[shingle_end:]))
    except zlib.error as exc:
        raise ValueError(f"corrupt RCF checkpoint ({exc})") from None
    if not inflate.eof or inflate.unused_data:
        raise ValueError("corrupt RCF checkpoint (body is truncated or followed by other data)")
    reader = _Reader(body)
    samples = reader.count()
    if samples > T * S:
        raise ValueError("corrupt RCF checkpoint (more samples than the trees hold)")
    arrays = {s.name: reader.section(s, _dtype(s, samples, S)) for s in BODY[header.version]}
    if reader.at != len(body):
        raise ValueError("corrupt RCF checkpoint (data after the last section)")
    if len(arrays["readings"]) % d:
        raise ValueError("corrupt RCF checkpoint (readings are not whole points)")
    state = ForestState(
        config=config,
        seed=header.seed,
        seen=header.seen,
        shingle=shingle,
        samples_per_tree=arrays["samples_per_tree"].astype(np.int64),
        leaves_per_tree=arrays["leaves_per_tree"].astype(np.int64),
        sequence=np.cumsum(arrays["sequence_steps"]).astype(np.int64),
        readings=arrays["readings"].astype(np.float32).reshape(-1, d),
        sample_index=arrays["sample_index"].astype(np.int64),
        shape_bits=np.unpackbits(arrays["shape_bits"].astype(np.uint8)).astype(np.int64),
        cut_dims=arrays["cut_dims"].astype(np.int64),
        cut_values=arrays["cut_values"].astype(np.float32),
        version=header.version,
        sample_leaves=arrays["sample_leaves"].astype(np.int64) if "sample_leaves" in arrays else None,
    )
    _check_sizes(state, samples, T, S)
    return state


def _check_sizes(state: ForestState, samples: int, T: int, S: int) -> None:
    """The sections agree with each other and with the header (their contents are checked on restore)."""
    span = int(np.maximum(2 * state.leaves_per_tree - 1, 0).sum())
    D = state.config.shingled_dimensions
    steps = np.diff(state.sequence)
    if (steps <= 0).any():
        raise ValueError("corrupt RCF checkpoint (sequence numbers out of order)")
    readings = int(np.minimum(steps, state.config.shingle_size).sum()) + state.config.shingle_size
    readings = readings if len(state.sequence) else 0
    if (
        len(state.samples_per_tree) != T
        or len(state.leaves_per_tree) != T
        or len(state.sequence) != samples
        or state.readings.shape != (readings, state.config.dimensions)
        or (state.samples_per_tree > S).any()
        or (state.leaves_per_tree > state.samples_per_tree).any()
        or len(state.sample_index) != int(state.samples_per_tree.sum())
        or (state.sample_index >= samples).any()
        or len(state.shape_bits) < span
        or len(state.shape_bits) >= span + 8
    ):
        raise ValueError("corrupt RCF checkpoint (inconsistent sizes)")
    state.shape_bits = state.shape_bits[:span]
    inner = int(state.shape_bits.sum())
    if len(state.cut_dims) != inner or len(state.cut_values) != inner or (state.cut_dims >= D).any():
        raise ValueError("corrupt RCF checkpoint (inconsistent cuts)")
    if state.sample_leaves is not None and (
        len(state.sample_leaves) != len(state.sample_index)
        or (state.sample_leaves >= np.repeat(state.leaves_per_tree, state.samples_per_tree)).any()
    ):
        raise ValueError("corrupt RCF checkpoint (samples at leaves that do not exist)")


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
    where = _windows(sequence, k)
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
    header = _header(data)
    if header.version == FORMAT_VERSION:
        return bytes(data)
    bank = TreeBank(_config(header))
    slot = bank.acquire(header.seed)
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
