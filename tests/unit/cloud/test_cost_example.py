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
    assert _total(cost, streams=cost.Mode.PROVISIONED) < base  # one shard per stream carries 1,000 fans
    assert _total(cost, batch_seconds=10) > 1.5 * base  # IoT and Firehose charge per message
    assert _total(cost, detector_points_per_s=7000) < base  # a faster forest is cheaper compute
    # past one busy container a fan's forest is written after every batch (its next may go elsewhere)
    assert _total(cost, fans=10_000) > 10 * base
    # Basic Ingest drops exactly the messaging line
    messaging = next(
        line.usd for line in cost.estimate(cost.Assumptions()) if line.item.startswith("messages")
    )
    assert _total(cost, basic_ingest=True) == pytest.approx(base - messaging)
    # a deadband sends the same number of messages with fewer readings: less to move and to score
    assert _total(cost, readings_per_message=2) < base


def test_the_capacity_model_sizes_by_whichever_limit_binds(cost: ModuleType) -> None:
    small = cost.capacity(cost.Assumptions())
    assert (small.messages, small.readings) == pytest.approx((1000 / 60, 1000.0))
    assert (small.shards, small.containers) == (1, 1) and small.sticky
    # 2 GB keeps about 470 forests ready: 1,000 fans cycle through them, so every message thaws one
    assert small.miss == 1.0 and small.container_points_per_s < cost.Assumptions().detector_points_per_s
    large = cost.capacity(cost.replace(cost.Assumptions(), fans=100_000))
    assert large.shards_by_bytes == 12 > large.shards_by_records  # 11 MB/s against 1 MB/s a shard
    assert large.shards >= large.containers / cost.LIMITS["parallelization"]
    # several containers: a fan's forest must be written after every batch, its next may go elsewhere
    assert not large.sticky and large.checkpoint_puts == pytest.approx(large.messages)
    assert large.lake_gb_day == pytest.approx(100_000 * 86_400 * 12 / 1e9)


def test_the_ready_forest_the_model_assumes_is_the_one_rcf_keeps(cost: ModuleType) -> None:
    from fanwatch.rcf import ready_forest_bytes

    assert cost.Assumptions().ready_forest_mb == pytest.approx(ready_forest_bytes() / 2**20, rel=0.05)


def test_the_model_requests_in_flight_are_the_ones_the_store_keeps(cost: ModuleType) -> None:
    from fanwatch.cloud.stores import MODEL_REQUESTS_IN_FLIGHT

    assert cost.Assumptions().model_requests == MODEL_REQUESTS_IN_FLIGHT
    serial = cost.capacity(replace(cost.Assumptions(), fans=10_000, model_requests=1))
    together = cost.capacity(replace(cost.Assumptions(), fans=10_000))
    assert together.reload_s < serial.reload_s and together.containers < serial.containers


def test_every_lever_lowers_the_bill_and_together_they_halve_it(cost: ModuleType) -> None:
    today = _total(cost)
    for lever in (
        {"basic_ingest": True},
        {"streams": cost.Mode.AUTO},
        {"fan_state": cost.FanState.CACHED},
        {"state_table": cost.Mode.AUTO},
        {"lake": cost.Lake.BY_DAY},
    ):
        assert _total(cost, **lever) < today, lever
    lean = cost.per_fan(cost.LEAN)
    assert lean <= 0.22 and lean <= today / 1000 / 2 + 0.005
    # steady fleets: provisioned shards are cheaper than on-demand at every size the model sizes
    assert cost.crossover(cost.LEAN, largest=200_000) is None


def test_past_one_container_keyed_state_costs_less_than_lambda(cost: ModuleType) -> None:
    def at(fans: int, engine: object) -> float:
        return float(cost.per_fan(cost.replace(cost.LEAN, fans=fans, engine=engine)))

    assert at(1_000, cost.Engine.LAMBDA) < at(1_000, cost.Engine.FLINK)
    for fans in (10_000, 100_000):
        assert at(fans, cost.Engine.FLINK) < at(fans, cost.Engine.LAMBDA)


def test_the_scale_table_and_the_options_print(cost: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    cost.main(["--lean", "--scale"])
    table = capsys.readouterr().out
    assert "| 1,000 fans | 10,000 fans | 100,000 fans |" in table and "Flink" in table
    cost.main(["--fans", "100000", "--lean", "--engine", "flink"])
    out = capsys.readouterr().out
    assert "KPUs" in out and "Basic Ingest" in out and "dynamic partitioning" not in out


@pytest.mark.parametrize("doc", ["README.md", "docs/scale.md"])
def test_the_scale_table_of_the_docs_is_the_one_the_model_prints(
    cost: ModuleType, capsys: pytest.CaptureFixture[str], doc: str
) -> None:
    """Why: the table is copied into the docs by hand; a change of the model must show there too."""
    cost.main(["--lean", "--scale"])
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    text = (Path(__file__).resolve().parents[3] / doc).read_text().splitlines()
    start = text.index(printed[0])
    assert text[start : start + len(printed)] == printed


def test_the_model_names_the_stack_parameters_of_a_fleet(cost: ModuleType) -> None:
    small = cost.stack_parameters(cost.LEAN)
    assert small[0] == (
        "StreamMode=PROVISIONED ShardCount=1 DetectorParallelization=1 FanStateCache=true "
        "FanStateReadUnits=4 FanStateWriteUnits=24"  # 16.7 writes/s at 70 %; 1,000 reads in 5 min
        " LakeLayout=day"
    )
    assert "basicIngestRule" in small[1]
    large = cost.stack_parameters(cost.replace(cost.LEAN, fans=10_000))[0]
    assert "ShardCount=2" in large and "FanStateCache=false" in large  # several containers: fans move
    assert cost.stack_parameters(cost.Assumptions()) == [
        "StreamMode=ON_DEMAND DetectorParallelization=1 FanStateCache=false"
    ]
    # every name is a parameter of the checked-in template
    import json

    template = Path(__file__).resolve().parents[3] / "cloud-stack/template/fanwatch-cloud.template.json"
    parameters = json.loads(template.read_text())["Parameters"]
    given = dict(item.split("=") for item in (*large.split(), *small[0].split()))
    assert set(given) <= set(parameters)
    for name, value in given.items():  # and each value one the template accepts
        assert value in [str(v) for v in parameters[name].get("AllowedValues", [value])], name
