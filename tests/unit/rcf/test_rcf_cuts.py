"""AWS's random cut (a dimension in proportion to its range, a value uniform inside it), and the descent."""

from __future__ import annotations

import numpy as np

from fanwatch.rcf import _random
from fanwatch.rcf.tree import descend, random_cut


def test_cuts_pick_dimensions_in_proportion_to_their_range_and_stay_inside() -> None:
    n = 20_000
    lo = np.tile(np.array([0.0, 10.0, 5.0], np.float32), (n, 1))
    hi = np.tile(np.array([1.0, 10.0, 8.0], np.float32), (n, 1))  # ranges 1, 0, 3
    dim, value = random_cut(lo, hi, _random.uniform(1, _random.CUT, np.arange(n)))
    share = np.bincount(dim, minlength=3) / n
    assert abs(share[0] - 0.25) < 0.02 and share[1] == 0 and abs(share[2] - 0.75) < 0.02
    k = np.arange(n)
    assert ((lo[k, dim] <= value) & (value < hi[k, dim])).all()


def test_a_factor_at_the_very_top_still_cuts_below_the_maximum() -> None:
    lo = np.array([[0.0, 0.0]], np.float32)
    hi = np.array([[1.0, 0.0]], np.float32)
    dim, value = random_cut(lo, hi, np.array([1.0 + 1e-12]))
    assert dim[0] == 0 and value[0] < 1.0 and value[0] == np.nextafter(np.float32(1), np.float32(0))


def test_a_batched_descent_follows_each_points_own_path(small_forest, fan_stream) -> None:
    """Many walkers at once (those at a leaf drop out on the way) take the path each takes alone."""
    forest = small_forest(sample_size=64)
    forest.process(np.concatenate([fan_stream(400), [900.0, 2500.0, 1500.0]]))
    bank = forest._bank
    rng = np.random.default_rng(3)
    g = rng.integers(0, bank.T, 500)
    q = (1500 + rng.normal(0, 300, (500, bank.D))).astype(np.float32)
    walk = descend(bank, g, q)
    assert len(np.unique(walk.depth)) > 3  # leaves at many depths: walkers stop at different levels
    for i in range(0, 500, 7):
        alone = descend(bank, g[i : i + 1], q[i : i + 1])
        assert walk.depth[i] == alone.depth[0]
        assert np.array_equal(walk.nodes[: alone.depth[0] + 1, i], alone.nodes[: alone.depth[0] + 1, 0])
        assert (walk.nodes[alone.depth[0] :, i] == alone.leaf[0]).all()  # the leaf repeats to the end
