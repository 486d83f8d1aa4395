"""The demo's fleet: which things run which simulated fans with which faults, and how it is deployed.

Fault times are fractions of the run, so a short run (a test) tells the same story as the default
20 minutes. Each thing gets the deployment document a user would send it: the simulated backend with
its own fans and faults, the filter's alert thresholds, and ``interpolateComponentConfiguration`` so
that ``{iot:thingName}`` in the filter's accessControl becomes the thing's name.

Speeding up a run needs two settings, because only the tachometer has a clock to speed up: its
``timeScale`` makes the simulated fans run that much faster, and every time-valued setting of the
filter (heartbeat, batch age, alert delays, status interval) is divided by the same factor. The
filter then treats N seconds of wall time as N × timeScale simulated seconds, so the messages it sends
per simulated day are those a device with the recipe's defaults would send per real day.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from fanwatch.build import COMPONENTS
from fanwatch.core.deployment.configuration_update import ConfigurationUpdate, resolve_configuration
from fanwatch.core.deployment.document import NUCLEUS
from fanwatch.core.runtime import NUCLEUS_VERSION
from fanwatch.edge.config import ConfigError, parse_filter_config, parse_tach_config

__all__ = [
    "EDGE_FILTER",
    "TACHOMETER",
    "THRESHOLDS",
    "FanPlan",
    "Fault",
    "Scenario",
    "ThingPlan",
    "default_configuration",
    "effective_configuration",
]

TACHOMETER: Final = "fanwatch.Tachometer"
EDGE_FILTER: Final = "fanwatch.EdgeFilter"
TARGET_RPM: Final = 3000
#: Alert thresholds the demo deploys (the recipe turns under- and over-speed off by default).
THRESHOLDS: Final = {"underSpeedRpm": 2400, "overSpeedRpm": 3800}
#: The filter's time-valued settings, and the least each accepts (its configuration refuses less).
FILTER_SECONDS: Final = {
    "heartbeatSeconds": 1.0,
    "maxBatchAgeSeconds": 0.0,
    "raiseAfterSeconds": 0.0,
    "clearAfterSeconds": 0.0,
    "sensorTimeoutSeconds": 1.0,
    "statusIntervalSeconds": 1.0,
}
#: The tachometer reads once a simulated second, but never more often than it accepts (20 a second).
MIN_PUBLISH_INTERVAL_S: Final = 0.05
#: Per thing, in turn: fan id -> (fault kind, start, end as fractions of the run or None, severity).
_PROFILES: Final[tuple[dict[str, tuple[tuple[str, float, float | None, float], ...]], ...]] = (
    # a fan that stalls and comes back; one whose bearings wear until it is too slow
    {"fan0": (), "fan1": (("stall", 0.30, 0.45, 1.0),), "fan2": (("bearing_wear", 0.10, None, 1.5),)},
    # a noisy, then intermittent tach signal; a fan whose controller hunts, later over-speeds
    {
        "fan0": (("glitch", 0.05, 0.40, 2.0), ("dropout", 0.50, 0.70, 1.0)),
        "fan1": (("hunting", 0.15, 0.45, 1.0), ("overspeed", 0.60, 0.80, 1.0)),
        "fan2": (),
    },
    # a fan that over-speeds early; one that wears fast late in the run
    {"fan0": (("overspeed", 0.20, 0.35, 1.0),), "fan1": (), "fan2": (("bearing_wear", 0.55, None, 3.0),)},
)


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault injected into a simulated fan, in simulated seconds from the fan's start (to the end of
    the run when ``end_s`` is infinite: a worn bearing does not heal when the demo stops)."""

    kind: str
    start_s: float
    end_s: float = math.inf
    severity: float = 1.0

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"kind": self.kind, "startSeconds": round(self.start_s, 3)}
        if math.isfinite(self.end_s):
            config["endSeconds"] = round(self.end_s, 3)
        return {**config, "severity": self.severity}


@dataclass(frozen=True, slots=True)
class FanPlan:
    id: str
    seed: int
    faults: tuple[Fault, ...] = ()

    def to_config(self) -> dict[str, Any]:
        return {"targetRpm": TARGET_RPM, "seed": self.seed, "faults": [f.to_config() for f in self.faults]}


