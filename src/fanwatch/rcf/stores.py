"""Where a :class:`~fanwatch.rcf.manager.ForestManager` keeps the models it evicts."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["BatchStore", "DirectoryStore", "MemoryStore", "ModelStore", "get_many", "put_many"]


@runtime_checkable
class ModelStore(Protocol):
    """Checkpoints by fan id: ``get`` returns None for a fan never stored."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes) -> None: ...


@runtime_checkable
class BatchStore(ModelStore, Protocol):
    """A store that moves many checkpoints at once: why it exists is latency. A remote store (S3)
    answers each request in tens of milliseconds, so a batch that reloads a hundred forests one by
    one waits seconds; a store with requests in flight waits for the slowest of them."""

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]: ...

    def put_many(self, items: Mapping[str, bytes]) -> None: ...


def get_many(store: ModelStore, keys: Iterable[str]) -> dict[str, bytes | None]:
    """``store.get`` of every key, at once where the store can (:class:`BatchStore`)."""
    if isinstance(store, BatchStore):
        return store.get_many(keys)
    return {key: store.get(key) for key in keys}


def put_many(store: ModelStore, items: Mapping[str, bytes]) -> None:
    """``store.put`` of every item, at once where the store can (:class:`BatchStore`)."""
    if isinstance(store, BatchStore):
        store.put_many(items)
    else:
        for key, data in items.items():
            store.put(key, data)


class MemoryStore:
    """A dict of checkpoints: for tests, and for a process that keeps every model anyway."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def put(self, key: str, data: bytes) -> None:
        self._data[key] = bytes(data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data


class DirectoryStore:
    """One file per fan under ``root``, written atomically (a crash leaves the old checkpoint).

    File names are the hex of the key's UTF-8 bytes, so any fan id is safe as a file name.
    """

    SUFFIX = ".rcf"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / (key.encode("utf-8").hex() + self.SUFFIX)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
