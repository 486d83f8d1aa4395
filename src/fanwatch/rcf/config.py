"""The parameters of a forest, validated once, with AWS's defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ForestConfig"]


@dataclass(frozen=True, kw_only=True)
class ForestConfig:
    """What every forest of a bank shares; ``dimensions`` counts the inputs of one reading."""

    dimensions: int = 1
    shingle_size: int = 4
    num_trees: int = 100
    sample_size: int = 256
    output_after: int | None = None
    time_decay: float | None = None

    def __post_init__(self) -> None:
        for name, low in (("dimensions", 1), ("shingle_size", 1), ("num_trees", 1), ("sample_size", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.sample_size > 32_767:
            raise ValueError(f"sample_size must be at most 32767, got {self.sample_size}")
        if self.shingled_dimensions > 255:
            raise ValueError(f"dimensions x shingle_size must be at most 255, got {self.shingled_dimensions}")
        if self.output_after is None:
            object.__setattr__(self, "output_after", max(1, self.sample_size // 4))
        elif (
            isinstance(self.output_after, bool)
            or not isinstance(self.output_after, int)
            or not 0 <= self.output_after <= self.sample_size
        ):
            raise ValueError(
                f"output_after must be an integer in [0, sample_size], got {self.output_after!r}"
            )
        if self.time_decay is None:
            object.__setattr__(self, "time_decay", 1.0 / (10.0 * self.sample_size))
        elif (
            not isinstance(self.time_decay, int | float)
            or not math.isfinite(self.time_decay)
            or (self.time_decay < 0)
        ):
            raise ValueError(f"time_decay must be a finite number >= 0, got {self.time_decay!r}")

    @property
    def shingled_dimensions(self) -> int:
        """Length of the vector a tree sees: ``shingle_size`` readings of ``dimensions`` values."""
        return self.dimensions * self.shingle_size

    @property
    def warmup(self) -> int:
        """Points seen before the first shingled point exists (they only fill the shingle)."""
        return self.shingle_size - 1

    @property
    def lam(self) -> float:
        """The time decay as a float (never None after validation)."""
        assert self.time_decay is not None
        return float(self.time_decay)

    @property
    def ready_after(self) -> int:
        """Shingled points the trees must hold before scores are reported (never None)."""
        assert self.output_after is not None
        return int(self.output_after)
