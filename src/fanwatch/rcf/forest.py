"""The public streaming Random Cut Forest of one stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import engine, mapper, state, tree
from .bank import TreeBank
from .config import ForestConfig
from .inputs import as_point, as_points

__all__ = ["Attribution", "RandomCutForest"]


@dataclass(frozen=True)
class Attribution:
    """Which inputs pushed a score: ``high[i]`` (reading i was unusually high) and ``low[i]``.

    Each is summed over the positions of the shingle, so ``total`` equals the anomaly score.
    """

    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]

    @property
    def total(self) -> float:
        return float(self.high.sum() + self.low.sum())


class RandomCutForest:
    """A streaming RCF with the semantics of AWS's random-cut-forest-by-aws, in numpy.

    Scores are about 1 or below for normal points and higher for anomalies (the ceiling is about
    log2(sample_size + 1)); they are 0.0 until ``output_after`` shingled points were seen. The
    same ``seed`` and the same stream give the same scores, also across :meth:`to_bytes`.
    """

    def __init__(
        self,
        dimensions: int = 1,
        *,
        shingle_size: int = 4,
        num_trees: int = 100,
        sample_size: int = 256,
        output_after: int | None = None,
        time_decay: float | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        config = ForestConfig(
            dimensions=dimensions,
            shingle_size=shingle_size,
            num_trees=num_trees,
            sample_size=sample_size,
            output_after=output_after,
            time_decay=time_decay,
        )
        self._attach(TreeBank(config), int(seed))

    def _attach(self, bank: TreeBank, seed: int, slot: int | None = None) -> None:
        self._bank = bank
        self._slot = bank.acquire(seed) if slot is None else slot
        self.seed = seed

    @property
    def config(self) -> ForestConfig:
        return self._bank.config

    @property
    def dimensions(self) -> int:
        return self.config.dimensions

    @property
    def shingle_size(self) -> int:
        return self.config.shingle_size

    @property
    def num_trees(self) -> int:
        return self.config.num_trees

    @property
    def sample_size(self) -> int:
        return self.config.sample_size

    @property
    def output_after(self) -> int:
        return self.config.ready_after

    @property
    def time_decay(self) -> float:
        return self.config.lam

    @property
    def seen(self) -> int:
        """Points given to :meth:`update` so far."""
        return int(self._bank.seen[self._slot])

    @property
    def is_output_ready(self) -> bool:
        """Whether scores are reported: ``output_after`` shingled points are in the trees."""
        return self.seen - self.config.warmup >= max(self.output_after, 1)

    def _trees(self) -> npt.NDArray[np.int64]:
        return self._slot * self.num_trees + np.arange(self.num_trees, dtype=np.int64)

    def score(self, point: Any) -> float:
        """Anomaly score of ``point`` as the next reading, without learning from it."""
        value = as_point(point, self.dimensions)
        if not self.is_output_ready:
            return 0.0
        shingled = engine.shingled(self._bank, self._slot, value)
        trees, points = self._trees(), np.broadcast_to(shingled, (self.num_trees, len(shingled)))
        return float(
            tree.score(self._bank, trees, points, tree.descend(self._bank, trees, points)).sum()
            / self.num_trees
        )

    def attribution(self, point: Any) -> Attribution:
        """How much each input dimension, high or low, contributes to :meth:`score` of ``point``."""
        value = as_point(point, self.dimensions)
        zeros = np.zeros(self.dimensions)
        if not self.is_output_ready:
            return Attribution(zeros, zeros.copy())
        shingled = engine.shingled(self._bank, self._slot, value)
        points = np.broadcast_to(shingled, (self.num_trees, len(shingled)))
        high, low = tree.attribute(self._bank, self._trees(), points)
        shape = (self.shingle_size, self.dimensions)
        return Attribution(
            high.sum(0).reshape(shape).sum(0) / self.num_trees,
            low.sum(0).reshape(shape).sum(0) / self.num_trees,
        )

    def update(self, point: Any) -> None:
        """Learn from ``point`` (the next reading of the stream)."""
        value = as_point(point, self.dimensions)
        engine.process(self._bank, np.array([self._slot]), value[None, :], scores=False)

    def score_and_update(self, point: Any) -> float:
        """Score ``point``, then learn from it: the streaming use."""
        value = as_point(point, self.dimensions)
        return float(engine.process(self._bank, np.array([self._slot]), value[None, :])[0])

    def process(self, points: Any) -> npt.NDArray[np.float64]:
        """:meth:`score_and_update` each row of ``points`` in order, in one vectorized pass."""
        values = as_points(points, self.dimensions)
        return engine.process(self._bank, np.full(len(values), self._slot, np.int64), values)

    def to_bytes(self) -> bytes:
        """A compact, versioned checkpoint; :meth:`from_bytes` resumes with identical later scores."""
        return mapper.dump(self._bank, self._slot)

    @classmethod
    def from_bytes(cls, data: bytes) -> RandomCutForest:
        """Restore a forest written by :meth:`to_bytes` (raises ``ValueError`` on bad data)."""
        config, seed = state.read_header(data)
        forest = cls.__new__(cls)
        bank = TreeBank(config)
        forest._attach(bank, seed)
        mapper.load(bank, forest._slot, data)
        return forest

    def __repr__(self) -> str:
        c = self.config
        return (
            f"RandomCutForest(dimensions={c.dimensions}, shingle_size={c.shingle_size}, "
            f"num_trees={c.num_trees}, sample_size={c.sample_size}, output_after={c.output_after}, "
            f"time_decay={c.time_decay!r}, seed={self.seed}, seen={self.seen})"
        )
