"""The detector's tuning: environment variables, defaults, and how many forests its memory holds."""

from __future__ import annotations

import pytest

from fanwatch.cloud.detector import ready_forests_for, thresholder_for
from fanwatch.cloud.settings import ENVIRONMENT, DetectorSettings
from fanwatch.rcf import ready_forest_bytes


def test_settings_come_from_the_environment_and_keep_their_defaults_otherwise() -> None:
    settings = DetectorSettings.from_environment({"SCORE_FLOOR": "3.5", "RCF_TREES": "50", "OTHER": "x"})
    assert (settings.score_floor, settings.num_trees) == (3.5, 50)
    assert settings.settle_seconds == DetectorSettings().settle_seconds
    assert settings.forest_shape == {"dimensions": 1, "shingle_size": 4, "num_trees": 50, "sample_size": 256}
    assert thresholder_for(settings).floor == 3.5
    assert set(ENVIRONMENT) == {f for f in DetectorSettings.__dataclass_fields__}


def test_a_switch_is_true_or_false() -> None:
    assert DetectorSettings().cache_fan_state is False
    assert DetectorSettings.from_environment({"FAN_STATE_CACHE": "True"}).cache_fan_state is True
    assert DetectorSettings.from_environment({"FAN_STATE_CACHE": "0"}).cache_fan_state is False


@pytest.mark.parametrize(
    ("name", "value"), [("RCF_TREES", "1.5"), ("SCORE_FLOOR", "high"), ("FAN_STATE_CACHE", "yes please")]
)
def test_a_value_of_the_wrong_type_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        DetectorSettings.from_environment({name: value})


def test_the_detector_keeps_only_as_many_forests_ready_as_its_memory_holds() -> None:
    forest = ready_forest_bytes(**DetectorSettings().forest_shape)
    assert 2**17 < forest < 8 * 2**20  # up to a few MB each: the bank, not the checkpoint
    ready = ready_forests_for(2048, forest)
    assert ready * forest <= 1024 * 2**20 < (ready + 1) * forest  # half of a 2 GB function
    assert ready_forests_for(10240, forest) >= 4 * ready
    assert ready_forests_for(128, 10**9) == 1  # always at least the fan being scored
