"""Streaming Random Cut Forest anomaly detection in numpy, per fan, fast enough for a fleet."""

from .forest import Attribution, RandomCutForest

__all__ = ["Attribution", "RandomCutForest"]
