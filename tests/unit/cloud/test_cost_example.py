"""docs/examples/cloud_cost.py: the worked monthly estimate in docs/cloud.md."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def cost(repo_root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "cloud_cost", repo_root / "docs" / "examples" / "cloud_cost.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _total(cost: ModuleType, **changes: object) -> float:
    return sum(line.usd for line in cost.estimate(replace(cost.Assumptions(), **changes)))


def test_every_line_is_a_positive_charge_and_the_script_prints_the_total(
    cost: ModuleType,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = cost.estimate(cost.Assumptions())
    assert all(line.usd > 0 for line in lines)
    cost.main([])
    out = capsys.readouterr().out
    assert out.startswith("1,000 fans on 500 devices")
    assert f"{sum(line.usd for line in lines):,.2f} USD/month" in out


def test_the_levers_move_the_bill_the_way_the_docs_say(cost: ModuleType) -> None:
    base = _total(cost)
    assert _total(cost, provisioned_shards=1) < base  # one shard per stream carries 1,000 fans easily
    assert _total(cost, batch_seconds=10) > 1.5 * base  # IoT and Firehose charge per message
    assert _total(cost, detector_points_per_s=7000) < base  # a faster forest is cheaper compute
    assert 8 * base < _total(cost, fans=10_000) < 10 * base  # fixed costs spread over more fans
    # Basic Ingest drops exactly the messaging line
    messaging = next(
        line.usd for line in cost.estimate(cost.Assumptions()) if line.item.startswith("messages")
    )
    assert _total(cost, basic_ingest=True) == pytest.approx(base - messaging)
    # a deadband sends the same number of messages with fewer readings: less to move and to score
    assert _total(cost, readings_per_message=2) < base
