"""Counter-based randomness: a random number is a pure function of (seed, stream, counters).

Why: the sampler's weights and the trees' cut factors can then be recomputed instead of stored
(a smaller checkpoint) and decided for a whole block of points ahead of time, in any order, with
identical results; the same seed always gives the same forest.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["CUT", "SAMPLER", "uniform"]

#: Stream of the reservoir sampler's weights: counters (tree, sequence index).
SAMPLER: Final = 1
#: Stream of the random cut factors: counters (tree, sequence index, level of the path).
CUT: Final = 2

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def _mix(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser: a bijection of 64-bit words with good avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def uniform(seed: npt.ArrayLike, stream: int, *counters: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Uniform numbers in the open interval (0, 1), broadcast over the seed and counters."""
    with np.errstate(over="ignore"):
        h = _mix(np.asarray(seed, dtype=np.uint64) + np.uint64(stream) * _GOLDEN)
        for counter in counters:
            h = _mix(h ^ (np.asarray(counter).astype(np.uint64) + _GOLDEN))
    return ((h >> _S11).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
