"""Local pub/sub topics between the two components (the recipes' accessControl names the same ones)."""

from __future__ import annotations

__all__ = ["RAW_TOPICS", "STATUS_TOPIC", "raw_topic"]

#: The tachometer's status, folded into the device status by the edge filter.
STATUS_TOPIC = "fanwatch/local/status"
#: What the edge filter subscribes to: every fan's raw readings.
RAW_TOPICS = "fanwatch/raw/+"


def raw_topic(fan: str) -> str:
    """Where the tachometer publishes one fan's raw readings."""
    return f"fanwatch/raw/{fan}"
