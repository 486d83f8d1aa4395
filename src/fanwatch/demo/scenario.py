"""The demo's fleet: which things run which simulated fans with which faults, and how it is deployed.

Each device (thing) runs two or three fans, each at its own normal speed; the fault and setpoint times
are fractions of the story, the part of the run after the warm-up, so a short run (a test) tells the
same story as the default 20 minutes. Each thing gets the deployment document a user would send it:
the simulated backend with its own fans and faults, the filter's alert thresholds, and
``interpolateComponentConfiguration`` so that ``{iot:thingName}`` in the filter's accessControl
becomes the thing's name.

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
from fanwatch.core.runtime import NUCLEUS_VERSION
from fanwatch.edge.config import ConfigError, parse_filter_config, parse_tach_config
from fanwatch.limits import NUCLEUS_COMPONENT

__all__ = [
    "EDGE_FILTER",
    "TACHOMETER",
    "FanPlan",
    "Fault",
    "Scenario",
    "Setpoint",
    "ThingPlan",
    "default_configuration",
    "effective_configuration",
]

TACHOMETER: Final = "fanwatch.Tachometer"
EDGE_FILTER: Final = "fanwatch.EdgeFilter"
#: The filter's time-valued settings, and the least each accepts (its configuration refuses less).
FILTER_SECONDS: Final = {
    "heartbeatSeconds": 1.0,
    "maxBatchAgeSeconds": 0.0,
    "raiseAfterSeconds": 0.0,
    "clearAfterSeconds": 0.0,
    "sensorTimeoutSeconds": 1.0,
    "statusIntervalSeconds": 1.0,
}
#: The least wall seconds the demo gives the filter's sensor timeout, whatever the time scale: on a busy
#: laptop a component process can pause for a second, which at timeScale 20 would be 20 simulated
#: seconds of silence and a false ``sensor_lost``. So in the demo that alert means a longer silence.
SENSOR_TIMEOUT_FLOOR_S: Final = 3.0
#: The tachometer reads once a simulated second, but never more often than it accepts (20 a second).
MIN_PUBLISH_INTERVAL_S: Final = 0.05
#: Each device's alert thresholds, as fractions of its fans' normal speeds (the slowest and the fastest):
#: a fixed threshold must leave room for every fan on the device, and for a speed-controlled one, for
#: every speed it is commanded to run at.
UNDER_SPEED: Final = 0.8
OVER_SPEED: Final = 1.25
MAX_DEVICES: Final = 20

_FaultSpec = tuple[str, float, float | None, float]  # kind, start, end (fractions of the story), severity
_FanSpec = tuple[
    str, float, tuple[_FaultSpec, ...], tuple[tuple[float, float], ...]
]  # id, rpm, faults, setpoints
#: Per device, in turn: its fans (id, normal rpm, faults, setpoints). Fault and setpoint times are
#: fractions of the story, the part of the run after the warm-up, so a short run tells the same story.
_PROFILES: Final[tuple[tuple[_FanSpec, ...], ...]] = (
    # a rack at 3000 rpm: a fan that stalls and comes back; one whose bearings wear until it is too slow
    (
        ("fan0", 2950, (), ()),
        ("fan1", 3000, (("stall", 0.25, 0.40, 1.0),), ()),
        ("fan2", 3050, (("bearing_wear", 0.10, None, 1.5),), ()),
    ),
    # a rack at 2400 rpm: a noisy, then intermittent tach signal; a controller that hunts, later over-speeds
    (
        ("fan0", 2350, (("glitch", 0.05, 0.35, 2.0), ("dropout", 0.50, 0.70, 2.0)), ()),
        ("fan1", 2400, (("hunting", 0.15, 0.40, 1.0), ("overspeed", 0.60, 0.80, 1.0)), ()),
        ("fan2", 2400, (), ()),  # healthy, at the same speed as fan1
    ),
    # a speed-controlled fan whose setpoint changes (healthy: no alarm), beside a fixed one
    (
        ("fan0", 3000, (), ((0.20, 2200), (0.50, 3600), (0.80, 2600))),
        ("fan1", 2700, (), ()),
    ),
    # a rack at 3600 rpm: a fan that over-speeds early; one that wears fast late in the run
    (
        ("fan0", 3550, (("overspeed", 0.20, 0.35, 1.0),), ()),
        ("fan1", 3600, (), ()),
        ("fan2", 3650, (("bearing_wear", 0.55, None, 3.0),), ()),
    ),
    # big, slow fans: an intermittent tach signal; a stall late in the run
    (
        ("fan0", 1450, (), ()),
        ("fan1", 1500, (("dropout", 0.20, 0.45, 1.5),), ()),
        ("fan2", 1550, (("stall", 0.65, 0.80, 1.0),), ()),
    ),
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
class Setpoint:
    """A speed-controlled fan's controller commands ``rpm`` from ``at_s`` simulated seconds on."""

    at_s: float
    rpm: float


@dataclass(frozen=True, slots=True)
class FanPlan:
    """One simulated fan: its normal speed, the faults injected into it and, when it is speed-controlled,
    the setpoints its controller commands."""

    id: str
    seed: int
    normal_rpm: float = 3000.0
    faults: tuple[Fault, ...] = ()
    setpoints: tuple[Setpoint, ...] = ()

    @property
    def healthy(self) -> bool:
        return not self.faults

    @property
    def speeds(self) -> tuple[float, ...]:
        """Every speed it is meant to run at."""
        return (self.normal_rpm, *(s.rpm for s in self.setpoints))

    def describe(self) -> str:
        """``healthy, speed-controlled`` or ``stall, bearing_wear``."""
        kinds = ", ".join(dict.fromkeys(f.kind for f in self.faults)) or "healthy"
        return f"{kinds}, speed-controlled" if self.setpoints else kinds

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "targetRpm": self.normal_rpm,
            "seed": self.seed,
            "faults": [f.to_config() for f in self.faults],
        }
        if self.setpoints:
            config["setpoints"] = [{"atSeconds": round(s.at_s, 3), "rpm": s.rpm} for s in self.setpoints]
        return config


