"""Fixtures shared by the functional tiers."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from fanwatch.standin import AwsEndpoint
from fanwatch.standin.server import MotoServer


@pytest.fixture
def moto() -> Iterator[AwsEndpoint]:
    """A bare moto server (reset), for the parts tested one by one with real boto3 clients."""
    server = MotoServer()
    server.start()
    urllib.request.urlopen(urllib.request.Request(f"{server.url}/moto-api/reset", method="POST")).close()
    yield AwsEndpoint(server.url)
    server.stop()
