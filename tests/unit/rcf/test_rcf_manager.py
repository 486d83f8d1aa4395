"""Per-fan forests: lock-step batches equal standalone forests; LRU tiers, stores and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fanwatch.rcf import DirectoryStore, ForestManager, MemoryStore, ModelStore, RandomCutForest
from fanwatch.rcf.manager import seed_for

SMALL = {"num_trees": 8, "sample_size": 32}


def _fleet(fans: int, steps: int, fan_stream) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Interleaved records of ``fans`` fans (arrival order: time, then fan), and each fan's stream."""
    streams = np.stack([fan_stream(steps, seed=i, level=1000 + 100 * i) for i in range(fans)], 1)
    keys = [f"fan-{i:02d}" for i in range(fans)] * steps
    return keys, streams.reshape(-1), streams


def test_a_batch_scores_like_one_standalone_forest_per_fan(fan_stream) -> None:
    keys, points, streams = _fleet(6, 150, fan_stream)
    scores = ForestManager(**SMALL).process(keys, points).reshape(150, 6)
    for i in range(6):
        alone = RandomCutForest(1, **SMALL, seed=seed_for(0, f"fan-{i:02d}"))
        assert np.array_equal(scores[:, i], alone.process(streams[:, i]))


def test_uneven_batches_keep_each_fans_order(fan_stream) -> None:
    keys, points, _ = _fleet(5, 120, fan_stream)
    whole = ForestManager(**SMALL).process(keys, points)
    manager = ForestManager(**SMALL)
    rng = np.random.default_rng(1)
    cuts = np.sort(rng.choice(np.arange(1, len(keys)), 7, replace=False))
    parts = [
        manager.process(keys[a:b], points[a:b]) for a, b in zip([0, *cuts], [*cuts, len(keys)], strict=True)
    ]
    assert np.array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize(
    "tiers", [{"max_resident": 3, "max_hydrated": 2}, {"max_resident": 50, "max_hydrated": 2}]
)
def test_evicted_models_come_back_from_the_store_unchanged(fan_stream, tiers) -> None:
    keys, points, _ = _fleet(7, 200, fan_stream)
    expected = ForestManager(**SMALL).process(keys, points)
    store = MemoryStore()
    manager = ForestManager(**SMALL, store=store, **tiers)
    got = np.concatenate(
        [manager.process(keys[i : i + 70], points[i : i + 70]) for i in range(0, len(keys), 70)]
    )
    assert np.array_equal(got, expected)
    assert len(manager) <= tiers["max_resident"] and manager.hydrated <= tiers["max_hydrated"]
    if tiers["max_resident"] < 7:
        assert len(store) >= 7 - tiers["max_resident"]


def test_flush_then_a_new_process_resumes_every_fan(tmp_path, fan_stream) -> None:
    keys, points, _ = _fleet(4, 160, fan_stream)
    half = len(keys) // 2
    expected = ForestManager(**SMALL).process(keys, points)
    first = ForestManager(**SMALL, store=DirectoryStore(tmp_path))
    first.process(keys[:half], points[:half])
    first.flush()
    second = ForestManager(**SMALL, store=DirectoryStore(tmp_path))
    assert np.array_equal(second.process(keys[half:], points[half:]), expected[half:])
    assert sorted(second) == sorted(set(keys))


def test_without_a_store_an_evicted_fan_starts_afresh(fan_stream) -> None:
    keys, points, _ = _fleet(3, 100, fan_stream)
    manager = ForestManager(**SMALL, max_resident=1)
    manager.process(keys, points)
    assert len(manager) == 1
    manager.flush()  # nothing to write to: a no-op


def test_directory_store_takes_any_key_and_writes_atomically(tmp_path) -> None:
    store = DirectoryStore(tmp_path / "models")
    assert isinstance(store, ModelStore)
    for key in ["fan/1", "../../etc/passwd", "ventilateur-é", "a" * 100]:
        assert store.get(key) is None
        store.put(key, key.encode())
        assert store.get(key) == key.encode()
    assert all(p.parent == tmp_path / "models" for p in (tmp_path / "models").iterdir())
    assert not list((tmp_path / "models").glob(".tmp-*"))


def test_the_manager_can_hand_out_a_copy_of_a_fans_forest(fan_stream) -> None:
    keys, points, _ = _fleet(3, 120, fan_stream)
    manager = ForestManager(**SMALL)
    manager.process(keys, points)
    forest = manager.forest("fan-01")
    assert forest.seen == 120
    assert forest.attribution(5000.0).high[0] > 1
    with pytest.raises(KeyError):
        manager.forest("fan-99")


