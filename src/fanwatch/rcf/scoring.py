"""The pieces of AWS's anomaly score visitor, one named function each (``CommonUtils.java``).

A tree scores a point by walking from the root to the leaf the point falls into. At every node on
the way the point may be *separated* from the node's bounding box with the probability
``p = (growth of the box's range sum when the point is added) / (new range sum)``; isolating it at
depth ``d`` is worth :func:`score_unseen`. Landing on a leaf that holds the very same point is worth
:func:`score_seen`, damped by :func:`damp` so that frequent values score low. The tree's raw score
is scaled by :func:`normalizer`, so that isolation at the expected depth scores about 1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["damp", "normalizer", "score_seen", "score_unseen"]

FloatArray = npt.NDArray[np.float64]


def score_seen(depth: npt.ArrayLike, mass: npt.ArrayLike) -> FloatArray:
    """Score of a point equal to a leaf of ``mass`` copies at ``depth``: 1 / (depth + log2(mass + 1))."""
    return 1.0 / (np.asarray(depth, dtype=np.float64) + np.log2(np.asarray(mass, dtype=np.float64) + 1.0))


def score_unseen(depth: npt.ArrayLike) -> FloatArray:
    """Score of a point isolated at ``depth``: 1 / (depth + 1); the mass of the node plays no part."""
    return 1.0 / (np.asarray(depth, dtype=np.float64) + 1.0)


def damp(leaf_mass: npt.ArrayLike, tree_mass: npt.ArrayLike) -> FloatArray:
    """Discount for duplicates: 1 - leafMass / (2 treeMass)."""
    return 1.0 - np.asarray(leaf_mass, dtype=np.float64) / (2.0 * np.asarray(tree_mass, dtype=np.float64))


def normalizer(score: npt.ArrayLike, tree_mass: npt.ArrayLike) -> FloatArray:
    """Scale a tree's raw score by log2(treeMass + 1), the depth a point is expected to be isolated at."""
    return np.asarray(score, dtype=np.float64) * np.log2(np.asarray(tree_mass, dtype=np.float64) + 1.0)