@dataclass(frozen=True, slots=True)
class ThingPlan:
    """One simulated device: its name and the fans it runs."""

    name: str
    fans: tuple[FanPlan, ...]

    @property
    def thresholds(self) -> dict[str, float]:
        """The filter's alert thresholds for this device (``underSpeedRpm``, ``overSpeedRpm``)."""
        speeds = [s for fan in self.fans for s in fan.speeds]
        return {
            "underSpeedRpm": round(UNDER_SPEED * min(speeds)),
            "overSpeedRpm": round(OVER_SPEED * max(speeds)),
        }


@dataclass(frozen=True, slots=True)
class Scenario:
    """``Scenario.fleet(devices=5, minutes=20, time_scale=20)``: what the demo runs and expects.

    The first ``warmup_s`` simulated seconds every fan is healthy (the cloud's forests learn each fan's
    normal); the faults and setpoint changes come in the rest, the story.
    """

    things: tuple[ThingPlan, ...]
    minutes: float
    time_scale: float
    warmup_s: float = 0.0

    @classmethod
    def fleet(
        cls,
        *,
        devices: int = 5,
        minutes: float = 20.0,
        time_scale: float = 20.0,
        warmup_minutes: float = 5.0,
    ) -> Scenario:
        if not 1 <= devices <= MAX_DEVICES:
            raise ValueError(f"devices must be 1 to {MAX_DEVICES}, not {devices}")
        if not 3 <= minutes <= 24 * 60:
            raise ValueError(
                f"minutes must be 3 to 1440 (a stall must outlast the alert delays), not {minutes:g}"
            )
        if not 1 <= time_scale <= 60:
            raise ValueError(f"time scale must be 1 to 60, not {time_scale:g}")
        if not 0 <= warmup_minutes <= minutes / 2:
            raise ValueError(
                f"the warm-up must be 0 to half the run ({minutes / 2:g} minutes), not {warmup_minutes:g}"
            )
        warmup, length = warmup_minutes * 60.0, minutes * 60.0

        def at(fraction: float) -> float:
            return warmup + fraction * (length - warmup)

        plans = []
        for n in range(devices):
            fans = tuple(
                FanPlan(
                    fan_id,
                    seed=10 * n + i,
                    normal_rpm=float(rpm) * (1 + 0.02 * (n // len(_PROFILES))),  # repeats run a bit faster
                    faults=tuple(
                        Fault(kind, at(a), math.inf if b is None else at(b), sev)
                        for kind, a, b, sev in faults
                    ),
                    setpoints=tuple(Setpoint(at(a), float(rpm)) for a, rpm in setpoints),
                )
                for i, (fan_id, rpm, faults, setpoints) in enumerate(_PROFILES[n % len(_PROFILES)])
            )
            plans.append(ThingPlan(f"demo-pi-{n + 1:03d}", fans))
        return cls(tuple(plans), minutes, time_scale, warmup)

    @property
    def seconds(self) -> float:
        """Simulated seconds the run lasts."""
        return self.minutes * 60.0

    @property
    def wall_seconds(self) -> float:
        return self.seconds / self.time_scale

    def thing(self, name: str) -> ThingPlan:
        return next(t for t in self.things if t.name == name)

    def faults(self) -> list[tuple[str, str, Fault]]:
        """(thing, fan, fault) of every injected fault, in the order of the fleet."""
        return [(t.name, fan.id, fault) for t in self.things for fan in t.fans for fault in fan.faults]

    def fan(self, thing: str, fan: str) -> FanPlan:
        return next(f for f in self.thing(thing).fans if f.id == fan)

    def merges(self, thing: str) -> dict[str, dict[str, Any]]:
        """Each component's configuration MERGE for ``thing``: the filter reads the wall clock, so its
        timings are divided by the time scale, its sensor timeout to no less than
        :data:`SENSOR_TIMEOUT_FLOOR_S`."""
        scale = self.time_scale
        defaults = default_configuration(EDGE_FILTER)
        plan = self.thing(thing)
        filter_merge: dict[str, Any] = dict(plan.thresholds)
        for key, least in FILTER_SECONDS.items():
            if key == "sensorTimeoutSeconds":
                least = max(least, min(float(defaults[key]), SENSOR_TIMEOUT_FLOOR_S))
            filter_merge[key] = round(max(least, float(defaults[key]) / scale), 3)
        tach_defaults = default_configuration(TACHOMETER)
        tach_merge = {
            "backend": "simulated",
            "timeScale": scale,
            "publishIntervalSeconds": round(max(MIN_PUBLISH_INTERVAL_S, 1.0 / scale), 3),
            "statusIntervalSeconds": round(
                max(1.0, float(tach_defaults["statusIntervalSeconds"]) / scale), 3
            ),
            "fans": {fan.id: fan.to_config() for fan in plan.fans},
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
        merges = {NUCLEUS_COMPONENT: {"interpolateComponentConfiguration": True}, **self.merges(thing)}
        versions = {NUCLEUS_COMPONENT: NUCLEUS_VERSION, **versions}
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
