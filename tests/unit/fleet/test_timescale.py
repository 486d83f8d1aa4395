"""Fleet time: the factor from the option, the environment or the local fleet's default, and durations."""

from __future__ import annotations

import pytest

from fanwatch.environment import TIME_SCALE_VARIABLE
from fanwatch.fleet.timescale import LOCAL_TIME_SCALE, TimeScale, parse_duration


def test_against_aws_fleet_time_is_wall_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIME_SCALE_VARIABLE, raising=False)
    assert TimeScale.from_env() == TimeScale(1.0)
    assert TimeScale.from_env().wall(600) == 600


def test_a_local_fleet_takes_its_option_then_the_environment_then_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TIME_SCALE_VARIABLE, raising=False)
    assert TimeScale.for_local_fleet() == TimeScale(LOCAL_TIME_SCALE)
    monkeypatch.setenv(TIME_SCALE_VARIABLE, "30")
    assert TimeScale.for_local_fleet() == TimeScale(30.0)
    assert TimeScale.for_local_fleet().wall(600) == 20
    assert TimeScale.for_local_fleet(60.0) == TimeScale(60.0)


@pytest.mark.parametrize("text", ["fast", "0", "-2", "nan", "inf"])
def test_a_scale_that_is_not_a_positive_number_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv(TIME_SCALE_VARIABLE, text)
    with pytest.raises(ValueError, match=TIME_SCALE_VARIABLE):
        TimeScale.for_local_fleet()


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("30s", 30.0), ("10m", 600.0), ("2h", 7200.0), ("1d", 86400.0)]
)
def test_durations_read_with_their_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "ten minutes", "-5m", "nan", "infm"])
def test_a_duration_that_does_not_read_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
