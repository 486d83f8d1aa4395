"""fanwatch.rcf quick start: score a fan, explain an alert, checkpoint, and score a fleet batch.

Run with ``python docs/examples/rcf_quickstart.py`` (a few seconds).
"""

import numpy as np

from fanwatch.rcf import ForestManager, MemoryStore, RandomCutForest, Thresholder

rng = np.random.default_rng(7)

# One fan: RPM at 1 Hz with a spike at t = 1100 s.
rpm = np.round(1500 + rng.normal(0, 5, 1200))
rpm[1100] = 2100
forest = RandomCutForest(1, shingle_size=4, num_trees=50, sample_size=256, seed=1)
scores = forest.process(rpm)  # score, then learn, each reading in order
alerts = np.flatnonzero(Thresholder(z=4, floor=2.0).observe_many(scores))
print(f"alerts at t = {alerts.tolist()}, score {scores[1100]:.2f} (normal: {np.median(scores[100:]):.2f})")

# Why would a new reading alert? Attribution splits its score by input and direction.
why = forest.attribution(2100.0)
print(f"a 2100 RPM reading would score {why.total:.2f}: high {why.high[0]:.2f}, low {why.low[0]:.2f}")

# Checkpoint and resume: the restored forest scores exactly as the original would.
restored = RandomCutForest.from_bytes(forest.to_bytes())
assert restored.score(1500.0) == forest.score(1500.0)
print(f"checkpoint: {len(forest.to_bytes()):,} bytes")

# A fleet: records of many fans interleaved, as in a Kinesis batch; one forest per fan.
store = MemoryStore()
manager = ForestManager(num_trees=50, store=store)
keys = [f"fan-{i}" for i in range(3)] * 400
readings = np.round(1500 + rng.normal(0, 5, len(keys)))
fleet_scores = manager.process(keys, readings)
manager.flush()  # every fan's model to the store, to resume in another process
print(f"fleet: {len(manager)} fans, {len(fleet_scores)} records scored, {len(store)} models stored")
