"""The demo's cloud: the embedded AWS stand-in beside the fleet, and what the demo reads back from it.

The stand-in (:class:`fanwatch.standin.EmbeddedAws`) runs the cloud stack as the synthesized template
defines it: the IoT rules engine subscribed to the demo's broker, Kinesis, the detector and notifier
handlers under their event source mappings, Firehose writing the Parquet lake, SNS into the demo's
inbox. It runs on the demo's clock (a :class:`~fanwatch.edge.clock.ScaledClock`, ``timeScale`` times
faster than the wall), so buffering and batching windows shrink with the fans' time and the notifier's
cooldown counts simulated minutes. What the demo changes, each said where it happens:

* the notifier is built with that clock (on Lambda it reads the wall clock);
* the detector is built with ``on_score``, a :class:`ScoreTap` that keeps the score and threshold of
  every reading scored, so the report can draw them under the fan's speed (the stack only emits
  anomalies);
* two stack parameters (:func:`parameters`): the detector's ``SettleSeconds`` is divided by the time
  scale, because it is measured on the readings' timestamps, which are wall-clock times (as the edge
  filter's timings are divided, see :mod:`fanwatch.demo.scenario`); and Firehose buffers 60 simulated
  seconds instead of 15 minutes, so the lake fills while the demo runs.

At the end :meth:`DemoCloud.collect` waits until every stream is processed, has Firehose write what it
buffers, and reads back the lake (readings and events tables), the inbox and the dead letters.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fanwatch.core.mqtt.endpoint import BrokerEndpoint
from fanwatch.demo.observations import CloudRecord, DemoRun, Scored
from fanwatch.edge.clock import Clock, MonotonicClock, ScaledClock

if TYPE_CHECKING:  # the handlers' modules are imported in their containers, after the environment is set
    from fanwatch.cloud.detector import ScoredReading
    from fanwatch.standin import EmbeddedAws
    from fanwatch.standin.functions import Handler
    from fanwatch.standin.inbox import Notification

__all__ = ["DemoCloud", "ScoreTap", "parameters"]

DETECTOR: Final = "fanwatch.cloud.detector.lambda_handler"
NOTIFIER: Final = "fanwatch.cloud.notifier.lambda_handler"
#: Wall seconds the end of a run may wait for the stand-in to process what the fleet sent.
SETTLE_TIMEOUT_S: Final = 60.0
#: Firehose's buffer in the demo, in simulated seconds (the stack's least; its default is 900).
LAKE_BUFFER_S: Final = 60
#: What the demo reads of the lake's two tables.
READING_COLUMNS: Final = ("thing", "fan", "boot", "seq", "ts", "rpm", "target_rpm", "flags", "label")
EVENT_COLUMNS: Final = (
    "source",
    "thing",
    "fan",
    "kind",
    "state",
    "severity",
    "ts",
    "rpm",
    "score",
    "threshold",
)


class ScoreTap:
    """Keeps what the detector's ``on_score`` is told of each reading it scored, once the fan's forest
    scores (a retried record is told again: kept once)."""

    def __init__(self) -> None:
        self._scores: dict[tuple[str, str], dict[datetime, Scored]] = {}
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, scored: ScoredReading) -> None:
        if scored.score <= 0.0:  # the forest is still warming up
            return
        with self._lock:
            mine = self._scores.setdefault((scored.thing, scored.fan), {})
            if scored.reading.ts not in mine:
                self.count += 1
            mine[scored.reading.ts] = Scored(scored.reading.ts, scored.score, scored.threshold)

    def scores(self) -> dict[tuple[str, str], list[Scored]]:
        with self._lock:
            return {key: sorted(s.values(), key=lambda x: x.ts) for key, s in self._scores.items()}


def parameters(stamp_scale: float) -> dict[str, float]:
    """The stack parameters the demo deploys with (see the module docstring); ``stamp_scale`` is how much
    faster than the readings' timestamps the fans run (the time scale when they carry wall-clock time)."""
    from fanwatch.cloud.settings import DetectorSettings

    return {
        "SettleSeconds": round(DetectorSettings().settle_seconds / stamp_scale, 3),
        "LakeBufferSeconds": LAKE_BUFFER_S,
    }


