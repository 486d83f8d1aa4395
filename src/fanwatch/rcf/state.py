"""Versioned checkpoints of forests: the format, written down once.

As AWS's ``state/`` package: a checkpoint is decoded into a :class:`ForestState` (plain arrays, what
the format holds); :mod:`fanwatch.rcf.mapper` turns states into forests of a bank and back. The
layout of each version is the tables below; both :func:`encode` and :func:`decode` walk them, so
there is no second description to keep in step.

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

A version 1 checkpoint still loads (the mapper routes its points);
:func:`fanwatch.rcf.mapper.upgrade` rewrites one as version 2, and every checkpoint written is
version 2.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from .config import ForestConfig

__all__ = [
    "BODY",
    "FORMAT_VERSION",
    "HEADER",
    "MAGIC",
    "ForestState",
    "Header",
    "Section",
    "decode",
    "encode",
    "read_header",
    "read_version",
    "shingle_windows",
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
        where = shingle_windows(self.sequence, self.config.shingle_size)
        return self.readings[where].reshape(len(self.sequence), self.config.shingled_dimensions), where


def shingle_windows(sequence: IntArray, k: int) -> IntArray:
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


def read_version(data: bytes) -> int:
    """The format version a checkpoint is written in (``ValueError`` when we cannot read it)."""
    return int(_header(data).version)


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
