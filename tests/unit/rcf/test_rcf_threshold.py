"""Grading scores into alerts: max(floor, mean + z*sd), warm-up, and commanded speed changes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fanwatch.rcf import Thresholder, settling


def test_an_outlier_is_flagged_and_ordinary_scores_are_not() -> None:
    grader = Thresholder(z=3, floor=0.8, warmup=20)
    rng = np.random.default_rng(0)
    normal = rng.normal(0.7, 0.1, 500)
    assert grader.observe_many(normal).mean() < 0.01
    assert grader.threshold == pytest.approx(max(0.8, 0.7 + 3 * 0.1), abs=0.05)
    assert grader.observe(3.5)


def test_the_floor_holds_for_a_very_quiet_stream() -> None:
    grader = Thresholder(floor=0.8, warmup=5)
    grader.observe_many([0.5] * 50)
    assert grader.threshold == 0.8
    assert not grader.observe(0.79)
    assert grader.observe(0.81)


def test_nothing_is_flagged_during_warm_up_or_before_the_forest_is_ready() -> None:
    grader = Thresholder(warmup=10)
    assert not grader.observe(0.0)
    assert not grader.observe_many([5.0] * 10).any()


def test_settling_readings_are_neither_flagged_nor_learned() -> None:
    grader = Thresholder(warmup=5)
    grader.observe_many([0.6, 0.7] * 20)
    before = grader.threshold
    assert not grader.observe(6.0, settling=True)
    assert grader.threshold == before
    assert grader.observe(6.0)


def test_settling_marks_a_window_after_each_target_change() -> None:
    targets = [1500] * 5 + [1200] * 6 + [1500] * 3
    marks = settling(targets, window=3)
    assert marks.tolist() == [False] * 5 + [True] * 3 + [False] * 3 + [True] * 3
    assert not settling([1500] * 4, window=10).any()


@pytest.mark.parametrize("bad", [math.nan, math.inf, "1.0", None])
def test_bad_scores_are_rejected(bad) -> None:
    with pytest.raises(ValueError):
        Thresholder().observe(bad)


@pytest.mark.parametrize("options", [{"z": -1}, {"floor": math.nan}, {"horizon": 0}, {"warmup": 1.5}])
def test_bad_options_are_rejected(options) -> None:
    with pytest.raises(ValueError):
        Thresholder(**options)


def test_settling_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        settling([1.0, math.nan], window=3)
    with pytest.raises(ValueError):
        settling([1.0, 2.0], window=-1)
    with pytest.raises(ValueError):
        Thresholder().observe_many([1.0, 2.0], settling=[True])
