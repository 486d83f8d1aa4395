"""What the detector and the notifier are tuned by, in one place: which environment variable sets each
setting (the names live in :mod:`fanwatch.environment`) and the defaults, which are also the stack's
parameter defaults.

The defaults work together with the edge recipes' defaults (every reading, once a second, 60 per
message): a forest of 100 trees x 256 with shingle 4 scores each fan's 1 Hz series from its 68th
reading; a floor of 2.8 keeps healthy fans quiet (at 1 Hz a fan gives 86,400 scores a day, and
healthy simulated fans reach 1.8-2.3 every hour) while fault onsets score 3-8 (``bench/detection.py``
measures both). ``docs/cloud.md`` explains each.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from fanwatch import environment as variables

__all__ = ["DEFAULT_COOLDOWN_MINUTES", "ENVIRONMENT", "DetectorSettings"]

#: Each setting's environment variable (named in :mod:`fanwatch.environment`, which the stack imports).
ENVIRONMENT: Final = {
    "score_floor": variables.SCORE_FLOOR_VARIABLE,
    "score_sigmas": variables.SCORE_SIGMAS_VARIABLE,
    "settle_seconds": variables.SETTLE_SECONDS_VARIABLE,
    "checkpoint_minutes": variables.CHECKPOINT_MINUTES_VARIABLE,
    "shingle_size": variables.RCF_SHINGLE_SIZE_VARIABLE,
    "num_trees": variables.RCF_TREES_VARIABLE,
    "sample_size": variables.RCF_SAMPLE_SIZE_VARIABLE,
    "max_resident": variables.RCF_MAX_RESIDENT_VARIABLE,
    "cache_fan_state": variables.FAN_STATE_CACHE_VARIABLE,
}

#: The notifier's cooldown per fan and kind when the environment does not say (the stack's default too).
DEFAULT_COOLDOWN_MINUTES: Final = 15.0

#: How a boolean setting is written in its variable.
_BOOLEANS: Final = {"true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """The detector's tuning; every field can be set through its variable in :data:`ENVIRONMENT`."""

    score_floor: float = 2.8  # the lowest score ever graded anomalous
    score_sigmas: float = 3.0  # standard deviations above a fan's mean normal score
    # readings this long after a speed-controlled fan's target changed are not scored (it is moving):
    # five time constants of a fan that takes up to 12 s to change speed
    settle_seconds: float = 60.0
    checkpoint_minutes: float = 15.0
    shingle_size: int = 4
    num_trees: int = 100
    sample_size: int = 256
    max_resident: int = 1000
    # keep each fan's state between batches and save it without reading it first (a conditional
    # write notices a copy another container moved past): half the DynamoDB requests while one
    # container carries the fleet (docs/scale.md); with several, each move costs a batch retry
    cache_fan_state: bool = False

    @property
    def forest_shape(self) -> dict[str, int]:
        """The keyword arguments of every fan's forest (``ForestManager``, ``ready_forest_bytes``)."""
        return {
            "dimensions": 1,
            "shingle_size": self.shingle_size,
            "num_trees": self.num_trees,
            "sample_size": self.sample_size,
        }

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> DetectorSettings:
        """The settings the environment gives (``os.environ`` by default); missing ones keep defaults.

        A value that is not a number of the field's type raises ``ValueError`` naming the variable.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = ENVIRONMENT[f.name]
            if name not in env:
                continue
            if f.type in ("bool", bool):
                if env[name].strip().lower() not in _BOOLEANS:
                    raise ValueError(f"{name}={env[name]!r} is not one of {', '.join(_BOOLEANS)}")
                values[f.name] = _BOOLEANS[env[name].strip().lower()]
                continue
            kind = int if f.type in ("int", int) else float
            try:
                values[f.name] = kind(env[name])
            except ValueError:
                raise ValueError(f"{name}={env[name]!r} is not a valid {kind.__name__}") from None
        return cls(**values)
