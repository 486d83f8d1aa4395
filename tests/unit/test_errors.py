"""Every exception fanwatch defines derives from :class:`~fanwatch.errors.FanwatchError`, so
``except FanwatchError`` catches what fanwatch refuses and nothing else; the ones about a bad value are
still ``ValueError``s."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import fanwatch
from fanwatch.edge.config import ConfigError, parse_tach_config
from fanwatch.errors import FanwatchError


def _exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in a module of fanwatch (``__main__`` would run the CLI)."""
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(fanwatch.__path__, "fanwatch."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [
            value
            for value in vars(module).values()
            if inspect.isclass(value)
            and value.__module__ == module.__name__
            and issubclass(value, BaseException)
        ]
    return found


#: Run by the device's bare python3 before any venv exists, so it may import nothing of fanwatch.
STANDALONE = {"fanwatch.edge.install.InstallError"}
ALL = _exception_classes()
CLASSES = [c for c in ALL if f"{c.__module__}.{c.__name__}" not in STANDALONE]


def test_the_walk_finds_the_exceptions_of_every_part() -> None:
    names = {f"{c.__module__}.{c.__name__}" for c in CLASSES}
    assert {
        "fanwatch.core.deployment.recipe.RecipeError",
        "fanwatch.telemetry.ContractError",
        "fanwatch.build.BuildError",
        "fanwatch.cloud.records.PoisonRecord",
        "fanwatch.rcf.bank.BrokenTreeError",
    } <= names
    assert len(CLASSES) >= 40
    every = {f"{c.__module__}.{c.__name__}" for c in ALL}
    assert every >= STANDALONE, "a carve-out names a class that is gone"


@pytest.mark.parametrize("cls", CLASSES, ids=[f"{c.__module__}.{c.__name__}" for c in CLASSES])
def test_every_exception_derives_from_fanwatch_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, FanwatchError), (
        f"{cls.__module__}.{cls.__name__} does not derive from FanwatchError"
    )


def test_a_refusal_is_caught_as_fanwatch_error_and_as_value_error() -> None:
    with pytest.raises(FanwatchError) as caught:
        parse_tach_config({"backend": "simulated", "maxRpm": -1})
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ValueError)
