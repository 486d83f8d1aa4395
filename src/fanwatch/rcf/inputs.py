"""Validation of readings before they reach a model: bad input raises and changes nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["as_point", "as_points"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _numeric(values: Any, what: str) -> npt.NDArray[np.float64]:
    try:
        raw = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged nesting and the like
        raise ValueError(f"{what} must be numbers: {exc}") from None
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"{what} must be numbers, got {raw.dtype.name} values: {values!r:.80}")
    return raw.astype(np.float64)


def _finite(array: npt.NDArray[np.float64], what: str) -> None:
    bad = ~np.isfinite(array) | (np.abs(array) > _FLOAT32_MAX)
    if bad.any():
        where = np.argwhere(bad)[0]
        index = tuple(where.tolist())
        raise ValueError(f"{what} must be finite float32 numbers; found {array[index]!r} at index {index}")


def as_point(point: Any, dimensions: int) -> npt.NDArray[np.float32]:
    """One reading: a number (when ``dimensions`` is 1) or ``dimensions`` numbers."""
    array = _numeric(point, "a point")
    if array.ndim == 0:
        array = array.reshape(1)
    if array.shape != (dimensions,):
        raise ValueError(f"a point must have {dimensions} value(s), got shape {array.shape}")
    _finite(array, "a point")
    return array.astype(np.float32)


def as_points(points: Any, dimensions: int) -> npt.NDArray[np.float32]:
    """Readings in order: an ``(n, dimensions)`` array (``(n,)`` is accepted when ``dimensions`` is 1)."""
    array = _numeric(points, "points")
    if array.ndim == 1 and dimensions == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != dimensions:
        raise ValueError(f"points must have shape (n, {dimensions}), got {array.shape}")
    _finite(array, "points")
    return array.astype(np.float32)