@pytest.mark.parametrize(
    ("keys", "points"),
    [
        (["a", "b"], [1.0]),
        (["a", 3], [1.0, 2.0]),
        (["a", ""], [1.0, 2.0]),
        (["a", None], [1.0, 2.0]),
        (["a", "b"], [1.0, float("nan")]),
        (["a", "b"], ["1", "2"]),
    ],
)
def test_a_bad_batch_changes_no_model(fan_stream, keys, points) -> None:
    good_keys, good_points, _ = _fleet(2, 80, fan_stream)
    store = MemoryStore()
    manager = ForestManager(**SMALL, store=store)
    manager.process(good_keys, good_points)
    manager.flush()
    before = {k: store.get(k) for k in ("fan-00", "fan-01")}
    with pytest.raises(ValueError):
        manager.process(keys, points)
    manager.flush()
    assert {k: store.get(k) for k in ("fan-00", "fan-01")} == before
    assert "a" not in manager


def test_a_stored_model_with_other_parameters_is_refused() -> None:
    store = MemoryStore()
    other = RandomCutForest(1, num_trees=4, sample_size=16)
    other.process(np.arange(50.0))
    store.put("fan", other.to_bytes())
    with pytest.raises(ValueError, match="parameters"):
        ForestManager(**SMALL, store=store).process(["fan"], [1.0])


def test_a_corrupt_stored_model_is_a_value_error(fan_stream) -> None:
    store = MemoryStore()
    store.put("fan", b"FWRCF-garbage")
    manager = ForestManager(**SMALL, store=store)
    with pytest.raises(ValueError):
        manager.process(["fan"], [1.0])


def test_vector_records(fan_stream) -> None:
    manager = ForestManager(**SMALL, dimensions=2)
    rpm = fan_stream(100)
    scores = manager.process(["x"] * 100, np.stack([rpm, np.full(100, 1500.0)], 1))
    assert scores.shape == (100,) and (scores[40:] > 0).all()


def test_adopting_a_template_model_starts_a_new_fan_from_it(fan_stream) -> None:
    template = RandomCutForest(1, **SMALL, seed=5)
    template.process(fan_stream(300))
    data = template.to_bytes()
    manager = ForestManager(**SMALL, max_resident=2, store=MemoryStore())
    manager.adopt("new-fan", data)
    assert "new-fan" in manager
    follow = fan_stream(50, seed=9)
    assert np.array_equal(manager.process(["new-fan"] * 50, follow), template.process(follow))
    with pytest.raises(ValueError, match="parameters"):
        manager.adopt("other", RandomCutForest(1, num_trees=3, sample_size=16).to_bytes())
    with pytest.raises(ValueError):
        manager.adopt("other", b"junk")
    with pytest.raises(ValueError):
        manager.adopt("", data)


def test_a_fan_joining_a_running_fleet_scores_like_a_fresh_forest(fan_stream) -> None:
    keys, points, _ = _fleet(4, 200, fan_stream)
    manager = ForestManager(**SMALL)
    manager.process(keys, points)  # four fans with full samplers
    late = fan_stream(60, seed=42)
    # a random interleaving that keeps each fan's own order
    is_late = np.zeros(60 + 240, bool)
    is_late[np.random.default_rng(3).choice(300, 60, replace=False)] = True
    mixed_keys = np.empty(300, dtype=object)
    mixed_keys[is_late], mixed_keys[~is_late] = "late-fan", keys[:240]
    mixed = np.empty(300)
    mixed[is_late], mixed[~is_late] = late, points[:240]
    got = manager.process(list(mixed_keys), mixed)
    alone = RandomCutForest(1, **SMALL, seed=seed_for(0, "late-fan")).process(late)
    assert np.array_equal(got[is_late], alone)
    running = ForestManager(**SMALL)
    running.process(keys, points)
    assert np.array_equal(got[~is_late], running.process(keys[:240], points[:240]))


def test_ready_forest_bytes_grows_with_the_forest() -> None:
    from fanwatch.rcf import ready_forest_bytes

    small = ready_forest_bytes(num_trees=10, sample_size=64)
    assert small < ready_forest_bytes(num_trees=20, sample_size=64) < 2 * small  # trees plus a shared store
    assert ready_forest_bytes(num_trees=10, sample_size=128) > small
    assert ready_forest_bytes(num_trees=10, sample_size=64, dimensions=3) > small


