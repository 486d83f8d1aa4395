"""Thresholded grading: the floor while warming up, then mean + k·sd of the fan's own normal scores."""

from __future__ import annotations

import random

import pytest

from fanwatch.cloud.grading import Grader, ScoreStats


def test_the_floor_applies_until_the_statistics_are_warm() -> None:
    grader = Grader(floor=1.5, k=3.0, warmup=10)
    stats = ScoreStats()
    for _ in range(9):
        assert grader.grade(stats, 0.7, 1500.0) == (False, 1.5)
    assert grader.grade(stats, 1.6, 1500.0)[0] is True


def test_a_noisy_fan_earns_a_higher_threshold_than_a_quiet_one() -> None:
    rng = random.Random(1)
    grader = Grader(floor=1.0, k=3.0, warmup=20, half_life=200)
    quiet, noisy = ScoreStats(), ScoreStats()
    for _ in range(2000):
        grader.grade(quiet, 0.6 + rng.gauss(0, 0.05), 1500.0)
        grader.grade(noisy, 0.9 + rng.gauss(0, 0.3), 1500.0)
    assert grader.threshold(quiet) == pytest.approx(1.0)  # mean + 3 sd ≈ 0.75: the floor wins
    assert 1.6 < grader.threshold(noisy) < 2.4


def test_anomalous_scores_do_not_teach_the_fan_that_faults_are_normal() -> None:
    grader = Grader(floor=1.5, warmup=0)
    stats = ScoreStats()
    for _ in range(100):
        grader.grade(stats, 0.7, 1500.0)
    before = (stats.mean, stats.var, stats.count, stats.rpm)
    for _ in range(500):
        assert grader.grade(stats, 7.0, 0.0)[0]  # a long stall stays anomalous
    assert (stats.mean, stats.var, stats.count, stats.rpm) == before


def test_typical_speed_follows_the_normal_readings() -> None:
    grader = Grader(floor=1.5, warmup=0, half_life=10)
    stats = ScoreStats()
    for _ in range(200):
        grader.grade(stats, 0.6, 1200.0)
    assert stats.rpm == pytest.approx(1200.0)
    assert ScoreStats.from_item(stats.to_item()) == stats


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="floor"):
        Grader(floor=0)


def test_the_detector_keeps_only_as_many_forests_ready_as_its_memory_holds() -> None:
    from fanwatch.cloud.detector import ready_forests_for
    from fanwatch.rcf import ready_forest_bytes

    forest = ready_forest_bytes(num_trees=100, sample_size=256, shingle_size=4)
    assert 2 * 2**20 < forest < 8 * 2**20  # a few MB each: 1,000 ready forests would not fit in 2 GB
    ready = ready_forests_for(2048, forest)
    assert ready * forest <= 1024 * 2**20 < (ready + 1) * forest  # half of a 2 GB function
    assert ready_forests_for(10240, forest) >= 4 * ready
    assert ready_forests_for(128, 10**9) == 1  # always at least the fan being scored
