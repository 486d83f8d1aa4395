"""Counts a handler keeps per invocation, published as CloudWatch metrics through Powertools.

The namespace is ``POWERTOOLS_METRICS_NAMESPACE`` (the stack sets ``Fanwatch``), with ``Fanwatch`` as
the default so the handlers also run outside Lambda; each handler is a ``service`` dimension.
"""

from __future__ import annotations

import os
from collections import Counter

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

__all__ = ["publish"]


def publish(service: str, counts: Counter[str]) -> None:
    """Emit ``counts`` as one EMF document (a log line Lambda turns into metrics)."""
    metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Fanwatch"), service=service)
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics(raise_on_empty_metrics=False)
