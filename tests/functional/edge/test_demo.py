"""``fanwatch demo``: simulated fans with faults through the real services, and what it prints."""

from __future__ import annotations

import subprocess
import sys

from fanwatch.demo import simulate


def test_the_demo_sees_every_fault_it_injects() -> None:
    result = simulate(minutes=8)
    alerts = {(a.fan, a.kind, a.state) for a in result.alerts}
    assert {("fan-b", "stall", "raised"), ("fan-b", "stall", "cleared")} <= alerts
    assert ("fan-c", "under_speed", "raised") in alerts  # worn bearings slow it down
    assert ("fan-e", "over_speed", "raised") in alerts
    assert {("fan-a", "sensor_lost", "raised")} <= alerts  # the tachometer stops for the last minute
    assert ("fan-a", "stall", "raised") not in alerts  # the healthy fan raises nothing else
    labels = {r.label for m in result.telemetry for r in m.readings}
    assert {"normal", "stall", "bearing_wear", "overspeed"} <= labels
    assert result.messages_per_day < 86_400 * len(result.fans) / 20


def test_make_demo_prints_a_report() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fanwatch", "demo", "--minutes", "4"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "simulated fans on demo-pi-01" in done.stdout and "Local alerts" in done.stdout
    assert "messages per device per day" in done.stdout
