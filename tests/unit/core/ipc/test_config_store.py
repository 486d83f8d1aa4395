"""ConfigStore: the nucleus' configuration tree rules (timestamps, case, REPLACE/MERGE, subscriptions)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from fanwatch.core.config import ConfigStore, ConfigurationTooLarge, StaleUpdateError


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> ConfigStore:
    store = ConfigStore(clock=clock)
    store.set_tree("fan.Tach", {"pin": 17, "Sampling": {"periodS": 1.0, "window": [1, 2]}})
    return store


def recorder(store: ConfigStore, path: list[str], component: str = "fan.Tach") -> list[list[str]]:
    heard: list[list[str]] = []
    store.subscribe(component, path, lambda comp, p: heard.append(p) if comp == component else None)
    return heard


def test_get_returns_deep_copies_and_raises_for_absent_keys(store: ConfigStore) -> None:
    whole = store.get("fan.Tach")
    whole["Sampling"]["window"].append(3)
    assert store.get("fan.Tach", ["Sampling", "window"]) == [1, 2]
    assert store.get("fan.Tach", ["pin"]) == 17
    with pytest.raises(KeyError):
        store.get("fan.Tach", ["nope"])
    with pytest.raises(KeyError):
        store.get("fan.Tach", ["pin", "deeper"])
    with pytest.raises(KeyError):
        store.get("nobody")


def test_keys_match_case_insensitively_and_keep_their_first_spelling(store: ConfigStore) -> None:
    assert store.get("fan.Tach", ["sampling", "PERIODS"]) == 1.0
    assert store.resolve("fan.Tach", ["SAMPLING", "periods"]) == ["Sampling", "periodS"]
    changed = store.merge("fan.Tach", ["SAMPLING"], {"PeriodS": 2.0})
    assert changed == [["Sampling", "periodS"]]
    assert store.get("fan.Tach", ["Sampling"]) == {"periodS": 2.0, "window": [1, 2]}


def test_merge_reports_only_what_changed_and_tells_json_types_apart(store: ConfigStore, clock: Clock) -> None:
    clock.now += 1
    assert store.merge("fan.Tach", [], {"pin": 17}) == []
    assert store.merge("fan.Tach", [], {"pin": 17.0}) == [["pin"]]
    assert store.merge("fan.Tach", [], {"pin": True}) == [["pin"]]
    assert store.merge("fan.Tach", [], {"new": {"a": 1}}) == [["new", "a"]]
    assert store.get("fan.Tach", ["Sampling", "window"]) == [1, 2], "merge never removes keys"


def test_merge_on_a_leaf_turns_it_into_a_container(store: ConfigStore) -> None:
    changed = store.merge("fan.Tach", ["pin"], {"number": 4})
    assert changed == [["pin"], ["pin", "number"]]
    assert store.get("fan.Tach", ["pin"]) == {"number": 4}


def test_merge_creates_missing_paths_with_the_current_time_whatever_the_timestamp(
    store: ConfigStore, clock: Clock
) -> None:
    changed = store.merge("fan.Tach", ["a", "b"], {"c": 1}, timestamp=5.0)
    assert changed == [["a", "b", "c"]]
    assert store.modified_at("fan.Tach", ["a", "b", "c"]) == clock.now


def test_merge_through_a_leaf_is_refused(store: ConfigStore) -> None:
    with pytest.raises(ValueError, match="/pin is a value"):
        store.merge("fan.Tach", ["pin", "x"], {"y": 1})
    with pytest.raises(ValueError, match="mapping"):
        store.merge("fan.Tach", [], [1, 2])  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        store.merge("nobody", [], {"a": 1})


def test_an_older_timestamp_never_overwrites_a_newer_value(store: ConfigStore, clock: Clock) -> None:
    store.merge("fan.Tach", [], {"pin": 18}, timestamp=2000.0)
    with pytest.raises(StaleUpdateError) as stale:
        store.merge("fan.Tach", [], {"pin": 19}, timestamp=1500.0)
    assert stale.value.changed == []
    assert store.get("fan.Tach", ["pin"]) == 18


def test_a_stale_update_still_applies_its_newer_parts_as_the_nucleus_does(store: ConfigStore) -> None:
    store.merge("fan.Tach", [], {"pin": 18}, timestamp=2000.0)
    heard = recorder(store, [])
    with pytest.raises(StaleUpdateError) as stale:
        store.merge("fan.Tach", [], {"pin": 19, "Sampling": {"periodS": 5.0}}, timestamp=1500.0)
    assert stale.value.changed == [["Sampling", "periodS"]]
    assert heard == [["Sampling", "periodS"]]
    assert store.get("fan.Tach", ["pin"]) == 18
    assert store.get("fan.Tach", ["Sampling", "periodS"]) == 5.0


def test_same_timestamp_is_accepted(store: ConfigStore) -> None:
    store.merge("fan.Tach", [], {"pin": 18}, timestamp=2000.0)
    assert store.merge("fan.Tach", [], {"pin": 19}, timestamp=2000.0) == [["pin"]]


def test_set_tree_replaces_and_reports_removed_and_changed_paths(store: ConfigStore, clock: Clock) -> None:
    heard = recorder(store, [])
    clock.now += 10
    store.set_tree("fan.Tach", {"pin": 22, "Sampling": {"window": [1, 2]}, "added": "x"})
    assert sorted(heard) == [["Sampling", "periodS"], ["added"], ["pin"]]
    assert store.get("fan.Tach") == {"pin": 22, "Sampling": {"window": [1, 2]}, "added": "x"}


def test_set_tree_keeps_a_value_written_with_a_newer_timestamp(store: ConfigStore, clock: Clock) -> None:
    store.merge("fan.Tach", [], {"pin": 5}, timestamp=clock.now + 3600)
    store.set_tree("fan.Tach", {"pin": 6})
    assert store.get("fan.Tach", ["pin"]) == 5


def test_subscription_hears_only_its_subtree_and_stops_on_unsubscribe(store: ConfigStore) -> None:
    heard: list[tuple[str, list[str]]] = []
    stop = store.subscribe("fan.Tach", ["sampling"], lambda comp, path: heard.append((comp, path)))
    store.merge("fan.Tach", [], {"pin": 3})
    store.merge("fan.Tach", ["Sampling"], {"periodS": 9.0})
    assert heard == [("fan.Tach", ["Sampling", "periodS"])]
    stop()
    store.merge("fan.Tach", ["Sampling"], {"periodS": 10.0})
    assert len(heard) == 1
    stop()  # a second call is harmless


def test_subscribers_of_one_component_never_hear_another(store: ConfigStore) -> None:
    store.set_tree("fan.Filter", {"pin": 1})
    heard = recorder(store, [])
    store.merge("fan.Filter", [], {"pin": 2})
    assert heard == []


def test_removing_an_ancestor_tells_the_subscriber_its_own_path(store: ConfigStore) -> None:
    heard = recorder(store, ["Sampling", "periodS"])
    store.set_tree("fan.Tach", {"pin": 17})
    assert heard == [["Sampling", "periodS"]]


def test_subscribing_to_an_absent_path_is_refused(store: ConfigStore) -> None:
    with pytest.raises(KeyError):
        store.subscribe("fan.Tach", ["missing"], lambda *_: None)


def test_components_and_remove_component(store: ConfigStore) -> None:
    store.set_tree("a.B", {})
    assert store.components() == ["a.B", "fan.Tach"]
    store.remove_component("a.B")
    assert store.components() == ["fan.Tach"]
    assert store.get("fan.Tach", []) != {}


def test_callbacks_run_outside_the_lock_so_other_threads_can_read_meanwhile(store: ConfigStore) -> None:
    seen: list[object] = []

    def read_from_another_thread(component: str, path: list[str]) -> None:
        reader = threading.Thread(target=lambda: seen.append(store.get(component, path)))
        reader.start()
        reader.join(5)

    store.subscribe("fan.Tach", [], read_from_another_thread)
    store.merge("fan.Tach", [], {"pin": 4})
    assert seen == [4]


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("write", "problem"),
    [
        (lambda s: s.merge("fan.Tach", [], {"deep": _nested(600)}), "nested deeper than 32 levels"),
        (lambda s: s.merge("fan.Tach", ["k"] * 31, {"x": {"y": 1}}), "nested deeper than 32 levels"),
        (lambda s: s.merge("fan.Tach", [], {"big": ["x" * 1000] * 1100}), "larger than 1,000,000 bytes"),
        (lambda s: s.set_tree("fan.Tach", {"deep": _nested(5000)}), "nested deeper than 32 levels"),
        (
            lambda s: s.merge(
                "fan.Tach", [], {"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
            ),
            "nested deeper than 32 levels",
        ),
    ],
    ids=["600 deep", "deep key path", "over 1 MB", "5000 deep replace", "lists count too"],
)
def test_a_value_out_of_bounds_is_refused_before_any_of_it_is_stored(
    store: ConfigStore, write: Any, problem: str
) -> None:
    """Issue 14: a value ~600 levels deep was partly stored, then every read failed with RecursionError."""
    before = store.get("fan.Tach")
    with pytest.raises(ConfigurationTooLarge, match=problem):
        write(store)
    assert store.get("fan.Tach") == before
    store.merge("fan.Tach", [], {"fine": _nested(30)})  # and a deep-but-sane value still goes in
    assert store.get("fan.Tach", ["fine", *["a"] * 29]) == {"leaf": 1}
