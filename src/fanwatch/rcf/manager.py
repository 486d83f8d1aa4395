"""One forest per fan, created on first sight, kept in memory up to a limit, evicted to a store.

A Kinesis batch holds the records of many fans interleaved. :meth:`ForestManager.process` scores
and updates them all in one vectorized pass: every fan's forest lives in one shared
:class:`~fanwatch.rcf.bank.TreeBank` and the engine steps all of their trees in lock-step, while
each fan's records are still taken in arrival order.

Memory has two tiers: up to ``max_hydrated`` forests are ready in the bank
(:func:`ready_forest_bytes` each, 2.3 MB at 100 trees x 256); up to ``max_resident`` in all are
kept in this process, the others as compact checkpoints (about 150 KB). Past that the least
recently used go to the store (or are dropped when there is none, and start afresh on their next
record).
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import engine, mapper, state
from .bank import TreeBank
from .config import ForestConfig
from .forest import RandomCutForest
from .inputs import as_points
from .stores import ModelStore, get_many, put_many

__all__ = ["ForestManager", "seed_for"]

# Ready forests checkpointed per store request by flush: bounds the checkpoints held at once (about
# 150 KB each) while keeping a remote store's requests in flight.
_FLUSH_GROUP = 64


def seed_for(seed: int, key: str) -> int:
    """The seed of fan ``key``'s forest: stable across processes (unlike ``hash``)."""
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def ready_forest_bytes(
    *, dimensions: int = 1, shingle_size: int = 4, num_trees: int = 100, sample_size: int = 256
) -> int:
    """Memory one forest takes while ready to score: what ``max_hydrated`` multiplies."""
    shape = ForestConfig(
        dimensions=dimensions, shingle_size=shingle_size, num_trees=num_trees, sample_size=sample_size
    )
    return TreeBank(shape).nbytes()


