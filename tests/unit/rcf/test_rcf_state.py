"""Checkpoints: identical continuation, compactness, golden files, corrupt data."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from fanwatch.rcf import RandomCutForest
from fanwatch.rcf.mapper import upgrade
from fanwatch.rcf.state import FORMAT_VERSION, decode, encode

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "rcf"


def _golden_stream() -> np.ndarray:
    """A vector stream with a stall (duplicates) and a spike, fixed forever for the golden files."""
    t = np.arange(700)
    rpm = np.round(1500 + 20 * np.sin(t / 50) + (t * 7919 % 13) - 6)
    rpm[300:330] = 0.0
    rpm[500] = 2400.0
    target = np.where(t < 400, 1500.0, 1200.0)
    return np.stack([rpm, target], 1)


def test_round_trip_continues_with_identical_scores(small_forest, fan_stream) -> None:
    stream = np.concatenate([fan_stream(400), np.zeros(40), fan_stream(300, seed=2)])
    forest = small_forest()
    forest.process(stream[:420])
    restored = RandomCutForest.from_bytes(forest.to_bytes())
    restored._bank.check_invariants(restored._slot)
    assert restored.seen == forest.seen and restored.seed == forest.seed
    assert restored.to_bytes() == forest.to_bytes()
    assert np.array_equal(restored.process(stream[420:]), forest.process(stream[420:]))
    assert restored.attribution(1600.0) == forest.attribution(1600.0)


@pytest.mark.parametrize("seen", [0, 2, 10, 40])
def test_round_trip_during_warm_up(small_forest, fan_stream, seen) -> None:
    stream = fan_stream(120)
    forest = small_forest(output_after=8)
    forest.process(stream[:seen])
    restored = RandomCutForest.from_bytes(forest.to_bytes())
    assert np.array_equal(restored.process(stream[seen:]), forest.process(stream[seen:]))


def test_checkpoint_is_a_small_fraction_of_the_resident_model(fan_stream) -> None:
    forest = RandomCutForest(1, num_trees=20, sample_size=256)
    forest.process(fan_stream(3000))
    data = forest.to_bytes()
    # per tree: 255 cuts (float32 + dim), 256 sample indices and their leaves, shape bits;
    # readings stored once
    assert len(data) < 20 * 2000
    assert len(data) < forest._bank.nbytes() / 5


def test_golden_checkpoint_of_version_1_still_loads_and_continues() -> None:
    """Files written by version 1; regenerate only on a deliberate format change (FANWATCH_REGOLD=1)."""
    stream = _golden_stream()
    path, expected_path = GOLDEN / "forest_v1.bin", GOLDEN / "forest_v1_scores.json"
    data = path.read_bytes()
    forest = RandomCutForest.from_bytes(data)
    forest._bank.check_invariants(forest._slot)
    assert (forest.dimensions, forest.shingle_size, forest.num_trees, forest.sample_size) == (2, 3, 8, 32)
    assert forest.seed == 11 and forest.seen == 450
    assert forest.process(stream[450:]).tolist() == json.loads(expected_path.read_text())


def test_a_version_1_checkpoint_upgrades_to_version_2_and_the_forest_scores_alike() -> None:
    """The migration: the golden version 1 file rewritten as version 2 (itself a golden file now)
    continues with the scores of version 1, bit for bit; a version 2 file upgrades to itself."""
    stream = _golden_stream()
    v1 = (GOLDEN / "forest_v1.bin").read_bytes()
    path = GOLDEN / "forest_v2.bin"
    if os.environ.get("FANWATCH_REGOLD") == "1":
        path.write_bytes(upgrade(v1))
    v2 = path.read_bytes()
    assert upgrade(v1) == v2 and upgrade(v2) == v2
    assert struct.unpack_from("<H", v2, 5)[0] == FORMAT_VERSION == 2
    forest = RandomCutForest.from_bytes(v2)
    forest._bank.check_invariants(forest._slot)
    assert forest.to_bytes() == v2
    assert (forest.seed, forest.seen) == (11, 450)
    expected = json.loads((GOLDEN / "forest_v1_scores.json").read_text())
    assert forest.process(stream[450:]).tolist() == expected
    assert RandomCutForest.from_bytes(v1).to_bytes() == v2  # every checkpoint written is version 2


def _bytes_of(small_forest, fan_stream) -> bytes:
    forest = small_forest()
    forest.process(fan_stream(300))
    return forest.to_bytes()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"",
        lambda b: b"NOTRCF" + b[6:],
        lambda b: b[:5] + struct.pack("<H", FORMAT_VERSION + 1) + b[7:],
        lambda b: b[:40],
        lambda b: b[: len(b) // 2],
        lambda b: b[:-1],
        lambda b: b + b"\x00",
    ],
    ids=["empty", "magic", "version", "header-only", "half", "short", "trailing"],
)
def test_corrupt_checkpoints_raise_value_error(small_forest, fan_stream, mangle) -> None:
    with pytest.raises(ValueError):
        RandomCutForest.from_bytes(mangle(_bytes_of(small_forest, fan_stream)))


def test_a_checkpoint_with_flipped_bytes_never_loads_silently_wrong(small_forest, fan_stream) -> None:
    import zlib

    data = _bytes_of(small_forest, fan_stream)
    header = 5 + 2 + 2 + 2 + 4 + 4 + 4 + 8 + 8 + 8 + 4 * 3
    body = bytearray(zlib.decompress(data[header:]))
    rng = np.random.default_rng(0)
    for at in rng.integers(8, len(body), 25):
        broken = bytearray(body)
        broken[at] ^= 0xFF
        try:
            RandomCutForest.from_bytes(data[:header] + zlib.compress(bytes(broken)))
        except ValueError:
            continue  # most corruptions are caught; values may also change without breaking structure


def test_not_bytes_is_rejected() -> None:
    with pytest.raises(ValueError):
        RandomCutForest.from_bytes("FWRCF")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["forest_v1.bin", "forest_v2.bin"])
def test_the_format_tables_decode_and_encode_the_golden_files_alike(name) -> None:
    """One description of the format serves both directions: decode then encode gives the bytes back."""
    data = (GOLDEN / name).read_bytes()
    state = decode(data)
    assert encode(state) == data
    assert len(state.samples_per_tree) == len(state.leaves_per_tree) == state.config.num_trees
    assert len(state.cut_dims) == len(state.cut_values) == state.shape_bits.sum()
    assert len(state.shape_bits) == (2 * state.leaves_per_tree - 1).clip(0).sum()
    points, _ = state.points()
    assert points.shape == (len(state.sequence), state.config.shingled_dimensions)
    if state.version == 2:
        assert state.sample_leaves is not None and len(state.sample_leaves) == len(state.sample_index)


def _mangled(small_forest, fan_stream, change) -> bytes:
    """A version 2 checkpoint whose decoded state ``change`` broke, encoded again (well formed)."""
    state = decode(_bytes_of(small_forest, fan_stream))
    change(state)
    return encode(state)


def _swap_first_leaves(state) -> None:
    leaves = state.sample_leaves
    a, b = int(np.flatnonzero(leaves != leaves[0])[0]), 0
    leaves[a], leaves[b] = leaves[b], leaves[a]


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.sample_leaves.__setitem__(0, s.leaves_per_tree[0]),  # a leaf the tree has not
        _swap_first_leaves,  # two samples at each other's leaves
        lambda s: s.cut_values.__setitem__(0, s.cut_values[0] + 1e6),  # a cut beside its node
        lambda s: s.shape_bits.__setitem__(slice(0, 2), [0, 1]),  # a root leaf with children
    ],
    ids=["no-such-leaf", "wrong-leaves", "cut", "shape"],
)
def test_a_version_2_checkpoint_whose_trees_do_not_hold_together_is_refused(
    small_forest, fan_stream, change
) -> None:
    """Version 2 names each sample's leaf instead of routing it: the restore checks what routing
    used to guarantee (every leaf has its samples, every cut separates its children)."""
    with pytest.raises(ValueError, match="corrupt"):
        RandomCutForest.from_bytes(_mangled(small_forest, fan_stream, change))
