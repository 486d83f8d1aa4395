"""``logs/greengrass.log``: one core's lines from every part of the local core (IPC denials included).

The parts log to shared module loggers (``fanwatch.core.ipc.server``, ...), and several cores may run
in one process (a :class:`~fanwatch.core.fleet.Fleet`). What one core's tasks log is told apart by a
context variable that its servers' and components' tasks inherit from the task that claimed it.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from pathlib import Path

__all__ = ["LINE_FORMAT", "CoreLog", "EscapingFormatter"]

#: How the core's log lines look, in its greengrass.log and on the console of ``fanwatch core run``.
LINE_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


class EscapingFormatter(logging.Formatter):
    """One record, one line: control characters in a message are written escaped (``\\n``, ``\\x1b``).

    Messages carry strings that clients chose (topics, component names, tokens refused): a topic
    holding a newline once forged whole log lines. A traceback the core itself adds stays as it is.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = _CONTROL.sub(lambda m: repr(m.group())[1:-1], record.message)
        return super().formatMessage(record)


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
        handler.setFormatter(EscapingFormatter(LINE_FORMAT))
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