class DemoCloud:
    """``async with DemoCloud(scale, out, broker=endpoint) as cloud``: the stand-in, on the demo's clock.

    ``clock`` is the fans' clock when the run has one of its own (the in-process run's simulated
    clock), else the wall clock sped up ``time_scale`` times; ``stamped_in_simulated_time`` says that
    the readings' timestamps are simulated time, so nothing measured on them is scaled.
    """

    def __init__(
        self,
        time_scale: float,
        out: Path,
        *,
        broker: BrokerEndpoint | None = None,
        clock: Clock | None = None,
        stamped_in_simulated_time: bool = False,
    ) -> None:
        self.clock: Clock = clock or ScaledClock(MonotonicClock(), time_scale)
        self.parameters = parameters(1.0 if stamped_in_simulated_time else time_scale)
        self.lake_dir = out / "lake"
        self._broker = broker
        self.aws: EmbeddedAws | None = None
        self.tap = ScoreTap()
        #: Called with every event the detector is invoked with, before it runs (tests raise from it to
        #: see a handler fail on one record).
        self.before_detector: Callable[[dict[str, Any]], None] | None = None
        self.notifications: list[Notification] = []
        self.held_back = 0

    async def __aenter__(self) -> DemoCloud:
        from fanwatch.standin import EmbeddedAws

        shutil.rmtree(self.lake_dir, ignore_errors=True)  # the lake of this run only
        # The handlers log JSON lines and metrics to stdout, as Lambda wants; on the demo's terminal only
        # their warnings (a record dead-lettered) belong beside the progress line.
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        self.aws = EmbeddedAws.start(
            broker=self._broker,
            clock=self.clock,
            lake_dir=self.lake_dir,
            parameters=self.parameters,
            handlers={DETECTOR: self._detector_handler(), NOTIFIER: self._notifier_handler()},
        )
        await self.aws.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self.aws is not None:
            await self.aws.__aexit__(*exc_info)

    def _detector_handler(self) -> Handler:
        """The detector as the stack runs it, told every score (the stack's detector is told nothing)."""
        from fanwatch.cloud import detector

        built: list[detector.Detector] = []

        def handler(event: dict[str, Any], context: Any) -> Any:
            if not built:  # in the container's environment, as the Lambda's first invocation does
                built.append(detector.from_environment(on_score=self.tap))
            if self.before_detector is not None:
                self.before_detector(event)
            return built[0].handle(event, context)

        return handler

    def _notifier_handler(self) -> Handler:
        """The notifier as the stack runs it, but on the demo's clock: its cooldown is simulated time."""
        from fanwatch.cloud import notifier

        built: list[notifier.Notifier] = []

        def handler(event: dict[str, Any], context: Any) -> Any:
            if not built:
                built.append(notifier.from_environment(clock=self.clock.now))
            response = built[0].handle(event, context)
            self.held_back += built[0].counts["held_back"]
            return response

        return handler

    def progress(self) -> dict[str, int]:
        """Counters for the status line (cheap enough to read every few seconds)."""
        assert self.aws is not None and self.aws.inbox is not None
        self.notifications += self.aws.inbox.receive()
        lake = sum(d.stats.rows for name, d in self.aws.deliveries.items() if name.endswith("readings"))
        events = self.aws.mappings.get(NOTIFIER)
        return {
            "scored": self.tap.count,
            "lake": lake,
            "events": 0 if events is None else events.stats.records,
            "notifications": len(self.notifications),
        }

    async def conclude(self, run: DemoRun, say: Callable[[str], None]) -> None:
        """The fleet has stopped: let the cloud finish and keep what it holds in ``run``."""
        say("the cloud finishes: every stream processed, Firehose's buffers written to the lake")
        run.cloud = await asyncio.to_thread(self.collect)
        if not run.cloud.settled:
            run.problems.append("the AWS stand-in was still busy when the run stopped waiting for it")

    def collect(self, timeout: float = SETTLE_TIMEOUT_S) -> CloudRecord:
        """Once the fleet has stopped: wait for the stand-in to process everything, have Firehose write
        what it buffers, and read the lake, the inbox and the dead letters."""
        aws = self.aws
        assert aws is not None and aws.inbox is not None
        settled = aws.wait_idle(timeout=timeout)
        aws.flush_lake()
        settled = aws.wait_idle(timeout=timeout) and settled
        lake = aws.lake()
        readings = lake.query(f"SELECT {', '.join(READING_COLUMNS)} FROM readings").records()
        events = lake.query(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events").records()
        self.notifications += aws.inbox.receive()
        return CloudRecord(
            readings=readings,
            events=events,
            notifications=list(self.notifications),
            dead_letters=aws.dead_letters(),
            scores=self.tap.scores(),
            held_back=self.held_back,
            settled=settled,
        )
