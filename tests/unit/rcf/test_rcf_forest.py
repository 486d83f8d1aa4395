"""Properties of one forest: anomalies score high, seeds reproduce, warm-up, attribution, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fanwatch.rcf import RandomCutForest


def test_a_point_far_outside_the_data_scores_high(small_forest, fan_stream) -> None:
    forest = small_forest()
    normal = forest.process(fan_stream(600))
    assert np.median(normal[200:]) < 1.2
    assert forest.score(5000.0) > 3.0
    assert forest.score(0.0) > 3.0
    assert forest.score(5000.0) > np.percentile(normal[200:], 99.5)


def test_the_same_seed_gives_the_same_scores_and_another_seed_does_not(small_forest, fan_stream) -> None:
    stream = fan_stream(500)
    first, again, other = small_forest(seed=7), small_forest(seed=7), small_forest(seed=8)
    a, b, c = first.process(stream), again.process(stream), other.process(stream)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert first.to_bytes() == again.to_bytes()


def test_process_is_score_and_update_point_by_point(small_forest, fan_stream) -> None:
    stream = fan_stream(300)
    batch, single, split = small_forest(), small_forest(), small_forest()
    expected = batch.process(stream)
    assert np.array_equal(expected, [single.score_and_update(v) for v in stream])
    assert np.array_equal(
        expected, np.concatenate([split.process(stream[:137]), split.process(stream[137:])])
    )
    batch._bank.check_invariants(batch._slot)


def test_score_is_the_score_before_update_and_learns_nothing(small_forest, fan_stream) -> None:
    stream = fan_stream(300)
    plain, probed = small_forest(), small_forest()
    plain.process(stream[:200])
    probed.process(stream[:200])
    peeked = [probed.score(v) for v in stream[200:220]]
    assert probed.to_bytes() == plain.to_bytes()
    scores = []
    for v in stream[200:220]:
        scores.append(probed.score(v))
        probed.update(v)
    assert scores == list(plain.process(stream[200:220]))
    assert peeked[0] == scores[0]


def test_scores_are_zero_until_output_after_shingled_points(small_forest, fan_stream) -> None:
    forest = small_forest(output_after=20, shingle_size=4)
    scores = forest.process(fan_stream(60))
    # the first 3 readings only fill the shingle; shingled points 0..19 warm the trees up
    assert (scores[: 3 + 20] == 0).all()
    assert (scores[3 + 20 :] > 0).all()
    assert forest.is_output_ready


def test_default_output_after_and_time_decay_follow_aws() -> None:
    forest = RandomCutForest(1, num_trees=2, sample_size=256)
    assert forest.output_after == 64
    assert forest.time_decay == pytest.approx(1 / 2560)


def test_the_sampler_keeps_sample_size_points_and_accepts_about_one_in_ten(fan_stream) -> None:
    forest = RandomCutForest(1, num_trees=30, sample_size=64, shingle_size=1)
    forest.process(fan_stream(64))
    before = forest._bank.slot_row[:30].copy()
    forest.process(fan_stream(640, seed=1))
    assert (forest._bank.n_slots[:30] == 64).all()
    # with lambda = 1/(10*64) about 10 % of new points enter each tree: nearly all were replaced
    replaced = (forest._bank.slot_row[:30] != before).mean()
    assert replaced > 0.6
    forest._bank.check_invariants(0)


def test_duplicates_share_a_leaf_and_score_low(small_forest, fan_stream) -> None:
    forest = small_forest(shingle_size=1)
    stream = np.concatenate([fan_stream(200), np.zeros(100), fan_stream(100)])
    scores = forest.process(stream)
    assert scores[205] > 2.0  # the stall starts
    assert scores[290] < 1.0  # a long stall is the new normal
    forest._bank.check_invariants(0)


def test_a_level_shift_is_learned_by_time_decay(fan_stream) -> None:
    forest = RandomCutForest(1, num_trees=20, sample_size=64)
    stream = np.concatenate([fan_stream(800), fan_stream(800, seed=1, level=1200)])
    scores = forest.process(stream)
    assert scores[801:806].max() > 2.5
    assert np.median(scores[1400:]) < 1.2


def test_attribution_points_at_the_input_and_direction(small_forest) -> None:
    rng = np.random.default_rng(3)
    forest = small_forest(3, shingle_size=2)
    forest.process(rng.normal([1500, 50, 40], [5, 1, 0.5], (500, 3)))
    high = forest.attribution([1500, 50, 90])
    assert np.argmax(high.high) == 2
    assert high.high[2] > 5 * max(high.high[0], high.high[1], *high.low)
    assert high.total == pytest.approx(forest.score([1500, 50, 90]), rel=1e-9)
    low = forest.attribution([1300, 50, 40])
    assert np.argmax(low.low) == 0 and low.low[0] > 5 * low.high.max()


def test_vector_input_is_checked_and_scalar_input_accepted(small_forest) -> None:
    forest = small_forest(2)
    forest.update([1500.0, 1500.0])
    forest.update(np.array([1500, 1501]))
    one = small_forest(1)
    one.update(1500)
    one.update([1500.0])
    one.update(np.float32(1500))
    assert one.seen == 3


@pytest.mark.parametrize(
    "bad",
    [math.nan, math.inf, -math.inf, "1500", None, [1500.0, 1.0], [], [[1500.0]], 1e39, True, object(), b"x"],
)
def test_bad_points_are_rejected_and_leave_the_model_unchanged(small_forest, bad, fan_stream) -> None:
    forest = small_forest()
    forest.process(fan_stream(100))
    before = forest.to_bytes()
    for call in (forest.update, forest.score, forest.score_and_update, forest.attribution):
        with pytest.raises(ValueError):
            call(bad)
    assert forest.to_bytes() == before


@pytest.mark.parametrize(
    "bad",
    [[[1.0, 2.0]], [1.0, math.nan], np.array(["a", "b"]), [[1.0], [2.0, 3.0]], np.ones((2, 2, 1))],
)
def test_a_batch_with_one_bad_point_changes_nothing(small_forest, bad, fan_stream) -> None:
    forest = small_forest()
    forest.process(fan_stream(100))
    before = forest.to_bytes()
    with pytest.raises(ValueError):
        forest.process(bad)
    assert forest.to_bytes() == before


@pytest.mark.parametrize(
    "options",
    [
        {"num_trees": 0},
        {"sample_size": 1},
        {"shingle_size": 0},
        {"output_after": 1000},
        {"output_after": -1},
        {"time_decay": -0.1},
        {"time_decay": math.nan},
        {"seed": "x"},
        {"num_trees": 2.5},
    ],
)
def test_bad_options_are_rejected(options) -> None:
    with pytest.raises(ValueError):
        RandomCutForest(1, **options)
    with pytest.raises(ValueError):
        RandomCutForest(0)
