"""``logs/greengrass.log``: one core's lines from every part of the local core (IPC denials included).

The parts log to shared module loggers (``fanwatch.core.ipc.server``, ...), and several cores may run
in one process (a :class:`~fanwatch.core.fleet.Fleet`). What one core's tasks log is told apart by a
context variable that its servers' and components' tasks inherit from the task that claimed it.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from pathlib import Path

__all__ = ["CoreLog"]

#: The thing whose core the running task belongs to.
_current_thing: ContextVar[str | None] = ContextVar("fanwatch_core_thing", default=None)


class _ThisCore(logging.Filter):
    def __init__(self, thing_name: str, logger_name: str) -> None:
        super().__init__()
        self._thing_name = thing_name
        self._logger_name = logger_name

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == self._logger_name or _current_thing.get() == self._thing_name


class CoreLog:
    """Routes the lines of one core's tasks, and of its own logger, into its ``greengrass.log``."""

    def __init__(self, thing_name: str, path: Path, logger: logging.Logger) -> None:
        self._thing_name = thing_name
        self._path = path
        self._logger = logger
        self._handler: logging.Handler | None = None

    def claim_current_task(self) -> None:
        """What this task logs from now on, and what the tasks it starts log, is this core's."""
        _current_thing.set(self._thing_name)

    def open(self) -> None:
        self.claim_current_task()
        handler = logging.FileHandler(self._path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
        handler.addFilter(_ThisCore(self._thing_name, self._logger.name))
        handler.setLevel(logging.INFO)
        parent = logging.getLogger("fanwatch.core")
        if parent.getEffectiveLevel() > logging.INFO:
            parent.setLevel(logging.INFO)
        parent.addHandler(handler)
        self._handler = handler

    def close(self) -> None:
        if self._handler is not None:
            logging.getLogger("fanwatch.core").removeHandler(self._handler)
            self._handler.close()
            self._handler = None