def test_new_fans_grow_the_bank_once_and_keep_the_fans_it_had(fan_stream) -> None:
    keys, points, _ = _fleet(3, 100, fan_stream)
    manager = ForestManager(**SMALL)
    manager.process(keys, points)
    newcomers = [f"new-{i:02d}" for i in range(37)]
    manager.process(newcomers, np.full(len(newcomers), 1500.0))
    bank = manager._bank
    assert bank.capacity == 40  # room for exactly the 3 + 37 fans: one allocation, not doubling to 48
    bank.check_invariants(*range(bank.capacity))
    alone = ForestManager(**SMALL)
    alone.process(keys, points)
    assert np.array_equal(manager.process(keys, points), alone.process(keys, points))


def test_a_fan_saved_alone_or_discarded_comes_back_from_the_store(fan_stream) -> None:
    """``save`` writes one fan's model now; ``discard`` drops a copy another process moved past, so
    the next record of that fan loads the stored model; ``stats`` counts each move."""
    keys, points, _ = _fleet(3, 60, fan_stream)
    store = MemoryStore()
    manager = ForestManager(**SMALL, store=store, max_hydrated=2)
    manager.process(keys[:90], points[:90])
    assert manager.stats["created"] == 3 and manager.stats["frozen"] >= 1
    manager.save("fan-01")
    assert "fan-01" in store and "fan-00" not in store and manager.stats["stored"] == 1
    saved = store.get("fan-01")
    manager.process(["fan-01"] * 5, points[90:95])  # learns past the saved model
    manager.discard("fan-01")
    assert "fan-01" not in manager
    again = manager.process(["fan-01"] * 5, points[90:95])  # from the store: as it was saved
    reference = ForestManager(**SMALL)
    reference.adopt("fan-01", saved)
    assert np.array_equal(again, reference.process(["fan-01"] * 5, points[90:95]))
    assert manager.stats["loaded"] == 1
    manager.discard("fan-02")
    manager.discard("never-seen")  # nothing to forget
    manager.save("never-seen")  # nothing to write
    assert "fan-02" not in manager and manager.stats["stored"] == 1


class ManyAtOnce(MemoryStore):
    """A :class:`~fanwatch.rcf.BatchStore` in memory that records how the manager asked."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, list[str]]] = []

    def get_many(self, keys) -> dict[str, bytes | None]:
        keys = list(keys)
        self.requests.append(("get", keys))
        return {key: self.get(key) for key in keys}

    def put_many(self, items) -> None:
        self.requests.append(("put", list(items)))
        for key, data in items.items():
            self.put(key, data)


def test_a_batch_store_is_asked_once_per_batch_for_the_models_it_misses(fan_stream) -> None:
    """Why: a remote store answers many requests in the time of one when they are in flight together,
    so the manager asks for every model a batch misses at once and evicts with one request too."""
    keys, points, _ = _fleet(6, 40, fan_stream)
    store = ManyAtOnce()
    first = ForestManager(**SMALL, store=store)
    first.process(keys, points)
    first.flush()
    assert store.requests == [("get", sorted(set(keys))), ("put", sorted(set(keys)))]
    store.requests.clear()
    flushed = {key: store.get(key) for key in sorted(set(keys))}
    again = ForestManager(**SMALL, store=store, max_resident=4, max_hydrated=2)
    scores = again.process(keys[:60], points[:60])  # 6 fans in 3 groups of 2: one get per group
    gets = [request for kind, request in store.requests if kind == "get"]
    assert gets == [["fan-00", "fan-01"], ["fan-02", "fan-03"], ["fan-04", "fan-05"]]
    assert again.stats["loaded"] == 6 and again.stats["created"] == 0
    puts = [request for kind, request in store.requests if kind == "put"]
    assert puts == [["fan-00", "fan-01"]]  # past max_resident the two least recent went in one put
    reference = ForestManager(**SMALL)  # the same models, all at once: the same scores
    for key, data in flushed.items():
        assert data is not None
        reference.adopt(key, data)
    assert np.array_equal(scores, reference.process(keys[:60], points[:60]))


def test_a_plain_store_is_asked_one_model_at_a_time(fan_stream) -> None:
    keys, points, _ = _fleet(3, 20, fan_stream)
    store = MemoryStore()
    manager = ForestManager(**SMALL, store=store)
    manager.process(keys, points)
    manager.flush()
    assert len(store) == 3 and manager.stats["stored"] == 3
    other = ForestManager(**SMALL, store=store)
    assert np.array_equal(other.process(keys, points), manager.process(keys, points))
    assert other.stats["loaded"] == 3
