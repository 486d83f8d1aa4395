"""Where the spooler keeps messages: in memory, or in a SQLite file that survives a restart.

Both storages only store and return messages in id order; the size limit and what to evict are the
:class:`~fanwatch.core.mqtt.spooler.Spooler`'s job. The disk storage plays the part of the nucleus'
``aws.greengrass.DiskSpooler`` (which also keeps a SQLite ``spooler.db`` in its work folder).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["DiskStorage", "MemoryStorage", "SpoolStorage", "SpooledMessage"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    """One publish waiting for IoT Core; ``id`` orders messages (oldest first) and never repeats."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool = False

    @property
    def size(self) -> int:
        """What counts against ``maxSizeInBytes``: the payload, as the nucleus counts it."""
        return len(self.payload)


class SpoolStorage(Protocol):
    """What the spooler needs of a storage (:class:`MemoryStorage`, :class:`DiskStorage`): messages kept
    and handed back in id order."""

    def add(self, message: SpooledMessage) -> None:
        """Store ``message``; once this returns it is as durable as the storage can make it."""
        ...

    def oldest(self, limit: int, *, after: int = -1) -> list[SpooledMessage]:
        """Up to ``limit`` messages with ids above ``after``, oldest first."""
        ...

    def remove(self, ids: Collection[int]) -> None:
        """Forget these ids; ids that are not stored are ignored."""
        ...

    def index(self) -> list[tuple[int, int, int]]:
        """(id, qos, size) of every stored message, oldest first: what a restarted core finds."""
        ...

    def close(self) -> None: ...


class MemoryStorage:
    """Messages in a dict (insertion order is id order); gone when the process ends."""

    def __init__(self) -> None:
        self._messages: dict[int, SpooledMessage] = {}

    def add(self, message: SpooledMessage) -> None:
        self._messages[message.id] = message

    def oldest(self, limit: int, *, after: int = -1) -> list[SpooledMessage]:
        result: list[SpooledMessage] = []
        for message in self._messages.values():  # what is skipped is only what is in flight
            if len(result) >= limit:
                break
            if message.id > after:
                result.append(message)
        return result

    def remove(self, ids: Collection[int]) -> None:
        for message_id in ids:
            self._messages.pop(message_id, None)

    def index(self) -> list[tuple[int, int, int]]:
        return [(m.id, m.qos, m.size) for m in self._messages.values()]

    def close(self) -> None:
        self._messages.clear()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id      INTEGER PRIMARY KEY,
    topic   TEXT    NOT NULL,
    qos     INTEGER NOT NULL CHECK (qos IN (0, 1)),
    retain  INTEGER NOT NULL,
    payload BLOB    NOT NULL
)
"""


class DiskStorage:
    """Messages in a SQLite file: each ``add`` is committed (WAL, ``synchronous=FULL``) before it returns.

    That survives a killed process and a power cut: a Pi losing power is the crash a device spooler
    exists for. The file is readable by its owner only (payloads are telemetry, not for other users).
    A file that is not a readable database is moved aside (kept for inspection) and a new one begun,
    so a corrupt spool never stops the core from publishing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as error:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            log.error(
                "spool %s is unreadable (%s); moved it to %s and started an empty spool",
                self.path,
                error,
                aside,
            )
            self.path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # create it private before SQLite opens it
        os.close(fd)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(_SCHEMA)
            db.execute("SELECT count(*) FROM spool").fetchone()
            (verdict,) = db.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {verdict}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def add(self, message: SpooledMessage) -> None:
        self._db.execute(
            "INSERT INTO spool (id, topic, qos, retain, payload) VALUES (?, ?, ?, ?, ?)",
            (message.id, message.topic, message.qos, int(message.retain), message.payload),
        )

    def oldest(self, limit: int, *, after: int = -1) -> list[SpooledMessage]:
        rows = self._db.execute(
            "SELECT id, topic, payload, qos, retain FROM spool WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [SpooledMessage(i, t, bytes(p), q, bool(r)) for i, t, p, q, r in rows]

    def remove(self, ids: Collection[int]) -> None:
        if not ids:
            return
        self._db.execute("BEGIN")  # one commit (one fsync) for the whole batch
        try:
            self._db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def index(self) -> list[tuple[int, int, int]]:
        return list(self._db.execute("SELECT id, qos, length(payload) FROM spool ORDER BY id"))

    def close(self) -> None:
        self._db.close()
