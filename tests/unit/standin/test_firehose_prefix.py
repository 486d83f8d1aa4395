"""Firehose S3 prefixes: partition keys from the transform, timestamps, error output types."""

from __future__ import annotations

from datetime import datetime

import pytest

from fanwatch.standin.firehose import PrefixError, expand_prefix

NOW = datetime(2026, 11, 27, 19, 5, 9)


def test_the_stacks_prefixes_expand_as_firehose_writes_them() -> None:
    readings = "readings/dt=!{partitionKeyFromLambda:dt}/thing=!{partitionKeyFromLambda:thing}/"
    keys = {"dt": "2026-11-27", "thing": "pi-1"}
    assert expand_prefix(readings, now=NOW, partition_keys=keys) == "readings/dt=2026-11-27/thing=pi-1/"
    errors = "errors/readings/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    assert expand_prefix(errors, now=NOW, error_type="processing-failed") == (
        "errors/readings/processing-failed/dt=2026-11-27/"
    )
    assert expand_prefix("!{timestamp:yyyy/MM/dd/HH/mm/ss}/", now=NOW) == "2026/11/27/19/05/09/"


@pytest.mark.parametrize(
    ("prefix", "says"),
    [
        ("x/!{partitionKeyFromLambda:day}/", "no partition key 'day'"),
        ("x/!{partitionKeyFromQuery:dt}/", "does not evaluate"),
    ],
)
def test_what_it_cannot_fill_is_an_error(prefix: str, says: str) -> None:
    with pytest.raises(PrefixError, match=says):
        expand_prefix(prefix, now=NOW, partition_keys={"dt": "2026-11-27"})
