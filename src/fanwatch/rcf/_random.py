"""Counter-based randomness: a random number is a pure function of (seed, stream, counters).

Why: the sampler's weights and the trees' cut factors can then be recomputed instead of stored
(a smaller checkpoint) and decided for a whole block of points ahead of time, in any order, with
identical results; the same seed always gives the same forest.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["CUT", "SAMPLER", "key", "uniform", "uniform_from"]

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


def key(seed: npt.ArrayLike, stream: int, *counters: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """The hash state after the seed, the stream and the leading ``counters``.

    Why: the prefix (seed, stream, tree) of a forest's numbers is fixed, so the bank hashes it once
    and :func:`uniform_from` continues from it with the same result as :func:`uniform`.
    """
    with np.errstate(over="ignore"):
        return _absorb(_mix(np.asarray(seed, dtype=np.uint64) + np.uint64(stream) * _GOLDEN), counters)


def _absorb(h: npt.NDArray[np.uint64], counters: tuple[npt.ArrayLike, ...]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        for counter in counters:
            h = _mix(h ^ (np.asarray(counter).astype(np.uint64) + _GOLDEN))
    return h


def uniform_from(prefix: npt.ArrayLike, *counters: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """:func:`uniform` continued from a :func:`key` ``prefix`` with the remaining counters."""
    h = _absorb(np.asarray(prefix, dtype=np.uint64), counters)
    return ((h >> _S11).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def uniform(seed: npt.ArrayLike, stream: int, *counters: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Uniform numbers in the open interval (0, 1), broadcast over the seed and counters."""
    return uniform_from(key(seed, stream), *counters)
