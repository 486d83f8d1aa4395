"""What reaches the cloud, and in how many messages: deadband + heartbeat, batching, size limits.

A reading is sent when it differs from the last one sent by more than the deadband (the larger of an
absolute and a relative band), when its stall state changes, when an alert changes, or when the
heartbeat falls due; everything else is suppressed. Sent readings are batched, several per MQTT
message, which is what keeps a fleet's message bill down. A batch that would exceed IoT Core's
payload limit is split in halves until each part fits; a single reading that cannot fit is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from fanwatch.telemetry import QualityFlag, Reading, Telemetry, encode

__all__ = ["Batcher", "DeadbandGate", "pack"]


class DeadbandGate:
    """Decides which readings of one fan are worth sending."""

    def __init__(self, *, deadband_rpm: float, deadband_percent: float, heartbeat_s: float) -> None:
        self._last: Reading | None = None
        self.reconfigure(
            deadband_rpm=deadband_rpm, deadband_percent=deadband_percent, heartbeat_s=heartbeat_s
        )

    def reconfigure(self, *, deadband_rpm: float, deadband_percent: float, heartbeat_s: float) -> None:
        self.deadband_rpm = deadband_rpm
        self.deadband_percent = deadband_percent
        self.heartbeat_s = heartbeat_s

    def admit(self, reading: Reading, *, force: bool = False) -> Reading | None:
        """The reading to send (flagged ``heartbeat`` when only the heartbeat let it through), or None."""
        last = self._last
        stalled = QualityFlag.STALLED in reading.flags
        if last is None or force or stalled != (QualityFlag.STALLED in last.flags):
            self._last = reading
            return reading
        band = max(self.deadband_rpm, self.deadband_percent / 100.0 * last.rpm)
        if band <= 0 or abs(reading.rpm - last.rpm) > band:  # a zero deadband sends every reading
            self._last = reading
            return reading
        if (reading.ts - last.ts).total_seconds() >= self.heartbeat_s:
            self._last = reading
            return replace(reading, flags=reading.flags | {QualityFlag.HEARTBEAT})
        return None


class Batcher:
    """Collects one fan's readings until the batch is full or its oldest reading is too old."""

    def __init__(self, *, batch_size: int, max_age_s: float) -> None:
        self._readings: list[Reading] = []
        self._opened: float | None = None
        self.reconfigure(batch_size=batch_size, max_age_s=max_age_s)

    def reconfigure(self, *, batch_size: int, max_age_s: float) -> None:
        self.batch_size = batch_size
        self.max_age_s = max_age_s

    def __len__(self) -> int:
        return len(self._readings)

    def add(self, reading: Reading, now: float) -> None:
        if not self._readings:
            self._opened = now
        self._readings.append(reading)

    def due(self, now: float) -> bool:
        if not self._readings:
            return False
        assert self._opened is not None
        return len(self._readings) >= self.batch_size or now - self._opened >= self.max_age_s

    def take(self) -> tuple[Reading, ...]:
        out, self._readings, self._opened = tuple(self._readings), [], None
        return out


def pack(
    readings: tuple[Reading, ...],
    *,
    make: Callable[[tuple[Reading, ...], int], Telemetry],
    next_seq: Callable[[], int],
    max_bytes: int,
) -> tuple[list[tuple[Telemetry, bytes]], list[Reading]]:
    """(messages for ``readings``, each within ``max_bytes``; readings that cannot fit even alone).

    A batch that is too large is split in halves until every part fits. ``make(readings, seq)``
    builds a message; sequence numbers are drawn only for messages that are sent, so a split or a
    refusal leaves no gap for the cloud to report.
    """
    parts = [readings]
    fitted: list[tuple[Reading, ...]] = []
    refused: list[Reading] = []
    probe_seq = 2**53 - 1  # the widest sequence number, so a probe is never smaller than the real message
    while parts:
        part = parts.pop(0)
        if len(encode(make(part, probe_seq))) <= max_bytes:
            fitted.append(part)
        elif len(part) == 1:
            refused.append(part[0])
        else:
            half = len(part) // 2
            parts[:0] = [part[:half], part[half:]]
    messages = []
    for part in fitted:
        message = make(part, next_seq())
        messages.append((message, encode(message)))
    return messages, refused
