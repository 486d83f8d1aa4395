"""Small forests and streams for the RCF unit tests (fast: tens of trees, short streams)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fanwatch.rcf import RandomCutForest

SMALL = {"num_trees": 12, "sample_size": 32}


def make_fan_stream(n: int, *, seed: int = 0, level: float = 1500.0, noise: float = 5.0) -> np.ndarray:
    """A 1 Hz RPM stream: slow drift plus noise, quantised like a tachometer's readings."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.normal(0, 0.2, n))
    return np.round(level + drift + rng.normal(0, noise, n))


@pytest.fixture
def small_forest() -> Callable[..., RandomCutForest]:
    def make(dimensions: int = 1, **options: object) -> RandomCutForest:
        return RandomCutForest(dimensions, **{**SMALL, **options})  # type: ignore[arg-type]

    return make


@pytest.fixture
def fan_stream() -> Callable[..., np.ndarray]:
    return make_fan_stream
