"""AWS's random cut: a dimension in proportion to its range, a value uniform inside it."""

from __future__ import annotations

import numpy as np

from fanwatch.rcf import _random
from fanwatch.rcf.tree import random_cut


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
