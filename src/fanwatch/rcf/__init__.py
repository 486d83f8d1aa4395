"""Streaming Random Cut Forest anomaly detection in numpy, per fan, fast enough for a fleet.

``RandomCutForest`` scores one stream with the semantics of AWS's random-cut-forest-by-aws (the
successor of Kinesis Data Analytics' ``RANDOM_CUT_FOREST``); ``ForestManager`` keeps one forest per
fan and scores a batch of interleaved records of many fans in one vectorized pass; ``Thresholder``
turns scores into alerts.
"""

from .forest import Attribution, RandomCutForest
from .manager import ForestManager, ready_forest_bytes
from .stores import BatchStore, DirectoryStore, MemoryStore, ModelStore
from .threshold import Grade, ScoreStats, Thresholder, settling

__all__ = [
    "Attribution",
    "BatchStore",
    "DirectoryStore",
    "ForestManager",
    "Grade",
    "MemoryStore",
    "ModelStore",
    "RandomCutForest",
    "ScoreStats",
    "Thresholder",
    "ready_forest_bytes",
    "settling",
]
