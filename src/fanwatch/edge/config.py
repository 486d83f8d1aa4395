"""The two components' configuration: defaults, validation and a digest, as pure functions.

Greengrass hands a component its configuration as a JSON tree (``GetConfiguration``), possibly changed
at run time by a deployment. Every key is checked here: an unknown key (a typo that would otherwise be
ignored), a wrong type or an out-of-range value raises :class:`ConfigError` naming the key, and the
caller keeps its last good configuration. Greengrass may hand integers back as floats (``17.0``);
integral floats are accepted where an integer is expected.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, TypeVar

from fanwatch.edge.tach.simfan import FAULT_KINDS, Fault, FaultKind
from fanwatch.errors import FanwatchError
from fanwatch.limits import DEFAULT_MAX_RPM, FAN_PATTERN, MAX_MESSAGE_BYTES, MAX_RPM
from fanwatch.telemetry import MAX_READINGS

__all__ = [
    "BACKENDS",
    "ConfigError",
    "FanConfig",
    "FilterConfig",
    "TachConfig",
    "config_digest",
    "parse_filter_config",
    "parse_tach_config",
]

BACKENDS: Final = ("gpio", "simulated", "replay")
_IGNORED: Final = frozenset({"accessControl"})  # the nucleus reads it; the component does not


class ConfigError(FanwatchError, ValueError):
    """A configuration value is wrong; ``key`` is its path (``fans.fan0.pin``)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


# --- readers ------------------------------------------------------------------------------------


def _mapping(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected an object, got {type(value).__name__}")
    return value


def _check_keys(raw: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    unknown = sorted(set(raw) - allowed - _IGNORED)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}", f"unknown key (known: {', '.join(sorted(allowed))})")


def _number(
    raw: Mapping[str, Any], key: str, default: float, low: float, high: float, prefix: str = ""
) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{prefix}{key}", f"expected a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{prefix}{key}", f"{value:g} is out of range [{low:g}, {high:g}]")
    return float(value)


def _integer(raw: Mapping[str, Any], key: str, default: int, low: int, high: int, prefix: str = "") -> int:
    value = raw.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{prefix}{key}", f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{prefix}{key}", f"{value} is out of range [{low}, {high}]")
    return value


def _choice(
    raw: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...], prefix: str = ""
) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise ConfigError(f"{prefix}{key}", f"{value!r} is not one of {', '.join(choices)}")
    return str(value)


def _boolean(raw: Mapping[str, Any], key: str, default: bool, prefix: str = "") -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{prefix}{key}", f"expected true or false, got {value!r}")
    return value


def config_digest(config: TachConfig | FilterConfig) -> str:
    """A short, stable digest of a validated configuration (shown in the device status)."""
    values = {k: v for k, v in asdict(config).items() if k != "digest"}
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --- the tachometer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FanConfig:
    """One fan on the tachometer component."""

    id: str
    pin: int = 17
    pulses_per_rev: int = 2
    target_rpm: float | None = None  # the commanded speed, when known (and the simulated fan's target)
    seed: int = 0  # simulated backend
    faults: tuple[Fault, ...] = ()  # simulated backend
    # simulated backend: (seconds, rpm) at which a speed-controlled fan's controller changes its target
    setpoints: tuple[tuple[float, float], ...] = ()
    replay_file: str = ""  # replay backend


@dataclass(frozen=True)
class TachConfig:
    """The Tachometer component's configuration, as its recipe's DefaultConfiguration and a deployment's
    merge give it (parsed and range-checked by :func:`parse_tach_config`)."""

    backend: str = "gpio"
    fans: tuple[FanConfig, ...] = (FanConfig("fan0"),)
    max_rpm: float = DEFAULT_MAX_RPM
    window_s: float = 1.0
    stall_timeout_s: float = 2.0
    publish_interval_s: float = 1.0
    status_interval_s: float = 60.0  # local pub/sub only; the edge filter folds it into the device status
    replay_loop: bool = True
    time_scale: float = 1.0  # simulated and replay backends: how much faster than real time
    digest: str = field(default="", compare=False)


