"""Structured log lines: one JSON object per line, so the Greengrass log (and CloudWatch, through the
log manager) can be searched by field instead of by regular expression."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

__all__ = ["JsonFormatter", "configure", "log_event"]


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object: time, level, logger, event, the fields :func:`log_event` gave it
    and the traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure(name: str, *, stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Logger:
    """A logger named ``name`` that writes JSON lines to ``stream`` (stdout: Greengrass captures it)."""
    logger = logging.getLogger(name)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return logger


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with ``fields`` as top-level keys of the JSON line."""
    logger.log(level, event, extra={"fields": fields})
