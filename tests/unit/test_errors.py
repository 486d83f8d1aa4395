"""Every exception the core, the edge, the fleet tools, the build, the telemetry contract and the shared
modules define derives from :class:`~fanwatch.errors.FanwatchError`, so ``except FanwatchError``
catches what fanwatch refuses and nothing else; the ones about a bad value are still ``ValueError``s."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from fanwatch.edge.config import ConfigError, parse_tach_config
from fanwatch.errors import FanwatchError

SRC = Path(__file__).resolve().parents[2] / "src"
#: The parts whose exceptions share the root (the cloud, rcf, demo and stand-in follow).
ROOTED = (
    "fanwatch/core",
    "fanwatch/edge",
    "fanwatch/fleet",
    "fanwatch/build.py",
    "fanwatch/telemetry.py",
    "fanwatch/limits.py",
    "fanwatch/errors.py",
)


def _exception_classes() -> list[tuple[str, str]]:
    """(module, class) of every class defined in the rooted parts whose bases look like exceptions."""
    found = []
    for part in ROOTED:
        path = SRC / part
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            module = ".".join(file.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
            for node in ast.parse(file.read_text()).body:
                if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name)
                    and (b.id.endswith(("Error", "Exception")) or b.id == "ProtocolViolation")
                    for b in node.bases
                ):
                    found.append((module, node.name))
    return found


#: Run by the device's bare python3 before any venv exists, so it may import nothing of fanwatch.
STANDALONE = {("fanwatch.edge.install", "InstallError")}
CLASSES = [c for c in _exception_classes() if c not in STANDALONE]


def test_the_walk_finds_the_exceptions() -> None:
    assert ("fanwatch.core.deployment.recipe", "RecipeError") in CLASSES
    assert ("fanwatch.build", "BuildError") in CLASSES
    assert len(CLASSES) >= 20


@pytest.mark.parametrize(("module", "name"), CLASSES, ids=[f"{m}.{n}" for m, n in CLASSES])
def test_every_exception_derives_from_fanwatch_error(module: str, name: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, BaseException)
    assert issubclass(cls, FanwatchError), f"{module}.{name} does not derive from FanwatchError"


def test_a_refusal_is_caught_as_fanwatch_error_and_as_value_error() -> None:
    with pytest.raises(FanwatchError) as caught:
        parse_tach_config({"backend": "simulated", "maxRpm": -1})
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ValueError)