_TACH_KEYS = {
    "backend",
    "fans",
    "pulsesPerRev",
    "maxRpm",
    "windowSeconds",
    "stallTimeoutSeconds",
    "publishIntervalSeconds",
    "statusIntervalSeconds",
    "replayLoop",
    "timeScale",
}
_FAN_KEYS = {"pin", "pulsesPerRev", "targetRpm", "seed", "faults", "setpoints", "replayFile"}
_FAULT_KEYS = {"kind", "startSeconds", "endSeconds", "severity"}
_SETPOINT_KEYS = {"atSeconds", "rpm"}


def _fault(raw: object, key: str) -> Fault:
    data = _mapping(raw, key)
    _check_keys(data, _FAULT_KEYS, f"{key}.")
    if "kind" not in data:
        raise ConfigError(f"{key}.kind", f"missing (one of {', '.join(FAULT_KINDS)})")
    kind = _choice(data, "kind", "", FAULT_KINDS, f"{key}.")
    start = _number(data, "startSeconds", 0.0, 0.0, 1e9, f"{key}.")
    end = _number(data, "endSeconds", 1e12, 0.0, 1e12, f"{key}.")
    if end <= start:
        raise ConfigError(f"{key}.endSeconds", f"{end:g} is not after startSeconds {start:g}")
    severity = _number(data, "severity", 1.0, 0.01, 5.0, f"{key}.")
    return Fault(FaultKind(kind), start, math.inf if end >= 1e12 else end, severity)


def _setpoints(raw: object, key: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list):
        raise ConfigError(key, f"expected a list, got {type(raw).__name__}")
    out: list[tuple[float, float]] = []
    for i, item in enumerate(raw):
        data = _mapping(item, f"{key}[{i}]")
        _check_keys(data, _SETPOINT_KEYS, f"{key}[{i}].")
        for name in sorted(_SETPOINT_KEYS - set(data)):
            raise ConfigError(f"{key}[{i}].{name}", "missing")
        at = _number(data, "atSeconds", 0.0, 0.0, 1e9, f"{key}[{i}].")
        if out and at <= out[-1][0]:
            raise ConfigError(f"{key}[{i}].atSeconds", f"{at:g} is not after the setpoint before it")
        out.append((at, _number(data, "rpm", 0.0, 0.0, MAX_RPM, f"{key}[{i}].")))
    return tuple(out)


def _fan(fan_id: str, raw: object, default_ppr: int, backend: str) -> FanConfig:
    key = f"fans.{fan_id}"
    if not FAN_PATTERN.fullmatch(fan_id):
        raise ConfigError(key, f"fan id {fan_id!r} does not match {FAN_PATTERN.pattern}")
    data = _mapping(raw, key)
    _check_keys(data, _FAN_KEYS, f"{key}.")
    p = f"{key}."
    faults_raw = data.get("faults", [])
    if not isinstance(faults_raw, list):
        raise ConfigError(f"{p}faults", f"expected a list, got {type(faults_raw).__name__}")
    target = data.get("targetRpm")
    replay_file = data.get("replayFile", "")
    if not isinstance(replay_file, str):
        raise ConfigError(f"{p}replayFile", f"expected a path, got {replay_file!r}")
    if backend == "replay" and not replay_file:
        raise ConfigError(f"{p}replayFile", "missing: the replay backend needs a recording for every fan")
    return FanConfig(
        id=fan_id,
        pin=_integer(data, "pin", 17, 0, 53, p),
        pulses_per_rev=_integer(data, "pulsesPerRev", default_ppr, 1, 12, p),
        target_rpm=None if target is None else _number(data, "targetRpm", 0, 0.0, MAX_RPM, p),
        seed=_integer(data, "seed", 0, 0, 2**31 - 1, p),
        faults=tuple(_fault(f, f"{p}faults[{i}]") for i, f in enumerate(faults_raw)),
        setpoints=_setpoints(data.get("setpoints", []), f"{p}setpoints"),
        replay_file=replay_file,
    )


