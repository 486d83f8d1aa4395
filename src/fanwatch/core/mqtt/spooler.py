"""The nucleus' MQTT spooler: what PublishToIoTCore hands its messages to, bounded by ``maxSizeInBytes``.

It behaves as the released nucleus does (``Spool.java``), which is stricter than the Greengrass
documentation's "discards the oldest messages":

* a message larger than the whole spool is refused;
* when a message does not fit, the oldest **QoS 0** messages are evicted until it does; if it cannot
  fit that way, it is refused with :class:`~fanwatch.core.ports.SpoolFullError` and nothing is
  evicted (the nucleus drops the QoS 0 messages even then): an accepted QoS 1 message is never
  thrown away to make room (``RejectNewData``);
* ``strategyOnFull: OverwriteOldestData`` (from the nucleus' overwrite-strategy branch, not in a
  released nucleus) also evicts the oldest QoS 1 messages, for devices where fresh data matters more;
* when the connection drops, queued QoS 0 messages are dropped unless ``keepQos0WhenOffline``.

Only the payload counts against the size, as in the nucleus. Not thread-safe: one event loop owns it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar

from fanwatch.core.mqtt.storage import DiskStorage, MemoryStorage, SpooledMessage, SpoolStorage
from fanwatch.core.ports import SpoolFullError

__all__ = [
    "DEFAULT_MAX_SIZE_IN_BYTES",
    "DISK_SPOOLER_COMPONENT",
    "OnFull",
    "SpooledMessage",
    "Spooler",
    "SpoolerConfig",
    "StorageType",
]

log = logging.getLogger(__name__)

#: The nucleus' default ``mqtt.spooler.maxSizeInBytes`` (2.5 MB).
DEFAULT_MAX_SIZE_IN_BYTES: Final = 2_621_440
#: The component whose work folder holds the nucleus' disk spool (``work/<it>/spooler.db``).
DISK_SPOOLER_COMPONENT: Final = "aws.greengrass.DiskSpooler"


class StorageType(StrEnum):
    """Where the spooler keeps its messages (``mqtt.spooler.storageType``): in memory, gone with the
    process, or on disk, where a restarted core finds them."""

    MEMORY = "Memory"
    DISK = "Disk"


class OnFull(StrEnum):
    """What a full spool may evict for a new message (``mqtt.spooler.strategyOnFull``): QoS 0 messages only
    (``RejectNewData``, the nucleus' way) or QoS 1 messages too."""

    REJECT_NEW_DATA = "RejectNewData"
    OVERWRITE_OLDEST_DATA = "OverwriteOldestData"


_Choice = TypeVar("_Choice", bound=StrEnum)


def _choice(kind: type[_Choice], key: str, value: object) -> _Choice:
    for member in kind:
        if isinstance(value, str) and value.lower() == member.value.lower():
            return member
    raise ValueError(f"mqtt.spooler.{key}: {value!r} is not one of {[m.value for m in kind]}")


def _boolean(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"mqtt.spooler.{key}: {value!r} is not true or false")


def _size(key: str, value: object) -> int:
    try:
        size = int(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
    except ValueError:
        size = None
    if size is None or size <= 0:
        raise ValueError(f"mqtt.spooler.{key}: {value!r} is not a positive whole number of bytes")
    return size


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolerConfig:
    """The ``mqtt.spooler`` section of the aws.greengrass.Nucleus configuration."""

    storage_type: StorageType = StorageType.MEMORY
    max_size_in_bytes: int = DEFAULT_MAX_SIZE_IN_BYTES
    keep_qos0_when_offline: bool = False
    on_full: OnFull = OnFull.REJECT_NEW_DATA

    @classmethod
    def from_nucleus(cls, spooler: Mapping[str, Any] | None) -> SpoolerConfig:
        """Read ``mqtt.spooler`` as the nucleus coerces it ("true", "4096" and "disk" are accepted).

        Keys this stand-in does not use (``pluginName``) are ignored; a value that cannot mean
        anything raises ValueError naming the key, so a typo never silently becomes the default.
        """
        spooler = spooler or {}
        if not isinstance(spooler, Mapping):
            raise ValueError(f"mqtt.spooler must be an object, not {type(spooler).__name__}")
        default = cls()
        return cls(
            storage_type=_choice(
                StorageType, "storageType", spooler.get("storageType", default.storage_type)
            ),
            max_size_in_bytes=_size(
                "maxSizeInBytes", spooler.get("maxSizeInBytes", default.max_size_in_bytes)
            ),
            keep_qos0_when_offline=_boolean(
                "keepQos0WhenOffline", spooler.get("keepQos0WhenOffline", default.keep_qos0_when_offline)
            ),
            on_full=_choice(OnFull, "strategyOnFull", spooler.get("strategyOnFull", default.on_full)),
        )


class Spooler:
    """Messages waiting for IoT Core, oldest first, within ``max_size_in_bytes`` of payload."""

    def __init__(
        self,
        storage: SpoolStorage,
        *,
        max_size_in_bytes: int = DEFAULT_MAX_SIZE_IN_BYTES,
        keep_qos0_when_offline: bool = False,
        on_full: OnFull = OnFull.REJECT_NEW_DATA,
    ) -> None:
        if max_size_in_bytes <= 0:
            raise ValueError(f"max_size_in_bytes must be positive, not {max_size_in_bytes}")
        self.max_size_in_bytes = max_size_in_bytes
        self.keep_qos0_when_offline = keep_qos0_when_offline
        self.on_full = on_full
        self._storage = storage
        self._index: dict[int, tuple[int, int]] = {}  # id -> (qos, size), in id order
        for message_id, qos, size in storage.index():
            self._index[message_id] = (qos, size)
        self._size = sum(size for _, size in self._index.values())
        self._next_id = max(self._index, default=-1) + 1
        if self._index:
            log.info(
                "spool holds %d messages (%d bytes) from before the restart", len(self._index), self._size
            )
        if self._size > max_size_in_bytes:
            log.warning(
                "spool holds %d bytes, more than maxSizeInBytes (%d): it keeps them all, and takes new "
                "messages only as it drains",
                self._size,
                max_size_in_bytes,
            )

    @classmethod
    def open(cls, config: SpoolerConfig, *, core_root: str | os.PathLike[str] | None = None) -> Spooler:
        """The spooler ``config`` asks for; a Disk one keeps ``<core_root>/work/<DiskSpooler>/spooler.db``."""
        storage: SpoolStorage
        if config.storage_type is StorageType.DISK:
            if core_root is None:
                raise ValueError("a Disk spooler needs the core's root folder")
            storage = DiskStorage(Path(core_root) / "work" / DISK_SPOOLER_COMPONENT / "spooler.db")
        else:
            storage = MemoryStorage()
        return cls(
            storage,
            max_size_in_bytes=config.max_size_in_bytes,
            keep_qos0_when_offline=config.keep_qos0_when_offline,
            on_full=config.on_full,
        )

    def __len__(self) -> int:
        return len(self._index)

    @property
    def persistent(self) -> bool:
        """Whether what it holds outlives the process (Disk), or is lost when it closes (Memory)."""
        return not isinstance(self._storage, MemoryStorage)

    @property
    def size_in_bytes(self) -> int:
        return self._size

    def add(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> SpooledMessage:
        """Queue a message, evicting as the configured strategy allows; SpoolFullError if it cannot fit."""
        size = len(payload)
        if size > self.max_size_in_bytes:
            raise SpoolFullError(
                f"message of {size} bytes on {topic!r} is larger than the whole spool "
                f"({self.max_size_in_bytes} bytes)"
            )
        victims = self._victims(self._size + size - self.max_size_in_bytes)
        if victims is None:
            raise SpoolFullError(
                f"spool full: {len(self._index)} messages hold {self._size} of {self.max_size_in_bytes} "
                f"bytes and none may be evicted; refused {size} bytes on {topic!r}"
            )
        if victims:
            freed = sum(self._index[i][1] for i in victims)
            log.warning(
                "spool full: evicted the %d oldest messages (%d bytes) to make room", len(victims), freed
            )
            self.remove(victims)
        message = SpooledMessage(self._next_id, topic, bytes(payload), qos, retain)
        self._storage.add(message)
        self._next_id += 1
        self._index[message.id] = (qos, size)
        self._size += size
        return message

    def _victims(self, excess: int) -> list[int] | None:
        """The ids to evict to free ``excess`` bytes (oldest QoS 0 first), or None if that is not possible.

        Nothing is evicted unless the new message then fits (the nucleus drops QoS 0 messages even
        when it goes on to refuse the new one; that loses data for nothing).
        """
        victims: list[int] = []
        passes = (0, 1) if self.on_full is OnFull.OVERWRITE_OLDEST_DATA else (0,)
        for evictable in passes:
            for message_id, (qos, size) in self._index.items():
                if excess <= 0:
                    return victims
                if qos == evictable:
                    victims.append(message_id)
                    excess -= size
        return victims if excess <= 0 else None

    def oldest(self, limit: int, *, after: int = -1) -> list[SpooledMessage]:
        """Up to ``limit`` messages with ids above ``after`` (the last one sent), oldest first."""
        return self._storage.oldest(limit, after=after) if self._index and limit > 0 else []

    def remove(self, ids: Iterable[int]) -> None:
        """Forget messages that were delivered (or evicted); unknown ids are ignored."""
        known = [i for i in ids if i in self._index]
        self._storage.remove(known)
        for message_id in known:
            self._size -= self._index.pop(message_id)[1]

    def drop_qos0(self) -> int:
        """The connection dropped: discard queued QoS 0 messages unless ``keep_qos0_when_offline``."""
        if self.keep_qos0_when_offline:
            return 0
        qos0 = [message_id for message_id, (qos, _) in self._index.items() if qos == 0]
        self.remove(qos0)
        if qos0:
            log.info("offline: dropped %d queued QoS 0 messages (keepQos0WhenOffline is false)", len(qos0))
        return len(qos0)

    def close(self) -> None:
        self._storage.close()
