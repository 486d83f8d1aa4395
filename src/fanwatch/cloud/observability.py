"""Counts a handler keeps per invocation, published as CloudWatch metrics through Powertools.

The namespace is ``POWERTOOLS_METRICS_NAMESPACE`` (the stack sets ``Fanwatch``), with ``Fanwatch`` as
the default so the handlers also run outside Lambda; each handler is a ``service`` dimension. Both
names come from :mod:`fanwatch.environment`, as the stack's dashboard reads them.
"""

from __future__ import annotations

import os
from collections import Counter
from enum import StrEnum

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from fanwatch.environment import METRICS_NAMESPACE, METRICS_NAMESPACE_VARIABLE

__all__ = ["Count", "Service", "publish"]


class Service(StrEnum):
    """A handler's Powertools ``service``: its logs' field and its metrics' dimension, which the stack
    sets in each function's environment and its dashboard reads."""

    DETECTOR = "detector"
    NOTIFIER = "notifier"
    LAKE = "lake"


class Count(StrEnum):
    """The counts the stack's dashboard and alarms read by name: the handlers count with these members
    and ``monitoring.py`` charts them, so a renamed count cannot leave a graph silently empty."""

    ANOMALIES = "anomalies"
    GAPS = "gaps"
    DUPLICATES = "duplicates"
    LATE = "late"
    DEAD_LETTERS = "dead_letters"
    NOTIFICATIONS = "notifications"
    HELD_BACK = "held_back"


def publish(service: Service, counts: Counter[str]) -> None:
    """Emit ``counts`` as one EMF document (a log line Lambda turns into metrics)."""
    metrics = Metrics(
        namespace=os.environ.get(METRICS_NAMESPACE_VARIABLE, METRICS_NAMESPACE), service=service
    )
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics(raise_on_empty_metrics=False)
