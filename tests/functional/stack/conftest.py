"""``fanwatch stack check`` against the embedded AWS stand-in: real boto3 on moto, the stack registered
from the template, iot-data publishes run through the stand-in's rules engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fanwatch.edge.clock import MonotonicClock, ScaledClock
from fanwatch.standin import EmbeddedAws
from fanwatch.standin.endpoint import CREDENTIALS


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[EmbeddedAws]:
    with EmbeddedAws.start(clock=ScaledClock(MonotonicClock(), 20), lake_dir=tmp_path / "lake") as started:
        yield started


@pytest.fixture
def session(aws: EmbeddedAws):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.Session(region_name=aws.endpoint.region, **CREDENTIALS)