def parse_tach_config(raw: Mapping[str, Any]) -> TachConfig:
    """Validate the ``fanwatch.Tachometer`` configuration (raises :class:`ConfigError`)."""
    raw = _mapping(raw, "$")
    _check_keys(raw, _TACH_KEYS, "")
    backend = _choice(raw, "backend", "gpio", BACKENDS)
    ppr = _integer(raw, "pulsesPerRev", 2, 1, 12)
    fans_raw = _mapping(raw.get("fans", {"fan0": {}}), "fans")
    if not 1 <= len(fans_raw) <= 16:
        raise ConfigError("fans", f"{len(fans_raw)} fans; expected 1 to 16")
    fans = tuple(_fan(str(fan_id), spec, ppr, backend) for fan_id, spec in sorted(fans_raw.items()))
    if backend == "gpio":
        pins = [f.pin for f in fans]
        dup = next((p for p in pins if pins.count(p) > 1), None)
        if dup is not None:
            raise ConfigError("fans", f"pin {dup} is used by more than one fan")
    window = _number(raw, "windowSeconds", 1.0, 0.1, 60.0)
    stall = _number(raw, "stallTimeoutSeconds", 2.0, 0.1, 600.0)
    if stall < window:
        raise ConfigError("stallTimeoutSeconds", f"{stall:g} is shorter than windowSeconds {window:g}")
    config = TachConfig(
        backend=backend,
        fans=fans,
        max_rpm=_number(raw, "maxRpm", DEFAULT_MAX_RPM, 100.0, MAX_RPM),
        window_s=window,
        stall_timeout_s=stall,
        publish_interval_s=_number(raw, "publishIntervalSeconds", 1.0, 0.05, 3600.0),
        status_interval_s=_number(raw, "statusIntervalSeconds", 60.0, 1.0, 86_400.0),
        replay_loop=_boolean(raw, "replayLoop", True),
        time_scale=_number(raw, "timeScale", 1.0, 0.001, 10_000.0),
    )
    if backend == "gpio" and config.time_scale != 1.0:
        raise ConfigError(
            "timeScale", "a real fan runs in real time: timeScale must be 1 with the gpio backend"
        )
    return _with_digest(config)


# --- the edge filter ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterConfig:
    """The EdgeFilter component's configuration: spike filter, deadband, batching, alert thresholds and
    hysteresis (parsed and range-checked by :func:`parse_filter_config`)."""

    spike_window: int = 7
    spike_sigmas: float = 3.0
    spike_min_percent: float = 2.0
    # Every reading goes to the cloud by default: the lake keeps all of them and each fan's forest
    # scores a regular 1 Hz series (docs/edge.md, "What reaches the cloud"); a deadband trades both
    # for fewer bytes.
    deadband_rpm: float = 0.0
    deadband_percent: float = 0.0
    heartbeat_s: float = 60.0
    batch_size: int = 60  # a minute of readings per message: 1,440 messages per fan per day
    max_batch_age_s: float = 60.0
    max_message_bytes: int = MAX_MESSAGE_BYTES
    stall_rpm: float = 100.0
    under_speed_rpm: float = 0.0  # 0: off
    over_speed_rpm: float = 0.0  # 0: off
    hysteresis_percent: float = 5.0
    raise_after_s: float = 3.0
    clear_after_s: float = 10.0
    # noisy_signal: this share of a window's readings flagged glitch or dropout (0: off)
    noisy_percent: float = 10.0
    noisy_window_s: float = 60.0
    sensor_timeout_s: float = 15.0
    status_interval_s: float = 300.0
    queue_size: int = 10_000
    # Basic Ingest: telemetry goes to $aws/rules/<rule>/fanwatch/<thing>/telemetry, straight to that
    # IoT rule without the message broker's charge ("": the plain topic, which a local broker serves)
    basic_ingest_rule: str = ""
    digest: str = field(default="", compare=False)


