"""How many MQTT messages a device sends per day under each filter setting (the README's table).

A healthy simulated fan, read once a second, runs through the real edge filter for each setting; the
counts are scaled to a day. AWS IoT Core meters messages in 5 KB steps, so the billed count is shown
too. Run: python docs/examples/edge_message_budget.py [--minutes 60]
"""

import argparse
import math

from fanwatch.edge.clock import SimClock
from fanwatch.edge.config import parse_filter_config
from fanwatch.edge.prefilter import EdgeFilter
from fanwatch.edge.tach import SimulatedFan, Tachometer
from fanwatch.telemetry import Telemetry, encode

DEADBAND = {"deadbandRpm": 30, "deadbandPercent": 1}
SETTINGS = {
    "every reading, one per message (the original design)": {"batchSize": 1},
    "defaults: every reading, 60 per message": {},
    "every reading, 120 per message": {"batchSize": 120, "maxBatchAgeSeconds": 120},
    "deadband 30 rpm/1 %, heartbeat 60 s, batch 30 or 60 s": {**DEADBAND, "batchSize": 30},
    "deadband, heartbeat 300 s, batch 30 or 900 s": {
        **DEADBAND,
        "batchSize": 30,
        "heartbeatSeconds": 300,
        "maxBatchAgeSeconds": 900,
    },
}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--minutes", type=float, default=60.0, help="simulated minutes per setting")
args = parser.parse_args()
seconds = int(args.minutes * 60)
scale = 86_400 / seconds

print(f"{'setting':66}{'messages/day':>14}{'5 KB units/day':>16}")
for name, overrides in SETTINGS.items():
    clock = SimClock()
    tach = Tachometer(SimulatedFan(target_rpm=3000, seed=11), clock=clock)
    edge = EdgeFilter(
        parse_filter_config({"statusIntervalSeconds": 86_400, **overrides}), thing="pi-1", clock=clock
    )
    payloads = []
    for seq in range(seconds):
        clock.advance(1.0)
        reading = tach.read()
        raw = encode(
            Telemetry(thing="pi-1", fan="fan0", boot="t", seq=seq, sent=reading.ts, readings=(reading,))
        )
        payloads += [p.payload for p in edge.accept(raw) + edge.tick() if p.topic.endswith("/telemetry")]
    payloads += [p.payload for p in edge.flush()]
    units = sum(math.ceil(len(p) / 5120) for p in payloads)
    print(f"{name:66}{len(payloads) * scale:>14,.0f}{units * scale:>16,.0f}")
print("(one fan per device; status adds 288 messages a day at the default 300 s, alerts are rare)")
