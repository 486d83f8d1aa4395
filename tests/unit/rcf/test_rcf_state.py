"""Checkpoints: identical continuation, compactness, golden files, corrupt data."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from fanwatch.rcf import RandomCutForest
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
    # per tree: 255 cuts (float32 + dim), 256 sample indices, shape bits; readings stored once
    assert len(data) < 20 * 1700
    assert len(data) < forest._bank.nbytes() / 5


def test_golden_checkpoint_of_version_1_still_loads_and_continues() -> None:
    """Files written by version 1; regenerate only on a deliberate format change (FANWATCH_REGOLD=1)."""
    stream = _golden_stream()
    path, expected_path = GOLDEN / "forest_v1.bin", GOLDEN / "forest_v1_scores.json"
    if os.environ.get("FANWATCH_REGOLD") == "1":
        forest = RandomCutForest(2, shingle_size=3, num_trees=8, sample_size=32, seed=11)
        forest.process(stream[:450])
        path.write_bytes(forest.to_bytes())
        expected_path.write_text(json.dumps(forest.process(stream[450:]).tolist()))
    data = path.read_bytes()
    forest = RandomCutForest.from_bytes(data)
    assert forest.to_bytes() == data
    assert (forest.dimensions, forest.shingle_size, forest.num_trees, forest.sample_size) == (2, 3, 8, 32)
    assert forest.seed == 11 and forest.seen == 450
    assert forest.process(stream[450:]).tolist() == json.loads(expected_path.read_text())


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


def test_the_format_tables_decode_and_encode_the_golden_file_alike() -> None:
    """One description of the format serves both directions: decode then encode gives the bytes back."""
    data = (GOLDEN / "forest_v1.bin").read_bytes()
    state = decode(data)
    assert encode(state) == data
    assert len(state.samples_per_tree) == len(state.leaves_per_tree) == state.config.num_trees
    assert len(state.cut_dims) == len(state.cut_values) == state.shape_bits.sum()
    assert len(state.shape_bits) == (2 * state.leaves_per_tree - 1).clip(0).sum()
    points, _ = state.points()
    assert points.shape == (len(state.sequence), state.config.shingled_dimensions)
