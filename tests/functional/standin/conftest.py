"""The embedded AWS stand-in, started per test (about a second once moto's services are loaded), with a
clock 20 times faster than the wall so that buffering and batching windows pass quickly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fanwatch.edge.clock import MonotonicClock, ScaledClock
from fanwatch.standin import EmbeddedAws

SPEED = 20.0


@pytest.fixture
def start_aws(tmp_path: Path) -> Iterator[Callable[..., EmbeddedAws]]:
    """``start_aws(**options)``: a started stand-in (options as :class:`EmbeddedAws`), stopped after."""
    started: list[EmbeddedAws] = []

    def start(**options: Any) -> EmbeddedAws:
        options.setdefault("clock", ScaledClock(MonotonicClock(), SPEED))
        options.setdefault("lake_dir", tmp_path / "lake")
        aws = EmbeddedAws.start(**options)
        aws.open()
        started.append(aws)
        return aws

    yield start
    for aws in started:
        aws.close()
