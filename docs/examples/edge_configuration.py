"""Validate an EdgeFilter configuration change the way the running component does before applying it.

Run: python docs/examples/edge_configuration.py
"""

from fanwatch.edge.config import ConfigError, parse_filter_config

good = parse_filter_config({"batchSize": 60, "maxBatchAgeSeconds": 300, "underSpeedRpm": 1200})
print(f"accepted: batch {good.batch_size} readings or {good.max_batch_age_s:g} s, digest {good.digest}")

for change in ({"batchSize": 1000}, {"heartbeatSecond": 30}, {"underSpeedRpm": 50}):
    try:
        parse_filter_config(change)
    except ConfigError as exc:
        print(f"refused {change}: key {exc.key!r}: {exc.problem}")
