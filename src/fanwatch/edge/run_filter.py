"""The ``fanwatch.EdgeFilter`` component: raw readings in, batched telemetry and local alerts out.

Subscribes to ``fanwatch/raw/+`` and the tachometer's ``fanwatch/local/status`` on local pub/sub; the
IPC callbacks only put messages on a bounded inbox, which one worker drains. Telemetry, alerts and the
device status go to AWS IoT Core (``PublishToIoTCore``, QoS 1) on ``fanwatch/<thing>/…``; alerts are
also published locally so another component on the device can react without the cloud. On SIGTERM the
worker drains the inbox and publishes every batch it holds before the process exits.

Run by the recipe as ``<venv>/bin/python -m fanwatch.edge.run_filter --artifacts <unpacked zip>``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from fanwatch.edge.clock import Clock, MonotonicClock
from fanwatch.edge.component import ConfigFollower, Inbox, run_component
from fanwatch.edge.config import FilterConfig, parse_filter_config
from fanwatch.edge.ipc import EdgeBus
from fanwatch.edge.logs import log_event
from fanwatch.edge.prefilter import COMPONENT, EdgeFilter, Publication
from fanwatch.edge.topics import RAW_TOPICS, STATUS_TOPIC

__all__ = ["COMPONENT", "FilterService", "main"]

_TICK_S = 0.25  # how often time-driven work (aged batches, silent fans, status) is checked


class FilterService:
    """The component's worker around :class:`~fanwatch.edge.prefilter.EdgeFilter`."""

    def __init__(
        self,
        bus: EdgeBus,
        *,
        thing: str,
        clock: Clock,
        version: str = "unknown",
        logger: logging.Logger | None = None,
    ) -> None:
        self.bus = bus
        self.thing = thing
        self.clock = clock
        self.version = version
        self.log = logger or logging.getLogger(COMPONENT)
        self.follower = ConfigFollower(bus, parse_filter_config, self.log)
        self.inbox = Inbox(FilterConfig().queue_size)
        self.filter: EdgeFilter | None = None

    def start(self) -> None:
        """Load the configuration (ValueError if refused), subscribe, report RUNNING."""
        if not self.follower.refresh():
            raise ValueError("the configuration was refused (see the log line above)")
        assert self.follower.current is not None
        self.inbox = Inbox(self.follower.current.queue_size)
        self.filter = EdgeFilter(
            self.follower.current, thing=self.thing, clock=self.clock, version=self.version, logger=self.log
        )
        self.bus.subscribe_local(RAW_TOPICS, lambda _topic, payload: self.inbox.put("raw", payload))
        self.bus.subscribe_local(STATUS_TOPIC, lambda _topic, payload: self.inbox.put("peer", payload))
        self.bus.on_configuration_update(lambda: self.inbox.put("config"))
        self.bus.report_state("RUNNING")
        log_event(
            self.log, logging.INFO, "started", version=self.version, thing=self.thing, boot=self.filter.boot
        )

    def process(self, timeout: float | None = None) -> None:
        """Handle everything in the inbox (waiting up to ``timeout`` seconds for the first item; None or 0:
        not at all), then tick."""
        assert self.filter is not None, "start() first"
        item = self.inbox.get(timeout) if timeout else self.inbox.get_nowait()
        while item is not None:
            kind, payload = item
            if kind == "raw":
                self._publish(self.filter.accept(payload))
            elif kind == "peer":
                self.filter.note_peer(payload)
            elif self.follower.refresh():
                assert self.follower.current is not None
                self.filter.reconfigure(self.follower.current)
            item = self.inbox.get_nowait()
        overflow = self.inbox.take_overflow()
        if overflow:
            self.filter.counters["dropped"] += overflow
            self.filter.counters["inbox_overflow"] += overflow
            log_event(self.log, logging.ERROR, "inbox full: raw readings dropped", dropped=overflow)
        self._publish(self.filter.tick())

    def _publish(self, publications: list[Publication]) -> None:
        assert self.filter is not None
        for p in publications:
            try:
                self.bus.publish_iot(p.topic, p.payload)
                if p.local:
                    self.bus.publish_local(p.topic, p.payload)
            except Exception as exc:  # a full spooler or a refused topic must not stop the filter
                self.filter.counters["dropped"] += 1
                self.filter.counters["publish_errors"] += 1
                log_event(self.log, logging.ERROR, "publish failed", topic=p.topic, error=repr(exc))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.process(_TICK_S)
        self.shutdown()

    def shutdown(self) -> None:
        """Drain the inbox and publish every batch still held (called on SIGTERM)."""
        assert self.filter is not None
        self.process(None)
        held = self.filter.flush()
        self._publish(held)
        log_event(
            self.log, logging.INFO, "flushed on shutdown", sent=len(held), counters=dict(self.filter.counters)
        )


def main(argv: Sequence[str] | None = None) -> int:
    """The EdgeFilter process as the recipe's Run starts it (IPC, signals and logs: ``run_component``)."""

    def make(
        bus: EdgeBus, thing: str, version: str, log: logging.Logger, _artifacts: Path | None
    ) -> FilterService:
        return FilterService(bus, thing=thing, clock=MonotonicClock(), version=version, logger=log)

    return run_component(COMPONENT, __doc__.splitlines()[0], make, argv)


if __name__ == "__main__":
    sys.exit(main())
