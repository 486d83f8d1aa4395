"""Grading scores into alerts: max(floor, mean + z*sd) of normal scores, warm-up, commanded speed changes."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from fanwatch.rcf import Grade, ScoreStats, Thresholder, settling


def test_an_outlier_is_flagged_and_ordinary_scores_are_not() -> None:
    grader = Thresholder(z=4, floor=1.0, warmup=20)
    rng = np.random.default_rng(0)
    normal = rng.normal(0.7, 0.1, 500)
    assert grader.observe_many(normal).mean() < 0.01
    assert grader.threshold() == pytest.approx(0.7 + 4 * 0.1, abs=0.05)
    assert grader.observe(3.5)


def test_the_floor_holds_for_a_very_quiet_stream() -> None:
    grader = Thresholder(floor=0.8, warmup=5)
    grader.observe_many([0.5] * 50)
    assert grader.threshold() == 0.8
    assert not grader.observe(0.79)
    assert grader.observe(0.81)


def test_the_floor_alone_applies_until_the_statistics_are_warm() -> None:
    grader = Thresholder(floor=1.5, z=3.0, warmup=10)
    stats = ScoreStats()
    for _ in range(9):
        assert grader.grade(0.7, stats) == Grade(False, 1.5)
    assert grader.grade(1.6, stats) == Grade(True, 1.5)  # a fault early on is flagged


def test_nothing_is_flagged_or_learned_before_the_forest_is_ready() -> None:
    grader = Thresholder(warmup=0)
    assert not grader.observe(0.0)
    assert grader.stats == ScoreStats()


def test_a_noisy_stream_earns_a_higher_threshold_than_a_quiet_one() -> None:
    rng = random.Random(1)
    grader = Thresholder(floor=1.0, z=3.0, warmup=20, half_life=200)
    quiet, noisy = ScoreStats(), ScoreStats()
    for _ in range(2000):
        grader.grade(0.6 + rng.gauss(0, 0.05), quiet)
        grader.grade(0.9 + rng.gauss(0, 0.3), noisy)
    assert grader.threshold(quiet) == pytest.approx(1.0)  # mean + 3 sd ≈ 0.75: the floor wins
    assert 1.6 < grader.threshold(noisy) < 2.4
    assert grader.stats == ScoreStats()  # the thresholder's own stream was not touched


def test_anomalous_scores_do_not_teach_the_stream_that_faults_are_normal() -> None:
    grader = Thresholder(floor=1.5, warmup=0)
    stats = ScoreStats()
    for _ in range(100):
        grader.grade(0.7, stats)
    before = ScoreStats.from_item(stats.to_item())
    for _ in range(500):
        assert grader.grade(7.0, stats).anomalous  # a long stall stays anomalous
    assert stats == before


def test_settling_readings_are_neither_flagged_nor_learned() -> None:
    grader = Thresholder(warmup=5)
    grader.observe_many([0.6, 0.7] * 20)
    before = grader.threshold()
    assert not grader.observe(6.0, settling=True)
    assert grader.threshold() == before
    assert grader.observe(6.0)


def test_statistics_survive_a_round_trip_through_storage() -> None:
    grader = Thresholder(warmup=0)
    grader.observe_many(np.random.default_rng(2).normal(0.7, 0.1, 300))
    stored = ScoreStats.from_item(grader.stats.to_item())
    assert stored == grader.stats
    assert grader.threshold(stored) == grader.threshold()


def test_settling_marks_a_window_after_each_target_change() -> None:
    targets = [1500] * 5 + [1200] * 6 + [1500] * 3
    marks = settling(targets, window=3)
    assert marks.tolist() == [False] * 5 + [True] * 3 + [False] * 3 + [True] * 3
    assert not settling([1500] * 4, window=10).any()


@pytest.mark.parametrize("bad", [math.nan, math.inf, "1.0", None, True])
def test_bad_scores_are_rejected(bad) -> None:
    with pytest.raises(ValueError, match="score"):
        Thresholder().observe(bad)


@pytest.mark.parametrize(
    "options",
    [{"z": -1}, {"floor": math.nan}, {"floor": 0}, {"half_life": 0}, {"warmup": 1.5}, {"floor": "2"}],
)
def test_bad_options_are_rejected(options) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        Thresholder(**options)


def test_settling_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        settling([1.0, math.nan], window=3)
    with pytest.raises(ValueError):
        settling([1.0, 2.0], window=-1)
    with pytest.raises(ValueError):
        Thresholder().observe_many([1.0, 2.0], settling=[True])
