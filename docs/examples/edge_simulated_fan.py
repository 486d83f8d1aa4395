"""A simulated fan stalls; the tachometer reads it on a clock that runs as fast as we advance it.

Run: python docs/examples/edge_simulated_fan.py
"""

from fanwatch.edge.clock import SimClock
from fanwatch.edge.tach import Fault, SimulatedFan, Tachometer

clock = SimClock()
fan = SimulatedFan(target_rpm=3000, faults=[Fault("stall", start_s=5, end_s=12)], seed=1)
tach = Tachometer(fan, clock=clock, pulses_per_rev=2, max_rpm=25_000, window_s=1.0, stall_timeout_s=2.0)

for _ in range(20):
    clock.advance(1.0)
    r = tach.read()
    flags = ",".join(sorted(r.flags - {"simulated"})) or "-"
    print(f"t={clock.now():4.0f} s  rpm={r.rpm:7.1f}  pulses={r.pulses:3d}  flags={flags:18} truth={r.label}")
