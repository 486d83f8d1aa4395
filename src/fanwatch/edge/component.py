"""What both component runners share: following the configuration, the version, signals, the inbox."""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from fanwatch.edge.config import ConfigError
from fanwatch.edge.ipc import EdgeBus
from fanwatch.edge.logs import configure, log_event
from fanwatch.environment import THING_NAME_VARIABLE

__all__ = [
    "ConfigFollower",
    "Inbox",
    "InboxKind",
    "Service",
    "run_component",
    "stop_on_signals",
    "version_from_artifacts",
]

C = TypeVar("C")


def version_from_artifacts(path: str | None) -> str:
    """The component version, read from where the nucleus unpacked the artifact.

    The nucleus unpacks into ``…/artifacts-unarchived/<component>/<version>/<zip name>/``, so the
    version is known even when gdk resolved ``NEXT_PATCH`` only at publish time.
    """
    if not path:
        return "unknown"
    parts = Path(path).resolve().parts
    return parts[-2] if len(parts) >= 3 else "unknown"


class ConfigFollower(Generic[C]):
    """Keeps the last good configuration; a refused one is logged with the key that is wrong."""

    def __init__(self, bus: EdgeBus, parse: Callable[[Any], C], logger: logging.Logger) -> None:
        self.bus = bus
        self.parse = parse
        self.log = logger
        self.current: C | None = None

    def refresh(self) -> bool:
        """Read the configuration (IPC ``GetConfiguration``); True if a new good one is now in force."""
        raw = self.bus.get_configuration()
        try:
            config = self.parse(raw)
        except ConfigError as exc:
            kept = "the last good configuration stays in force" if self.current else "no configuration yet"
            log_event(
                self.log, logging.ERROR, "configuration refused", key=exc.key, problem=exc.problem, kept=kept
            )
            return False
        if config == self.current:
            return False
        self.current = config
        log_event(self.log, logging.INFO, "configuration applied", digest=getattr(config, "digest", ""))
        return True


#: What the IPC thread hands a component's worker: a raw reading, the tachometer's status, or word
#: that the configuration changed.
InboxKind = Literal["raw", "peer", "config"]


class Inbox:
    """A bounded queue fed from the IPC thread: ``put`` never blocks, a full inbox drops and counts."""

    def __init__(self, maxsize: int) -> None:
        self._queue: queue.Queue[tuple[InboxKind, Any]] = queue.Queue(maxsize=maxsize)
        self._lock = threading.Lock()
        self._overflow = 0

    def put(self, kind: InboxKind, item: Any = None) -> None:
        try:
            self._queue.put_nowait((kind, item))
        except queue.Full:
            with self._lock:
                self._overflow += 1

    def get(self, timeout: float) -> tuple[InboxKind, Any] | None:
        """The oldest item, waiting up to ``timeout`` seconds for one; None when none came."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def get_nowait(self) -> tuple[InboxKind, Any] | None:
        """The oldest item, or None at once when the inbox is empty."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def take_overflow(self) -> int:
        with self._lock:
            n, self._overflow = self._overflow, 0
        return n


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (how the nucleus stops a component) and SIGINT set ``stop`` for a clean exit."""

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


class Service(Protocol):
    """What a component does, apart from the process plumbing of :func:`run_component` (IPC, signals,
    logs)."""

    def start(self) -> None:
        """Load the configuration and subscribe; ValueError when the component cannot run."""
        ...

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set, then finish cleanly."""
        ...


#: Builds a component's service from (bus, thing name, version, logger, unpacked artifact folder).
ServiceFactory = Callable[[EdgeBus, str, str, logging.Logger, Path | None], Service]


def run_component(component: str, description: str, make: ServiceFactory, argv: Sequence[str] | None) -> int:
    """A component process as the recipe's Run starts it: IPC from the environment, SIGTERM to stop."""
    parser = argparse.ArgumentParser(prog=component, description=description)
    parser.add_argument("--artifacts", help="the unpacked artifact folder (gives the component version)")
    args = parser.parse_args(argv)
    log = configure(component)
    thing = os.environ.get(THING_NAME_VARIABLE, "")
    if not thing:
        log_event(log, logging.ERROR, f"{THING_NAME_VARIABLE} is not set: run me as a Greengrass component")
        return 2
    from fanwatch.edge.ipc import GreengrassBus

    bus = GreengrassBus()
    stop = threading.Event()
    stop_on_signals(stop)
    artifacts = Path(args.artifacts) if args.artifacts else None
    service = make(bus, thing, version_from_artifacts(args.artifacts), log, artifacts)
    try:
        try:
            service.start()
        except ValueError as exc:
            log_event(log, logging.ERROR, "cannot start", problem=str(exc))
            bus.report_state("ERRORED")
            return 1
        service.run(stop)
    finally:
        bus.close()
    return 0
