"""Shared fixtures for every test tier (unit, functional, e2e)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "tests" / "events"
#: The GDK CLI is not on PyPI: CI (.ci/run) installs ../shared/tools/gdk-*.whl into .gdk-venv and
#: points GDK_CLI at it; elsewhere set GDK_CLI or put gdk on PATH.
GDK_CLI = os.environ.get("GDK_CLI") or shutil.which("gdk")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def events_dir() -> Path:
    """Shared event files (Lambda events, MQTT payloads) used by several tiers."""
    return EVENTS


@pytest.fixture(scope="session")
def gdk_cli() -> Path:
    """The real GDK CLI's ``gdk`` executable; the test is skipped, with the reason, where it is absent."""
    if GDK_CLI is None:
        pytest.skip(
            "the GDK CLI is not installed: .ci/run installs ../shared/tools/gdk-*.whl and sets GDK_CLI; "
            "elsewhere set GDK_CLI or put gdk on PATH"
        )
    return Path(GDK_CLI)


@pytest.fixture
def gdk_checkout(tmp_path: Path) -> Path:
    """A copy of what gdk needs (recipes, gdk projects, sources), with the project's venv beside it."""
    root = tmp_path / "repo"
    repo = REPO
    shutil.copytree(repo / "recipes", root / "recipes")
    shutil.copytree(repo / "components", root / "components", symlinks=True)
    shutil.copytree(
        repo / "src" / "fanwatch", root / "src" / "fanwatch", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(repo / "gdk-config.json", root)
    (root / "recipe.yaml").symlink_to("recipes/fanwatch.Tachometer.yaml")
    (root / ".venv").symlink_to(Path(sys.prefix))
    return root