class ForestManager:
    """One forest per fan (``key``), all with the same parameters, scored a batch at a time.

    The forest parameters are :class:`~fanwatch.rcf.RandomCutForest`'s:

    * ``dimensions``: numbers per reading (the RPM, maybe the target RPM or a temperature).
    * ``shingle_size``: readings per point a tree sees (4: a point is the last 4 readings).
    * ``num_trees``, ``sample_size``: the forest's size (AWS's defaults 100 and 256); memory and
      time grow with their product.
    * ``output_after``: shingled points a forest learns before its scores count (sample_size / 4).
    * ``time_decay``: how fast old points leave the samples (1 / (10 x sample_size)).
    * ``seed``: with the fan id, seeds each new fan's forest (the same fan gets the same forest
      in every process).

    And how the fleet is kept:

    * ``store``: where evicted models go and come back from (:class:`~fanwatch.rcf.MemoryStore`,
      :class:`~fanwatch.rcf.DirectoryStore`, or anything with ``get`` and ``put``); with none, an
      evicted fan starts afresh on its next record.
    * ``max_hydrated``: forests kept ready to score (:func:`ready_forest_bytes` each); the
      detector sizes it from its memory. A batch with more fans is taken in groups of this many.
    * ``max_resident``: models kept in this process in all, the others as compact checkpoints;
      past it the least recently used go to the ``store``.

    :attr:`stats` counts what it took (``created``, ``loaded`` from the store, ``thawed`` from a
    checkpoint in memory, ``frozen`` into one, ``stored``): a fleet's cost is in these moves.
    """

    def __init__(
        self,
        *,
        dimensions: int = 1,
        shingle_size: int = 4,
        num_trees: int = 100,
        sample_size: int = 256,
        output_after: int | None = None,
        time_decay: float | None = None,
        seed: int = 0,
        store: ModelStore | None = None,
        max_resident: int = 10_000,
        max_hydrated: int = 1_000,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        for name, value in (("max_resident", max_resident), ("max_hydrated", max_hydrated)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.config = ForestConfig(
            dimensions=dimensions,
            shingle_size=shingle_size,
            num_trees=num_trees,
            sample_size=sample_size,
            output_after=output_after,
            time_decay=time_decay,
        )
        self.seed = seed
        self.store = store
        self.max_resident = max_resident
        self.max_hydrated = min(max_hydrated, max_resident)
        self._bank = TreeBank(self.config)
        self._hydrated: OrderedDict[str, int] = OrderedDict()  # key -> bank slot, LRU first
        self._cold: OrderedDict[str, bytes] = OrderedDict()  # key -> checkpoint, LRU first
        self.stats: Counter[str] = Counter()

    # ---- the batch ----------------------------------------------------------------------------

    def process(self, keys: Sequence[str], points: Any) -> npt.NDArray[np.float64]:
        """Score then update each record ``(keys[i], points[i])``; per-key order is arrival order."""
        values = as_points(points, self.config.dimensions)
        key_list = list(keys)
        if len(key_list) != len(values):
            raise ValueError(f"got {len(key_list)} keys for {len(values)} points")
        for i, key in enumerate(key_list):
            if not isinstance(key, str) or not key:
                raise ValueError(f"keys must be non-empty strings, got {key!r} at index {i}")
        distinct, inverse = np.unique(np.array(key_list, dtype=object), return_inverse=True)
        scores = np.zeros(len(values))
        # more fans than fit at once: take them in groups, each fan's records staying together
        group_of = np.arange(len(distinct)) // self.max_hydrated
        for group in range(int(group_of.max()) + 1 if len(distinct) else 0):
            members = np.flatnonzero(group_of == group)
            slots = self._hydrate([str(k) for k in distinct[members]])
            slot_of = np.full(len(distinct), -1, np.int64)
            slot_of[members] = slots
            rows = np.flatnonzero(group_of[inverse] == group)
            scores[rows] = engine.process(self._bank, slot_of[inverse[rows]], values[rows])
        return scores

    def _hydrate(self, keys: list[str]) -> npt.NDArray[np.int64]:
        """Bank slots of ``keys`` (at most ``max_hydrated``), loading or creating as needed."""
        wanted = set(keys)
        missing = [k for k in keys if k not in self._hydrated]
        while len(self._hydrated) + len(missing) > self.max_hydrated:
            victim = next(k for k in self._hydrated if k not in wanted)
            self._dehydrate(victim)
        self._bank.reserve(len(missing))
        # one request for every model not in this process: a remote store fetches them concurrently
        remote = [k for k in missing if k not in self._cold]
        stored = get_many(self.store, remote) if self.store is not None and remote else {}
        slots = []
        for key in keys:
            if key in self._hydrated:
                self._hydrated.move_to_end(key)
            else:
                self._hydrated[key] = self._restore(key, stored.get(key))
            slots.append(self._hydrated[key])
        self._trim()
        return np.array(slots, np.int64)

    def _trim(self) -> None:
        """Send the least recently used checkpoints to the store until ``max_resident`` hold."""
        evicted: dict[str, bytes] = {}
        while len(self) > self.max_resident:
            old, data = self._cold.popitem(last=False)
            evicted[old] = data
        self._put(evicted)

    def _put(self, items: dict[str, bytes]) -> None:
        if self.store is not None and items:
            put_many(self.store, items)
            self.stats["stored"] += len(items)

    def _restore(self, key: str, stored: bytes | None) -> int:
        """A bank slot for ``key``: its checkpoint in memory, else ``stored`` (what the store
        held), else a new forest."""
        data = self._cold.pop(key, None)
        if data is not None:
            self.stats["thawed"] += 1
        elif stored is not None:
            data = stored
            self.stats["loaded"] += 1
        else:
            self.stats["created"] += 1
            return self._bank.acquire(seed_for(self.seed, key))
        config, seed = state.read_header(data)
        if config != self.config:
            raise ValueError(f"stored model of {key!r} has parameters {config}, expected {self.config}")
        slot = self._bank.acquire(seed)
        mapper.load(self._bank, slot, data)
        return slot

    def _dehydrate(self, key: str) -> None:
        slot = self._hydrated.pop(key)
        self._cold[key] = mapper.dump(self._bank, slot)
        self._bank.release(slot)
        self.stats["frozen"] += 1

    # ---- the models ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every model held in memory to the store (they stay in memory); no store: no-op."""
        if self.store is None:
            return
        self._put(dict(self._cold))
        ready = list(self._hydrated.items())
        for start in range(0, len(ready), _FLUSH_GROUP):
            group = ready[start : start + _FLUSH_GROUP]
            self._put({key: mapper.dump(self._bank, slot) for key, slot in group})

    def save(self, key: str) -> None:
        """Write fan ``key``'s model to the store now, if this process holds it (no store: no-op).

        Why one at a time: a fleet checkpoints each fan on its own schedule, spreading the writes
        over the batches instead of one burst of every model.
        """
        if key in self._hydrated:
            self._put({key: mapper.dump(self._bank, self._hydrated[key])})
        elif key in self._cold:
            self._put({key: self._cold[key]})

    def discard(self, key: str) -> None:
        """Forget fan ``key``'s model in this process without storing it: its next record loads it
        from the store (for a copy that another process has moved past)."""
        if key in self._hydrated:
            self._bank.release(self._hydrated.pop(key))
        self._cold.pop(key, None)

    def adopt(self, key: str, data: bytes) -> None:
        """Take checkpoint ``data`` as fan ``key``'s model (e.g. a fleet template for a new fan).

        The checkpoint must have this manager's parameters; it replaces any model ``key`` had and
        is loaded on the fan's next record.
        """
        if not isinstance(key, str) or not key:
            raise ValueError(f"a key must be a non-empty string, got {key!r}")
        config, _ = state.read_header(data)
        if config != self.config:
            raise ValueError(f"the model for {key!r} has parameters {config}, expected {self.config}")
        if key in self._hydrated:
            self._bank.release(self._hydrated.pop(key))
        self._cold[key] = bytes(data)
        self._cold.move_to_end(key)
        self._trim()

    def forest(self, key: str) -> RandomCutForest:
        """A standalone copy of fan ``key``'s forest (for attribution or inspection)."""
        if key in self._hydrated:
            return RandomCutForest.from_bytes(mapper.dump(self._bank, self._hydrated[key]))
        data = self._cold.get(key) or (self.store.get(key) if self.store is not None else None)
        if data is None:
            raise KeyError(key)
        return RandomCutForest.from_bytes(data)

    def __contains__(self, key: object) -> bool:
        return key in self._hydrated or key in self._cold

    def __len__(self) -> int:
        return len(self._hydrated) + len(self._cold)

    def __iter__(self) -> Iterator[str]:
        return iter([*self._cold, *self._hydrated])

    @property
    def hydrated(self) -> int:
        """Models ready in the bank."""
        return len(self._hydrated)
