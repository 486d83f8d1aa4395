"""The edge filter's logic, free of IPC: raw readings in, publications out.

For each fan: validate the raw message (contract, thing, duplicates), reject spikes, raise or clear
local alerts, pass significant readings through the deadband/heartbeat gate into a batch, and turn
due batches into telemetry messages that fit IoT Core. ``tick`` also watches for fans that went
silent (``sensor_lost``) and for the periodic device status. The runner
(:mod:`fanwatch.edge.run_filter`) publishes what comes out.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from fanwatch.edge.alerts import NOISY_FLAGS, AlertTracker
from fanwatch.edge.batching import Batcher, DeadbandGate, pack
from fanwatch.edge.clock import Clock
from fanwatch.edge.config import FilterConfig
from fanwatch.edge.logs import log_event
from fanwatch.edge.spikes import Hampel
from fanwatch.telemetry import (
    Alert,
    AlertKind,
    AlertState,
    ContractError,
    QualityFlag,
    Reading,
    Status,
    Telemetry,
    encode,
    parse_status,
    parse_telemetry,
    topic_for,
)

__all__ = ["EdgeFilter", "Publication"]

COMPONENT = "fanwatch.EdgeFilter"


@dataclass(frozen=True, slots=True)
class Publication:
    """A message to send: to IoT Core (QoS 1) and, for alerts, to local pub/sub as well."""

    topic: str
    payload: bytes
    local: bool = False


@dataclass
class _Fan:
    hampel: Hampel
    gate: DeadbandGate
    batcher: Batcher
    alerts: AlertTracker
    seq: int = 0
    alert_seq: int = 0
    last_arrival: float = 0.0
    last_reading: Reading | None = None
    source: tuple[str | None, int | None] = (None, None)  # (boot, seq) of the last raw message
    lost_since: float | None = None


class EdgeFilter:
    """Pre-filters one device's fans (see the module docstring)."""

    def __init__(
        self,
        config: FilterConfig,
        *,
        thing: str,
        clock: Clock,
        version: str = "unknown",
        boot: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self.thing = thing
        self.clock = clock
        self.version = version
        self.boot = boot or uuid.uuid4().hex[:16]
        self.log = logger or logging.getLogger(COMPONENT)
        self.counters: Counter[str] = Counter()
        self._fans: dict[str, _Fan] = {}
        self._started = clock.now()
        self._status_due = self._started
        self._peers: dict[
            str, tuple[str, str, Mapping[str, int]]
        ] = {}  # component -> (version, digest, counters)

    # --- configuration --------------------------------------------------------------------------

    def reconfigure(self, config: FilterConfig) -> None:
        """Apply a new (validated) configuration without losing batches, alert states or counters."""
        self.config = config
        for fan in self._fans.values():
            self._configure_fan(fan)
        self._status_due = min(self._status_due, self.clock.now() + config.status_interval_s)

    def _settings(self) -> dict[str, dict[str, Any]]:
        """Each part's keyword arguments under the current configuration."""
        c = self.config
        return {
            "hampel": {
                "window": c.spike_window,
                "sigmas": c.spike_sigmas,
                "min_percent": c.spike_min_percent,
            },
            "gate": {
                "deadband_rpm": c.deadband_rpm,
                "deadband_percent": c.deadband_percent,
                "heartbeat_s": c.heartbeat_s,
            },
            "batcher": {"batch_size": c.batch_size, "max_age_s": c.max_batch_age_s},
            "alerts": {
                "stall_rpm": c.stall_rpm,
                "under_speed_rpm": c.under_speed_rpm,
                "over_speed_rpm": c.over_speed_rpm,
                "hysteresis_percent": c.hysteresis_percent,
                "raise_after_s": c.raise_after_s,
                "clear_after_s": c.clear_after_s,
                "noisy_percent": c.noisy_percent,
                "noisy_window_s": c.noisy_window_s,
            },
        }

    def _configure_fan(self, fan: _Fan) -> None:
        s = self._settings()
        fan.hampel.reconfigure(**s["hampel"])
        fan.gate.reconfigure(**s["gate"])
        fan.batcher.reconfigure(**s["batcher"])
        fan.alerts.reconfigure(**s["alerts"])

    def _fan(self, fan_id: str) -> _Fan:
        fan = self._fans.get(fan_id)
        if fan is None:
            s = self._settings()
            fan = _Fan(
                hampel=Hampel(**s["hampel"]),
                gate=DeadbandGate(**s["gate"]),
                batcher=Batcher(**s["batcher"]),
                alerts=AlertTracker(**s["alerts"]),
            )
            self._fans[fan_id] = fan
        return fan

    # --- input ----------------------------------------------------------------------------------

    def accept(self, payload: bytes) -> list[Publication]:
        """One raw message from the tachometer (local pub/sub)."""
        try:
            message = parse_telemetry(payload, thing=self.thing)
        except ContractError as exc:
            self.counters["invalid"] += 1
            self.counters["dropped"] += 1
            log_event(self.log, logging.WARNING, "raw message refused", field=exc.field, problem=exc.problem)
            return []
        fan = self._fan(message.fan)
        boot, seq = fan.source
        if message.boot == boot and seq is not None and message.seq is not None and message.seq <= seq:
            self.counters["duplicates"] += 1
            self.counters["dropped"] += 1
            log_event(
                self.log, logging.INFO, "duplicate raw message dropped", fan=message.fan, seq=message.seq
            )
            return []
        fan.source = (message.boot, message.seq)
        now = self.clock.now()
        out = []
        if fan.lost_since is not None:
            lost = self.clock.utc(fan.lost_since)
            out += self._alert(
                message.fan, fan, AlertKind.SENSOR_LOST, AlertState.CLEARED, message.readings[0], lost
            )
            fan.lost_since = None
        fan.last_arrival = now
        for reading in message.readings:
            out += self._reading(message.fan, fan, reading, now)
        return out

    def _reading(self, fan_id: str, fan: _Fan, reading: Reading, now: float) -> list[Publication]:
        self.counters["readings"] += 1
        stalled = QualityFlag.STALLED in reading.flags
        rpm, spike = fan.hampel.filter(reading.rpm, bypass=stalled)
        if spike:
            self.counters["spikes"] += 1
            reading = replace(reading, rpm=rpm, flags=reading.flags | {QualityFlag.SPIKE})
        fan.last_reading = reading
        out = []
        transitions = fan.alerts.update(
            reading.ts.timestamp(), reading.rpm, stalled=stalled, noisy=bool(reading.flags & NOISY_FLAGS)
        )
        for tr in transitions:
            since = datetime.fromtimestamp(tr.since, UTC)
            out += self._alert(fan_id, fan, tr.kind, tr.state, reading, since)
        sent = fan.gate.admit(reading, force=bool(transitions))
        if sent is None:
            self.counters["suppressed"] += 1
        else:
            fan.batcher.add(sent, now)
        if transitions or fan.batcher.due(now):
            out += self._flush_fan(fan_id, fan)
        return out

    def note_peer(self, payload: bytes) -> None:
        """A status message from another fanwatch component on this device (the tachometer's)."""
        try:
            status = parse_status(payload, thing=self.thing)
        except ContractError as exc:
            self.counters["invalid"] += 1
            log_event(self.log, logging.WARNING, "peer status refused", field=exc.field, problem=exc.problem)
            return
        for name, version in status.components.items():
            self._peers[name] = (version, status.config_digest, status.counters)

    # --- output ---------------------------------------------------------------------------------

    def _alert(
        self,
        fan_id: str,
        fan: _Fan,
        kind: AlertKind,
        state: AlertState,
        reading: Reading,
        since: datetime,
    ) -> list[Publication]:
        alert = Alert(
            thing=self.thing,
            fan=fan_id,
            boot=self.boot,
            seq=fan.alert_seq,
            kind=kind,
            state=state,
            # a lost sensor is noticed now, long after its last reading; it is back with a new one
            ts=reading.ts
            if kind != AlertKind.SENSOR_LOST or state == AlertState.CLEARED
            else self.clock.utc(),
            rpm=reading.rpm,
            since=since,
            detail=_detail(kind, state, reading, self.config),
        )
        fan.alert_seq += 1
        self.counters["alerts"] += 1
        log_event(
            self.log, logging.WARNING, "alert", fan=fan_id, kind=kind, state=state, rpm=round(reading.rpm, 1)
        )
        return [Publication(topic_for("alerts", self.thing), encode(alert), local=True)]

    def _flush_fan(self, fan_id: str, fan: _Fan) -> list[Publication]:
        readings = fan.batcher.take()
        if not readings:
            return []

        def make(part: tuple[Reading, ...], seq: int) -> Telemetry:
            return Telemetry(
                thing=self.thing, fan=fan_id, boot=self.boot, seq=seq, sent=self.clock.utc(), readings=part
            )

        def next_seq() -> int:
            fan.seq += 1
            return fan.seq - 1

        messages, refused = pack(
            readings, make=make, next_seq=next_seq, max_bytes=self.config.max_message_bytes
        )
        if len(messages) > 1:
            log_event(
                self.log,
                logging.INFO,
                "batch split to fit the message limit",
                fan=fan_id,
                parts=len(messages),
            )
        if refused:
            self.counters["dropped"] += len(refused)
            self.counters["too_large"] += len(refused)
            log_event(
                self.log,
                logging.ERROR,
                "reading refused: larger than the message limit on its own",
                fan=fan_id,
                readings=len(refused),
                max_bytes=self.config.max_message_bytes,
            )
        self.counters["messages"] += len(messages)
        self.counters["published"] += sum(len(m.readings) for m, _ in messages)
        topic = topic_for("telemetry", self.thing, rule=self.config.basic_ingest_rule)
        return [Publication(topic, payload) for _, payload in messages]

    def tick(self) -> list[Publication]:
        """Time-driven work: aged batches, silent fans, the periodic status."""
        now = self.clock.now()
        out = []
        for fan_id, fan in self._fans.items():
            if fan.batcher.due(now):
                out += self._flush_fan(fan_id, fan)
            if fan.lost_since is None and now - fan.last_arrival > self.config.sensor_timeout_s:
                fan.lost_since = fan.last_arrival
                last = fan.last_reading
                assert last is not None
                silent = replace(last, rpm=0.0, flags=frozenset())
                out += self._alert(
                    fan_id,
                    fan,
                    AlertKind.SENSOR_LOST,
                    AlertState.RAISED,
                    silent,
                    self.clock.utc(fan.last_arrival),
                )
        if now >= self._status_due:
            self._status_due = now + self.config.status_interval_s
            out.append(Publication(topic_for("status", self.thing), encode(self.status())))
        return out

    def flush(self) -> list[Publication]:
        """Everything held, as messages (on shutdown)."""
        out = []
        for fan_id, fan in self._fans.items():
            out += self._flush_fan(fan_id, fan)
        return out

    def status(self) -> Status:
        components = {COMPONENT: self.version}
        digests = [f"{COMPONENT}={self.config.digest}"]
        counters = dict(self.counters)
        for name, (version, digest, peer_counters) in sorted(self._peers.items()):
            components[name] = version
            digests.append(f"{name}={digest}")
            short = name.rsplit(".", 1)[-1].lower()
            counters.update({f"{short}_{k}": v for k, v in peer_counters.items()})
        latest = max(
            (f.last_reading for f in self._fans.values() if f.last_reading is not None),
            key=lambda r: r.ts,
            default=None,
        )
        return Status(
            thing=self.thing,
            boot=self.boot,
            ts=self.clock.utc(),
            uptime_s=self.clock.now() - self._started,
            components=components,
            config_digest=";".join(digests),
            counters=counters,
            last_reading=latest,
        )


def _detail(kind: AlertKind, state: AlertState, reading: Reading, config: FilterConfig) -> str:
    condition = {
        AlertKind.STALL: f"below {config.stall_rpm:g} rpm or no pulses",
        AlertKind.UNDER_SPEED: f"below {config.under_speed_rpm:g} rpm",
        AlertKind.OVER_SPEED: f"above {config.over_speed_rpm:g} rpm",
        AlertKind.SENSOR_LOST: f"no reading for {config.sensor_timeout_s:g} s",
        AlertKind.NOISY_SIGNAL: f"{config.noisy_percent:g} % or more of the last "
        f"{config.noisy_window_s:g} s of readings with glitches or dropouts in the tach signal",
    }[kind]
    if state == AlertState.RAISED:
        return f"{condition} (rpm {reading.rpm:.0f})"
    return f"no longer {condition} (rpm {reading.rpm:.0f})"
