"""Shared runner parts: the version from the artifact path, last good configuration, the inbox, logs."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fanwatch.edge.component import ConfigFollower, Inbox, version_from_artifacts
from fanwatch.edge.config import parse_filter_config
from fanwatch.edge.logs import configure, log_event


def test_the_version_comes_from_where_the_nucleus_unpacked_the_artifact(tmp_path: Path) -> None:
    unpacked = tmp_path / "packages/artifacts-unarchived/fanwatch.EdgeFilter/1.0.7/fanwatch_edgefilter"
    unpacked.mkdir(parents=True)
    assert version_from_artifacts(str(unpacked)) == "1.0.7"
    assert version_from_artifacts(None) == "unknown"


class Config:
    """A component configuration as GetConfiguration returns it, changeable between calls."""

    def __init__(self, value: Mapping[str, Any]) -> None:
        self.value = dict(value)

    def get_configuration(self) -> Mapping[str, Any]:
        return self.value


def test_a_refused_configuration_is_logged_by_key_and_the_last_good_one_stays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = Config({"batchSize": 10})
    follower = ConfigFollower(source, parse_filter_config, logging.getLogger("test.follower"))  # type: ignore[arg-type]
    assert follower.refresh() and follower.current is not None and follower.current.batch_size == 10
    assert not follower.refresh()  # unchanged: nothing to apply
    source.value = {"batchSize": 10_000}
    with caplog.at_level(logging.ERROR):
        assert not follower.refresh()
    assert follower.current.batch_size == 10
    record = caplog.records[-1]
    assert record.getMessage() == "configuration refused"
    assert record.fields["key"] == "batchSize" and "out of range" in record.fields["problem"]  # type: ignore[attr-defined]
    assert "stays in force" in record.fields["kept"]  # type: ignore[attr-defined]
    source.value = {"batchSize": 20}
    assert follower.refresh() and follower.current.batch_size == 20


def test_a_full_inbox_drops_and_counts_instead_of_blocking_the_ipc_thread() -> None:
    inbox = Inbox(maxsize=3)
    for i in range(5):
        inbox.put("raw", i)
    assert inbox.take_overflow() == 2 and inbox.take_overflow() == 0
    assert [inbox.get_nowait() for _ in range(3)] == [("raw", 0), ("raw", 1), ("raw", 2)]
    assert inbox.get_nowait() is None
    started = time.monotonic()
    assert inbox.get(0.05) is None and time.monotonic() - started >= 0.05  # waits, then gives up


def test_log_lines_are_json_with_the_fields_at_the_top_level() -> None:
    stream = io.StringIO()
    log = configure("fanwatch.test.logs", stream=stream)
    log_event(log, logging.WARNING, "alert", fan="fan0", rpm=0.0)
    line = json.loads(stream.getvalue())
    assert line["event"] == "alert" and line["level"] == "WARNING" and line["fan"] == "fan0"
    assert line["ts"].endswith("Z") and line["logger"] == "fanwatch.test.logs"