#: What an IoT rule name may be (and so what ``basicIngestRule`` may name).
RULE_NAME: Final = re.compile(r"^[A-Za-z0-9_]{1,128}$")

_FILTER_KEYS = {
    "spikeWindow": ("spike_window", int, 3, 61),
    "spikeSigmas": ("spike_sigmas", float, 1.0, 20.0),
    "spikeMinPercent": ("spike_min_percent", float, 0.0, 100.0),
    "deadbandRpm": ("deadband_rpm", float, 0.0, MAX_RPM),
    "deadbandPercent": ("deadband_percent", float, 0.0, 100.0),
    "heartbeatSeconds": ("heartbeat_s", float, 1.0, 86_400.0),
    "batchSize": ("batch_size", int, 1, MAX_READINGS),
    "maxBatchAgeSeconds": ("max_batch_age_s", float, 0.0, 3600.0),
    "maxMessageBytes": ("max_message_bytes", int, 1024, MAX_MESSAGE_BYTES),
    "stallRpm": ("stall_rpm", float, 0.0, MAX_RPM),
    "underSpeedRpm": ("under_speed_rpm", float, 0.0, MAX_RPM),
    "overSpeedRpm": ("over_speed_rpm", float, 0.0, MAX_RPM),
    "hysteresisPercent": ("hysteresis_percent", float, 0.0, 50.0),
    "raiseAfterSeconds": ("raise_after_s", float, 0.0, 3600.0),
    "clearAfterSeconds": ("clear_after_s", float, 0.0, 3600.0),
    "noisyPercent": ("noisy_percent", float, 0.0, 100.0),
    "noisyWindowSeconds": ("noisy_window_s", float, 1.0, 3600.0),
    "sensorTimeoutSeconds": ("sensor_timeout_s", float, 1.0, 3600.0),
    "statusIntervalSeconds": ("status_interval_s", float, 1.0, 86_400.0),
    "queueSize": ("queue_size", int, 10, 1_000_000),
}


def parse_filter_config(raw: Mapping[str, Any]) -> FilterConfig:
    """Validate the ``fanwatch.EdgeFilter`` configuration (raises :class:`ConfigError`)."""
    raw = _mapping(raw, "$")
    _check_keys(raw, {*_FILTER_KEYS, "basicIngestRule"}, "")
    defaults = FilterConfig()
    values: dict[str, Any] = {}
    rule = raw.get("basicIngestRule", defaults.basic_ingest_rule)
    if not isinstance(rule, str) or (rule and not RULE_NAME.match(rule)):
        raise ConfigError(
            "basicIngestRule", f"expected an IoT rule name (letters, digits, _) or '', got {rule!r}"
        )
    values["basic_ingest_rule"] = rule
    for key, (attr, kind, low, high) in _FILTER_KEYS.items():
        default = getattr(defaults, attr)
        if kind is int:
            values[attr] = _integer(raw, key, default, int(low), int(high))
        else:
            values[attr] = _number(raw, key, default, low, high)
    config = FilterConfig(**values)
    if config.spike_window % 2 == 0:
        raise ConfigError("spikeWindow", f"{config.spike_window} is even; an odd window has a middle reading")
    if config.under_speed_rpm and config.under_speed_rpm <= config.stall_rpm:
        raise ConfigError(
            "underSpeedRpm", f"{config.under_speed_rpm:g} must be above stallRpm {config.stall_rpm:g}"
        )
    if config.over_speed_rpm and config.over_speed_rpm <= max(config.under_speed_rpm, config.stall_rpm):
        raise ConfigError("overSpeedRpm", "must be above underSpeedRpm and stallRpm")
    return _with_digest(config)


_Config = TypeVar("_Config", TachConfig, FilterConfig)


def _with_digest(config: _Config) -> _Config:
    return replace(config, digest=config_digest(config))
