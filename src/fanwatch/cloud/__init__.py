"""The cloud half of fanwatch: Lambda handlers and the pure logic under them.

Each handler module keeps its AWS clients injectable and its ``lambda_handler`` one line over a typed
record handler, so the same code runs on Lambda and in-process against the embedded AWS stand-in.

- :mod:`fanwatch.cloud.detector`: telemetry stream -> per-fan Random Cut Forest -> anomalies stream
- :mod:`fanwatch.cloud.notifier`: anomalies and edge alerts -> SNS, with a cooldown per fan and kind
- :mod:`fanwatch.cloud.lake`: Firehose transformation that flattens messages into lake rows
"""

__all__: list[str] = []  # the handlers are imported by module (their Lambda handler strings name them)
