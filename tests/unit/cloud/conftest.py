"""Loaders for the shared event files under tests/events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def load_event(events_dir: Path) -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((events_dir / name).read_text())

    return load
