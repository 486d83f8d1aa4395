"""The whole pipeline under trouble: built components on a local core, the broker, the AWS stand-in.

One device runs eight simulated minutes (timeScale 20) while, in turn: the stand-in refuses Kinesis
reads for a while, then answers Kinesis slowly for a while, the broker restarts, and the device sends
garbage on its telemetry topic; all along, the detector raises on one record. Then:
nothing the device sent is lost (a QoS 1 redelivery may store a reading twice, never differently),
the garbage and the failing record reach the dead-letter queue with their reasons, the lake holds
none of the garbage, and the readings kept flowing (the stall is still caught).

The parts are tested one by one in ``tests/functional/standin``; this is the system's test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fanwatch.demo.assemble import story_of
from fanwatch.demo.ledger import reading_key
from fanwatch.demo.local import Pipeline, run_on_local_cores
from fanwatch.demo.observations import DemoRun
from fanwatch.demo.outcome import Caught, judge
from fanwatch.demo.scenario import Scenario
from fanwatch.telemetry import parse_telemetry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

SCENARIO = Scenario.fleet(devices=1, minutes=8, warmup_minutes=3)
THING = "demo-pi-001"
#: The one record the detector fails on: this fan's message with this sequence number.
FAILING = ("fan2", 3)


def _failing_record(event: dict[str, Any]) -> None:
    for record in event.get("Records", []):
        try:
            message = parse_telemetry(base64.b64decode(record["kinesis"]["data"]))
        except ValueError:
            continue
        if (message.fan, message.seq) == FAILING:
            raise RuntimeError(f"the detector fails on {message.thing}/{message.fan} seq {message.seq}")


async def _trouble(pipeline: Pipeline) -> None:
    aws = pipeline.cloud.aws
    assert aws is not None
    pipeline.cloud.before_detector = _failing_record
    await pipeline.until(90)
    aws.faults.refuse("kinesis", "GetRecords", seconds=3)  # a minute of simulated time
    await pipeline.until(180)
    aws.faults.delay("kinesis", 0.2, seconds=3)
    await pipeline.until(240)
    pipeline.broker.stop()  # every connection drops; the devices' spoolers keep what they publish
    await asyncio.sleep(2)
    pipeline.broker.start()
    await pipeline.until(330)
    # garbage from the device itself (a buggy component's PublishToIoTCore): through its spooler and link
    link = pipeline.fleet.cores[THING].iot
    topic = f"fanwatch/{THING}/telemetry"
    for payload in (
        b"\xff\xfe not json",
        json.dumps({"schema": "fanwatch.telemetry/1", "rpm": "fast"}).encode(),
    ):
        await link.publish(topic, payload, 1)


@pytest.fixture(scope="module")
def troubled(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    out = tmp_path_factory.mktemp("troubled")
    lines: list[str] = []
    started = time.monotonic()

    def say(text: str) -> None:
        lines.append(f"[{time.monotonic() - started:4.0f} s] {text}")

    run = asyncio.run(run_on_local_cores(SCENARIO, out, say, asyncio.Event(), during=_trouble))
    assert not run.problems, "\n".join([*run.problems, *lines])
    return run


def test_nothing_the_device_sent_is_lost_and_a_redelivery_is_a_copy(troubled: DemoRun) -> None:
    assert troubled.ledger is not None and troubled.cloud is not None
    sent = troubled.ledger.keys()
    rows = troubled.cloud.readings
    stored = Counter(reading_key(r["thing"], r["fan"], r["boot"], r["seq"], r["ts"]) for r in rows)
    # every reading of three fans, once a simulated second (a busy machine's tachometers fall behind a bit)
    assert len(sent) == len(set(sent)) > 3 * SCENARIO.seconds / 2
    assert set(stored) == set(sent)  # nothing lost, nothing that was not sent
    copies = {key for key, n in stored.items() if n > 1}
    for key in copies:  # at least once: a redelivered message stores the same reading again, unchanged
        same = {
            json.dumps(r, default=str, sort_keys=True)
            for r in rows
            if reading_key(r["thing"], r["fan"], r["boot"], r["seq"], r["ts"]) == key
        }
        assert len(same) == 1


def test_the_garbage_and_the_failing_record_reach_the_dead_letter_queue_with_their_reasons(
    troubled: DemoRun,
) -> None:
    assert troubled.cloud is not None
    letters = troubled.cloud.dead_letters
    rejected = [d for d in letters if "reason" in d]
    reasons = [d["reason"] for d in rejected]
    assert any("not valid JSON" in r for r in reasons), reasons
    assert any("rpm" in r or "readings" in r or "missing" in r for r in reasons), reasons
    assert all(d["partitionKey"] == THING for d in rejected)
    gave_up = [d for d in letters if "KinesisBatchInfo" in d]  # the batch Lambda gave up on, bisected to one
    assert [d["KinesisBatchInfo"]["batchSize"] for d in gave_up] == [1]
    assert troubled.cloud.readings  # and the lake holds none of the garbage: every row parsed above


def test_the_rest_kept_flowing_and_the_stall_is_caught(troubled: DemoRun) -> None:
    story = story_of(troubled)
    verdict = judge(story)
    stall = next(v for v in verdict.faults if v.fault.kind == "stall")
    assert stall.caught in (Caught.BOTH, Caught.EDGE)
    assert verdict.false_alarms_on_healthy(story) == []
    last = max(p.at_s for p in story.fans[(THING, "fan0")].readings)
    assert last > SCENARIO.seconds - 30  # readings to the end of the run, after all the trouble
