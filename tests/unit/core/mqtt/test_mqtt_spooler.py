"""The spooler's rules, on both storages: order, maxSizeInBytes, what is evicted and what is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fanwatch.core.mqtt.spooler import (
    DEFAULT_MAX_SIZE_IN_BYTES,
    OnFull,
    Spooler,
    SpoolerConfig,
    StorageType,
)
from fanwatch.core.mqtt.storage import DiskStorage, MemoryStorage, SpoolStorage
from fanwatch.core.ports import SpoolFullError

StorageFactory = Callable[[], SpoolStorage]


@pytest.fixture(params=["memory", "disk"])
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageFactory:
    if request.param == "memory":
        return MemoryStorage
    return lambda: DiskStorage(tmp_path / "spool" / "spooler.db")


def payloads(spooler: Spooler) -> list[bytes]:
    return [m.payload for m in spooler.oldest(10_000)]


def test_messages_come_out_oldest_first_and_after_the_last_sent(make_storage: StorageFactory) -> None:
    spooler = Spooler(make_storage())
    sent = [spooler.add("fanwatch/fan-001/telemetry", b"%d" % n, 1) for n in range(6)]
    assert [m.id for m in sent] == sorted(m.id for m in sent)
    assert payloads(spooler) == [b"%d" % n for n in range(6)]
    assert [m.payload for m in spooler.oldest(2, after=sent[2].id)] == [b"3", b"4"]
    spooler.remove([sent[0].id, sent[3].id, 12345])  # an unknown id is ignored
    assert payloads(spooler) == [b"1", b"2", b"4", b"5"]
    assert (len(spooler), spooler.size_in_bytes) == (4, 4)


def test_a_full_spool_evicts_the_oldest_qos0_messages_first(make_storage: StorageFactory) -> None:
    spooler = Spooler(make_storage(), max_size_in_bytes=10, keep_qos0_when_offline=True)
    spooler.add("t/a", b"q1-a", 1)  # 4 bytes
    spooler.add("t/b", b"0a", 0)  # 2
    spooler.add("t/c", b"0b", 0)  # 2
    spooler.add("t/d", b"q1", 1)  # 2: the spool holds 10 of 10 bytes
    spooler.add("t/e", b"new", 1)  # 3 more: both QoS 0 messages go, oldest first, until it fits
    assert payloads(spooler) == [b"q1-a", b"q1", b"new"]
    assert spooler.size_in_bytes == 9


def test_a_spool_full_of_qos1_refuses_the_new_message_and_keeps_every_old_one(
    make_storage: StorageFactory,
) -> None:
    spooler = Spooler(make_storage(), max_size_in_bytes=8)
    for n in range(4):
        spooler.add("t", b"m%d" % n, 1)
    with pytest.raises(SpoolFullError, match="spool full"):
        spooler.add("t", b"m4", 1)
    assert payloads(spooler) == [b"m0", b"m1", b"m2", b"m3"]
    assert spooler.size_in_bytes == 8


def test_nothing_is_evicted_for_a_message_that_would_not_fit_anyway(make_storage: StorageFactory) -> None:
    spooler = Spooler(make_storage(), max_size_in_bytes=10, keep_qos0_when_offline=True)
    spooler.add("t", b"qos1-q", 1)  # 6 bytes
    spooler.add("t", b"q0", 0)  # 2: evicting it would free too little for 5 more bytes
    with pytest.raises(SpoolFullError):
        spooler.add("t", b"12345", 1)
    assert payloads(spooler) == [b"qos1-q", b"q0"]


def test_overwrite_oldest_data_evicts_the_oldest_qos1_messages_too(make_storage: StorageFactory) -> None:
    spooler = Spooler(make_storage(), max_size_in_bytes=8, on_full=OnFull.OVERWRITE_OLDEST_DATA)
    for n in range(4):
        spooler.add("t", b"m%d" % n, 1)
    spooler.add("t", b"m4-x", 1)  # 4 bytes: the two oldest make room
    assert payloads(spooler) == [b"m2", b"m3", b"m4-x"]


def test_a_message_larger_than_the_whole_spool_is_refused_without_evicting(
    make_storage: StorageFactory,
) -> None:
    spooler = Spooler(make_storage(), max_size_in_bytes=4, on_full=OnFull.OVERWRITE_OLDEST_DATA)
    spooler.add("t", b"ab", 0)
    with pytest.raises(SpoolFullError, match="larger than the whole spool"):
        spooler.add("t", b"12345", 1)
    assert payloads(spooler) == [b"ab"]


def test_going_offline_drops_queued_qos0_unless_told_to_keep_them(make_storage: StorageFactory) -> None:
    dropping = Spooler(make_storage())
    for qos in (1, 0, 1, 0):
        dropping.add("t", b"qos%d" % qos, qos)
    assert dropping.drop_qos0() == 2
    assert payloads(dropping) == [b"qos1", b"qos1"]
    dropping.close()

    keeping = Spooler(MemoryStorage(), keep_qos0_when_offline=True)
    keeping.add("t", b"qos0", 0)
    assert keeping.drop_qos0() == 0
    assert payloads(keeping) == [b"qos0"]


def test_the_disk_spool_survives_a_restart_with_order_size_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "spooler.db"
    first = Spooler(DiskStorage(path), max_size_in_bytes=100)
    for n in range(5):
        first.add("fanwatch/fan-001/telemetry", b"reading-%d" % n, 1, retain=n == 4)
    first.remove([first.oldest(1)[0].id])
    first.close()

    again = Spooler(DiskStorage(path), max_size_in_bytes=100)
    messages = again.oldest(10)
    assert [m.payload for m in messages] == [b"reading-%d" % n for n in range(1, 5)]
    assert [m.retain for m in messages] == [False, False, False, True]
    assert again.size_in_bytes == 4 * len(b"reading-1")
    newer = again.add("fanwatch/fan-001/telemetry", b"after", 1)
    assert newer.id > messages[-1].id  # ids never go back, so order holds across restarts


def test_a_disk_spool_reopened_with_a_smaller_limit_keeps_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spooler.db"
    first = Spooler(DiskStorage(path), max_size_in_bytes=100)
    for n in range(5):
        first.add("t", b"%010d" % n, 1)
    first.close()
    smaller = Spooler(DiskStorage(path), max_size_in_bytes=20)
    assert "more than maxSizeInBytes" in caplog.text
    assert len(smaller) == 5  # nothing accepted earlier is thrown away by a configuration change
    with pytest.raises(SpoolFullError):
        smaller.add("t", b"new", 1)
    smaller.remove([m.id for m in smaller.oldest(4)])
    smaller.add("t", b"new", 1)  # room again once it drained
    assert [m.payload for m in smaller.oldest(5)] == [b"%010d" % 4, b"new"]


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(1, 40),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 1), st.integers(0, 12)),
            st.tuples(st.just("deliver"), st.integers(1, 4), st.just(0)),
            st.tuples(st.just("offline"), st.just(0), st.just(0)),
        ),
        max_size=60,
    ),
    overwrite=st.booleans(),
)
def test_the_spooler_matches_a_simple_model(
    capacity: int, steps: list[tuple[str, int, int]], overwrite: bool
) -> None:
    """Whatever happens, the spool stays within its size, keeps order, and evicts exactly as the nucleus."""
    spooler = Spooler(
        MemoryStorage(),
        max_size_in_bytes=capacity,
        on_full=OnFull.OVERWRITE_OLDEST_DATA if overwrite else OnFull.REJECT_NEW_DATA,
    )
    model: list[tuple[int, bytes]] = []  # (qos, payload), oldest first
    counter = 0
    for action, qos, size in steps:
        if action == "add":
            payload = (b"%d-" % counter).ljust(size, b"x")[:size]
            counter += 1
            kept = list(model)
            while sum(len(p) for _, p in kept) + size > capacity and any(q == 0 for q, _ in kept):
                kept.remove(next(m for m in kept if m[0] == 0))
            while overwrite and kept and sum(len(p) for _, p in kept) + size > capacity:
                kept.pop(0)
            fits = size <= capacity and sum(len(p) for _, p in kept) + size <= capacity
            if fits:
                spooler.add("t", payload, qos)
                model = [*kept, (qos, payload)]
            else:
                with pytest.raises(SpoolFullError):
                    spooler.add("t", payload, qos)
        elif action == "deliver":
            spooler.remove([m.id for m in spooler.oldest(qos)])
            model = model[qos:]
        else:
            spooler.drop_qos0()
            model = [m for m in model if m[0] == 1]
        assert [(m.qos, m.payload) for m in spooler.oldest(1000)] == model
        assert spooler.size_in_bytes == sum(len(p) for _, p in model) <= capacity


class TestConfigFromTheNucleus:
    def test_defaults_are_the_nucleus_defaults(self) -> None:
        config = SpoolerConfig.from_nucleus(None)
        assert config == SpoolerConfig(
            storage_type=StorageType.MEMORY,
            max_size_in_bytes=DEFAULT_MAX_SIZE_IN_BYTES,
            keep_qos0_when_offline=False,
            on_full=OnFull.REJECT_NEW_DATA,
        )
        assert DEFAULT_MAX_SIZE_IN_BYTES == 2_621_440

    def test_values_are_coerced_as_the_nucleus_coerces_them(self) -> None:
        config = SpoolerConfig.from_nucleus(
            {
                "storageType": "disk",
                "maxSizeInBytes": "4096",
                "keepQos0WhenOffline": "TRUE",
                "strategyOnFull": "OverwriteOldestData",
                "pluginName": "aws.greengrass.DiskSpooler",  # the nucleus' own key, not used here
            }
        )
        assert config == SpoolerConfig(
            storage_type=StorageType.DISK,
            max_size_in_bytes=4096,
            keep_qos0_when_offline=True,
            on_full=OnFull.OVERWRITE_OLDEST_DATA,
        )

    @pytest.mark.parametrize(
        ("section", "named"),
        [
            ({"storageType": "Tape"}, "storageType"),
            ({"maxSizeInBytes": 0}, "maxSizeInBytes"),
            ({"maxSizeInBytes": "2.5MB"}, "maxSizeInBytes"),
            ({"maxSizeInBytes": True}, "maxSizeInBytes"),
            ({"keepQos0WhenOffline": "yes"}, "keepQos0WhenOffline"),
            ({"strategyOnFull": 1}, "strategyOnFull"),
        ],
    )
    def test_a_value_that_means_nothing_is_refused_by_name(
        self, section: dict[str, object], named: str
    ) -> None:
        with pytest.raises(ValueError, match=f"mqtt.spooler.{named}"):
            SpoolerConfig.from_nucleus(section)

    def test_the_section_must_be_an_object(self) -> None:
        with pytest.raises(ValueError, match="must be an object"):
            SpoolerConfig.from_nucleus(["Disk"])  # type: ignore[arg-type]

    def test_a_disk_spool_lives_where_the_disk_spooler_keeps_it(self, tmp_path: Path) -> None:
        spooler = Spooler.open(SpoolerConfig(storage_type=StorageType.DISK), core_root=tmp_path)
        spooler.add("t", b"x", 1)
        spooler.close()
        assert (tmp_path / "work" / "aws.greengrass.DiskSpooler" / "spooler.db").is_file()
        with pytest.raises(ValueError, match="root folder"):
            Spooler.open(SpoolerConfig(storage_type=StorageType.DISK))
