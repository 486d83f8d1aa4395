"""Shared fixtures for every test tier (unit, functional, e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "tests" / "events"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def events_dir() -> Path:
    """Shared event files (Lambda events, MQTT payloads) used by several tiers."""
    return EVENTS