@dataclass(frozen=True, slots=True)
class ThingPlan:
    name: str
    fans: tuple[FanPlan, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    """``Scenario.fleet(things=3, minutes=20, time_scale=20)``: what the demo runs and expects."""

    things: tuple[ThingPlan, ...]
    minutes: float
    time_scale: float

    @classmethod
    def fleet(cls, *, things: int = 3, minutes: float = 20.0, time_scale: float = 20.0) -> Scenario:
        if not 1 <= things <= 9:
            raise ValueError(f"things must be 1 to 9, not {things}")
        if not 3 <= minutes <= 24 * 60:
            raise ValueError(
                f"minutes must be 3 to 1440 (a stall must outlast the alert delays), not {minutes:g}"
            )
        if not 1 <= time_scale <= 60:
            raise ValueError(f"time scale must be 1 to 60, not {time_scale:g}")
        length = minutes * 60.0
        plans = []
        for n in range(things):
            profile = _PROFILES[n % len(_PROFILES)]
            fans = tuple(
                FanPlan(
                    fan_id,
                    seed=10 * n + i,
                    faults=tuple(
                        Fault(kind, a * length, math.inf if b is None else b * length, sev)
                        for kind, a, b, sev in faults
                    ),
                )
                for i, (fan_id, faults) in enumerate(profile.items())
            )
            plans.append(ThingPlan(f"demo-pi-{n + 1:03d}", fans))
        return cls(tuple(plans), minutes, time_scale)

    @property
    def seconds(self) -> float:
        """Simulated seconds the run lasts."""
        return self.minutes * 60.0

    @property
    def wall_seconds(self) -> float:
        return self.seconds / self.time_scale

    def thing(self, name: str) -> ThingPlan:
        return next(t for t in self.things if t.name == name)

    def stalls(self) -> list[tuple[str, str, Fault]]:
        """(thing, fan, fault) of every stall: each must raise a stall alert."""
        return [
            (thing.name, fan.id, fault)
            for thing in self.things
            for fan in thing.fans
            for fault in fan.faults
            if fault.kind == "stall"
        ]

    def merges(self, thing: str) -> dict[str, dict[str, Any]]:
        """Each component's configuration MERGE for ``thing``."""
        scale = self.time_scale
        defaults = default_configuration(EDGE_FILTER)
        filter_merge: dict[str, Any] = dict(THRESHOLDS)
        for key, least in FILTER_SECONDS.items():
            filter_merge[key] = round(max(least, float(defaults[key]) / scale), 3)
        tach_defaults = default_configuration(TACHOMETER)
        tach_merge = {
            "backend": "simulated",
            "timeScale": scale,
            "publishIntervalSeconds": round(max(MIN_PUBLISH_INTERVAL_S, 1.0 / scale), 3),
            "statusIntervalSeconds": round(
                max(1.0, float(tach_defaults["statusIntervalSeconds"]) / scale), 3
            ),
            "fans": {fan.id: fan.to_config() for fan in self.thing(thing).fans},
        }
        merges = {TACHOMETER: tach_merge, EDGE_FILTER: filter_merge}
        for component, parse in ((TACHOMETER, parse_tach_config), (EDGE_FILTER, parse_filter_config)):
            try:  # refuse here, with the key, rather than deploy a component that cannot start
                parse(effective_configuration(component, merges[component]))
            except ConfigError as exc:
                raise ValueError(
                    f"{component} refuses the demo's settings at timeScale {scale:g}: {exc}"
                ) from None
        return merges

    def deployment(self, thing: str, versions: Mapping[str, str]) -> dict[str, Any]:
        """The deployment for ``thing`` with component ``versions``, in the shape of the Greengrass
        CreateDeployment request (MERGE as a JSON string): ``aws greengrassv2 create-deployment
        --target-arn <thing ARN> --cli-input-json file://...`` takes it as it is."""
        merges = {NUCLEUS: {"interpolateComponentConfiguration": True}, **self.merges(thing)}
        versions = {NUCLEUS: NUCLEUS_VERSION, **versions}
        components = {
            component: {
                "componentVersion": versions[component],
                "configurationUpdate": {"merge": json.dumps(merge)},
            }
            for component, merge in merges.items()
        }
        return {
            "deploymentName": f"fanwatch-{thing}",
            "components": components,
            "deploymentPolicies": {"failureHandlingPolicy": "ROLLBACK"},
        }


@cache
def default_configuration(component: str) -> Mapping[str, Any]:
    """The ``DefaultConfiguration`` of the component's recipe in ``recipes/``."""
    import yaml

    recipe = yaml.safe_load(COMPONENTS[component].recipe.read_text())
    return dict(recipe["ComponentConfiguration"]["DefaultConfiguration"])


def effective_configuration(component: str, merge: Mapping[str, Any]) -> dict[str, Any]:
    """What the component's configuration is after a first deployment with ``merge``."""
    return resolve_configuration(None, default_configuration(component), ConfigurationUpdate(merge=merge))
