"""Benchmark fanwatch.rcf beside AWS's RCF (``krcf``, Rust) and ``rrcf``: quality, speed, memory.

    python bench/rcf.py            # the full run: a few minutes on one core
    python bench/rcf.py --quick    # smaller streams and fleet, to try changes

Prints each figure beside the peers' and PASS/FAIL against the targets of issue 4, and writes a
plot of the scores over the labeled fan stream to ``bench/out/``. All libraries run with 100
trees, sample size 256, shingle 4, on one core (krcf's parallel execution off).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import krcf
import numpy as np
import rrcf
from scipy.stats import rankdata, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rcf_streams import LabeledStream, daily_load, fan_rpm, setpoint_fan, steady_fleet

from fanwatch.rcf import ForestManager, RandomCutForest, Thresholder, ready_forest_bytes, settling

TREES, SAMPLE, SHINGLE = 100, 256, 4
OUT = Path(__file__).resolve().parent / "out"
#: The alert floor of the setpoint test: 1.5 to 2 is the practical range on fan streams (a cut at
#: 1.0 flags several percent of normal points).
ALERT_FLOOR = 1.5
#: A forest ready to score and one checkpoint load before issue 12 (the bench's figures then).
BASELINE_READY_MB, BASELINE_LOAD_MS = 3.7, 31.0
START = time.perf_counter()
RESULTS: list[tuple[str, bool, str]] = []


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - START:7.1f}s] {message}", file=sys.stderr, flush=True)


def verdict(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), by the rank-sum formula."""
    ranks = rankdata(scores)
    positives = labels.sum()
    negatives = len(labels) - positives
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def timed(run: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    begin = time.perf_counter()
    scores = run()
    return scores, time.perf_counter() - begin


def krcf_model(seed: int = 0) -> krcf.RandomCutForest:
    return krcf.RandomCutForest(
        {
            "dimensions": 1,
            "shingle_size": SHINGLE,
            "num_trees": TREES,
            "sample_size": SAMPLE,
            "output_after": SAMPLE // 4,
            "random_seed": seed,
            "parallel_execution_enabled": False,
        }
    )


def krcf_run(model: krcf.RandomCutForest, values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values))
    for i, v in enumerate(values.tolist()):
        point = [v]
        out[i] = model.score(point)
        model.update(point)
    return out


def rrcf_run(values: np.ndarray) -> np.ndarray:
    """rrcf's streaming recipe: shingle, keep a FIFO window of SAMPLE points per tree, codisp."""
    forest = [rrcf.RCTree() for _ in range(TREES)]
    out = np.zeros(len(values))
    flat = values[:, 0]
    for i in range(SHINGLE - 1, len(flat)):
        point = flat[i - SHINGLE + 1 : i + 1]
        index = i
        total = 0.0
        for tree in forest:
            if len(tree.leaves) >= SAMPLE:
                tree.forget_point(index - SAMPLE)
            tree.insert_point(point, index=index)
            total += tree.codisp(index)
        out[i] = total / TREES
    return out


# ---- quality -----------------------------------------------------------------------------------


def quality(stream: LabeledStream, skip: int) -> dict[str, Any]:
    progress(f"{stream.name}: {len(stream.values):,} points, fanwatch.rcf")
    ours = RandomCutForest(1, shingle_size=SHINGLE, num_trees=TREES, sample_size=SAMPLE, seed=1)
    ours_scores, ours_s = timed(lambda: ours.process(stream.values))
    progress(f"{stream.name}: krcf")
    theirs = krcf_model(1)
    krcf_scores, krcf_s = timed(lambda: krcf_run(theirs, stream.values[:, 0]))
    judged = slice(skip, None)
    labels = stream.labels[judged]
    return {
        "stream": stream,
        "ours": ours_scores,
        "krcf": krcf_scores,
        "auc_ours": roc_auc(ours_scores[judged], labels),
        "auc_krcf": roc_auc(krcf_scores[judged], labels),
        "spearman": float(spearmanr(ours_scores[judged], krcf_scores[judged]).statistic),
        "pps_ours": len(stream.values) / ours_s,
        "pps_krcf": len(stream.values) / krcf_s,
        "bytes_ours": len(ours.to_bytes()),
        "bytes_krcf": len(theirs.to_msgpack()),
        "forest": ours,
    }


def rrcf_excerpt(stream: LabeledStream, length: int) -> dict[str, Any]:
    """All three libraries from scratch on an excerpt around the stall (rrcf is ~18 points/s)."""
    stall = next(start for kind, start, _ in stream.events if kind == "stall")
    lo = max(0, stall - length + 120)
    values, labels = stream.values[lo : lo + length], stream.labels[lo : lo + length]
    progress(f"rrcf excerpt: {length} points (about {length / 18:.0f} s)")
    rr, rr_s = timed(lambda: rrcf_run(values))
    ours, _ = timed(lambda: RandomCutForest(1, num_trees=TREES, sample_size=SAMPLE, seed=1).process(values))
    kr, _ = timed(lambda: krcf_run(krcf_model(1), values[:, 0]))
    judged = slice(SAMPLE // 4 + SHINGLE, None)
    return {
        "length": length,
        "auc_rrcf": roc_auc(rr[judged], labels[judged]),
        "auc_ours": roc_auc(ours[judged], labels[judged]),
        "auc_krcf": roc_auc(kr[judged], labels[judged]),
        "spearman_rrcf": float(spearmanr(rr[judged], kr[judged]).statistic),
        "pps_rrcf": length / rr_s,
    }


# ---- speed -------------------------------------------------------------------------------------


def single_stream_speed(values: np.ndarray, repeats: int) -> dict[str, list[float]]:
    """Points/s of both libraries on one stream, alternating, ``repeats`` times each, each run from a
    fresh model: on a shared machine one run of either can be 30 % off."""
    ours, theirs = [], []
    for r in range(repeats):
        progress(f"speed: one stream of {len(values):,} points, run {r + 1} of {repeats}")
        forest = RandomCutForest(1, shingle_size=SHINGLE, num_trees=TREES, sample_size=SAMPLE, seed=r)
        ours.append(len(values) / timed(partial(forest.process, values))[1])
        theirs.append(len(values) / timed(partial(krcf_run, krcf_model(r), values[:, 0]))[1])
    return {"ours": ours, "krcf": theirs}


def single_point_rate(values: np.ndarray) -> float:
    forest = RandomCutForest(1, num_trees=TREES, sample_size=SAMPLE, seed=3)
    forest.process(values[:3000])
    rest = values[3000:3500, 0].tolist()
    begin = time.perf_counter()
    for v in rest:
        forest.score_and_update(v)
    return len(rest) / (time.perf_counter() - begin)


def fleet(fans: int, steps: int, batch_steps: int, repeats: int) -> dict[str, Any]:
    """Fans at steady state (from a warmed template model), interleaved records in batches; both
    libraries take ``steps`` seconds of every fan in turn, ``repeats`` times (medians reported)."""
    progress(f"fleet: warming a template model, {fans} fans")
    warm, records = steady_fleet(fans, repeats * steps + 1)
    template = RandomCutForest(1, num_trees=TREES, sample_size=SAMPLE, seed=5)
    template.process(warm)
    krcf_template = krcf_model(5)
    krcf_run(krcf_template, warm[:, 0])
    keys = [f"fan-{i:04d}" for i in range(fans)]

    rss_before = rss_bytes()
    manager = ForestManager(num_trees=TREES, sample_size=SAMPLE, shingle_size=SHINGLE, max_hydrated=fans)
    data = template.to_bytes()
    for key in keys:
        manager.adopt(key, bytes(bytearray(data)))
    progress(f"fleet: loading {fans} models into the bank (first record of each fan)")
    begin = time.perf_counter()
    manager.process(keys, records[0])
    load_s = time.perf_counter() - begin
    rss_hydrated = rss_bytes()
    # measured before krcf's models exist: their freed memory would stay in the process's RSS
    progress("memory: 10,000 resident models (the fleet's hydrated ones plus checkpoints)")
    for i in range(fans, 10_000):
        manager.adopt(f"fan-{i:04d}", bytes(bytearray(data)))
    rss_resident = rss_bytes()
    # what a busy detector does: a fan's forest was evicted and its checkpoint comes back into a
    # slot another forest left (no fresh memory to fault in, unlike the first load above)
    progress(f"fleet: reloading {fans} models into used slots (evicted, then their next record)")
    for key in keys:
        manager.discard(key)
        manager.adopt(key, bytes(bytearray(data)))
    begin = time.perf_counter()
    manager.process(keys, records[0])
    reload_s = time.perf_counter() - begin

    # krcf the same way: every model from its checkpoint, then one record each
    krcf_data = krcf_template.to_msgpack()
    rss_before_krcf = rss_bytes()
    begin = time.perf_counter()
    models = [krcf.RandomCutForest.from_msgpack(krcf_data) for _ in range(fans)]
    for model, v in zip(models, records[0].tolist(), strict=True):
        model.score([v])
        model.update([v])
    krcf_load_s = time.perf_counter() - begin
    rss_krcf = rss_bytes()
    ours, theirs = [], []
    for r in range(repeats):
        first, last = 1 + r * steps, 1 + (r + 1) * steps
        progress(
            f"fleet: run {r + 1} of {repeats}, {steps} s of {fans} fans; fanwatch.rcf in batches of "
            f"{batch_steps * fans:,} records, then krcf one model at a time"
        )
        begin = time.perf_counter()
        for lo in range(first, last, batch_steps):
            chunk = records[lo : min(lo + batch_steps, last)]
            manager.process(keys * len(chunk), chunk.reshape(-1))
        ours.append(fans * steps / (time.perf_counter() - begin))
        begin = time.perf_counter()
        for i, model in enumerate(models):
            for v in records[first:last, i].tolist():
                model.score([v])
                model.update([v])
        theirs.append(fans * steps / (time.perf_counter() - begin))
    del models

    return {
        "fans": fans,
        "ours": ours,
        "krcf": theirs,
        "load_ms": 1000 * load_s / fans,
        "reload_ms": 1000 * reload_s / fans,
        "krcf_load_ms": 1000 * krcf_load_s / fans,
        "hydrated_mb": (rss_hydrated - rss_before) / fans / 1e6,
        "krcf_hydrated_mb": (rss_krcf - rss_before_krcf) / fans / 1e6,
        "bank_mb": ready_forest_bytes(num_trees=TREES, sample_size=SAMPLE, shingle_size=SHINGLE) / 1e6,
        "resident": len(manager),
        "rss_resident_gb": (rss_resident - rss_before) / 1e9,
        "process_rss_gb": rss_resident / 1e9,
    }


def medians(runs: dict[str, list[float]]) -> tuple[float, float, str]:
    """The median points/s of both libraries, and a note of the spread of their runs."""
    ours, theirs = runs["ours"], runs["krcf"]
    if len(ours) == 1:
        return ours[0], theirs[0], ""
    spread = [f"{min(side):,.0f}-{max(side):,.0f}" for side in (ours, theirs)]
    note = f"(median of {len(ours)}; runs {spread[0]}, krcf {spread[1]})"
    return float(np.median(ours)), float(np.median(theirs)), note


# ---- speed-controlled fans ---------------------------------------------------------------------


def bursts(flags: np.ndarray, gap: int = 10) -> list[tuple[int, int]]:
    """Runs of flagged points, merging runs less than ``gap`` points apart."""
    runs: list[tuple[int, int]] = []
    for at in np.flatnonzero(flags):
        if runs and at - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], int(at))
        else:
            runs.append((int(at), int(at)))
    return runs


def setpoints(learn: int) -> dict[str, Any]:
    stream, changes = setpoint_fan()
    fault = next(start for kind, start, _ in stream.events if kind.startswith("stuck"))
    progress(f"setpoints: {len(changes)} commanded speed changes, RPM alone and RPM + target")
    window = SHINGLE + 16  # the shingle plus about five time constants of the fan (3 s)
    out: dict[str, Any] = {"changes": int((changes >= learn).sum()), "learn": learn, "window": window}
    for name, values in (("rpm", stream.values[:, :1]), ("rpm+target", stream.values)):
        forest = RandomCutForest(values.shape[1], num_trees=TREES, sample_size=SAMPLE, seed=4)
        scores = forest.process(values)
        marks = settling(stream.values[:, 1], window=window) if values.shape[1] == 2 else None
        flags = Thresholder(z=3, floor=ALERT_FLOOR).observe_many(scores, settling=marks)
        runs = [r for r in bursts(flags) if r[0] >= learn and not fault <= r[0] < fault + 120]
        near = [r for r in runs if ((r[0] - changes >= 0) & (r[0] - changes < 120)).any()]
        counted = max(1, int((changes >= learn).sum()))
        out[name] = {
            "bursts_per_change": len(near) / counted,
            "longest_s": max((b - a + 1 for a, b in near), default=0),
            "other_bursts": len(runs) - len(near),
            "fault_found": bool(flags[fault : fault + 120].any()),
        }
    return out


# ---- report ------------------------------------------------------------------------------------


def plot(result: dict[str, Any]) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    stream = result["stream"]
    assert isinstance(stream, LabeledStream)
    OUT.mkdir(exist_ok=True)
    fig, axes = plt.subplots(3, 1, figsize=(14, 8), sharex=True)
    x = np.arange(len(stream.values))
    axes[0].plot(x, stream.values[:, 0], lw=0.5, color="k")
    axes[0].set_ylabel("RPM")
    axes[1].plot(x, result["ours"], lw=0.5, color="tab:blue")
    axes[1].set_ylabel("fanwatch.rcf")
    axes[2].plot(x, result["krcf"], lw=0.5, color="tab:orange")
    axes[2].set_ylabel("krcf (AWS)")
    for ax in axes:
        for _, start, end in stream.events:
            ax.axvspan(start, end + SHINGLE - 1, color="tab:red", alpha=0.25, lw=0)
    axes[0].set_title("Anomaly scores over the labeled fan stream (labeled anomalies shaded)")
    axes[2].set_xlabel("seconds")
    fig.tight_layout()
    path = OUT / "rcf_fan_scores.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller streams and fleet")
    args = parser.parse_args()
    n_fan, days, fans, steps, excerpt = (6000, 5, 100, 20, 300) if args.quick else (20_000, 12, 1000, 50, 600)

    fan = quality(fan_rpm(n_fan), skip=500)
    load = quality(daily_load(days), skip=1440)
    rr = rrcf_excerpt(fan["stream"], excerpt)
    one = single_stream_speed(fan["stream"].values, repeats=1 if args.quick else 3)
    progress("speed: fanwatch.rcf, one score_and_update call per point")
    per_call = single_point_rate(fan["stream"].values)
    fl = fleet(fans, steps, batch_steps=10, repeats=1 if args.quick else 3)
    sp = setpoints(learn=3000)
    png = plot(fan)
    report(fan, load, rr, one, per_call, fl, sp, steps)
    if png:
        print(f"\nplot: {png}")
    progress("done")
    return 0


def report(fan: Any, load: Any, rr: Any, one: Any, per_call: float, fl: Any, sp: Any, steps: int) -> None:
    print(
        f"\nfanwatch.rcf vs krcf {krcf.__version__} (AWS RCF, Rust) and rrcf: "
        f"{TREES} trees, sample {SAMPLE}, shingle {SHINGLE}, one core\n"
    )
    row = "  {:<44} {:>12} {:>10} {:>10}"
    print(row.format("QUALITY", "fanwatch.rcf", "krcf", "rrcf"))
    for r in (fan, load):
        print(row.format(f"ROC AUC, {r['stream'].name}", f"{r['auc_ours']:.4f}", f"{r['auc_krcf']:.4f}", "-"))
    print(
        row.format(
            f"ROC AUC, {rr['length']}-point excerpt with the stall",
            f"{rr['auc_ours']:.4f}",
            f"{rr['auc_krcf']:.4f}",
            f"{rr['auc_rrcf']:.4f}",
        )
    )
    for r in (fan, load):
        print(row.format(f"Spearman vs krcf, {r['stream'].name}", f"{r['spearman']:.3f}", "1", "-"))
    print(row.format("Spearman vs krcf, excerpt", "-", "1", f"{rr['spearman_rrcf']:.3f}"))
    print()
    print(row.format("SPEED (points/s, score then update)", "fanwatch.rcf", "krcf", "rrcf"))
    ours, theirs, spread = medians(one)
    print(
        row.format(
            f"single stream, {len(fan['ours']):,} points, process()",
            f"{ours:,.0f}",
            f"{theirs:,.0f}",
            f"{rr['pps_rrcf']:,.1f}",
        ),
        *[spread][: bool(spread)],
    )
    print(
        row.format("single stream, one score_and_update per point", f"{per_call:,.0f}", f"{theirs:,.0f}", "")
    )
    print(
        row.format(
            f"daily load, {len(load['ours']):,} points, process()",
            f"{load['pps_ours']:,.0f}",
            f"{load['pps_krcf']:,.0f}",
            "",
        )
    )
    fleet_ours, fleet_krcf, fleet_spread = medians(fl)
    print(
        row.format(
            f"fleet, {fl['fans']:,} fans x {steps} s interleaved",
            f"{fleet_ours:,.0f}",
            f"{fleet_krcf:,.0f}",
            "",
        ),
        "(krcf: one model at a time)",
        *[fleet_spread][: bool(fleet_spread)],
    )
    print(
        row.format("checkpoint load, ms per model", f"{fl['load_ms']:.1f}", f"{fl['krcf_load_ms']:.1f}", ""),
        f"(first record of {fl['fans']:,} fans, each from its checkpoint)",
    )
    print(
        row.format("checkpoint reload into a used slot, ms", f"{fl['reload_ms']:.1f}", "", ""),
        "(the same after an eviction: a busy detector's case)",
    )
    print()
    print(row.format("MEMORY", "fanwatch.rcf", "krcf", ""))
    print(
        row.format(
            "serialized model, bytes (fan stream)", f"{fan['bytes_ours']:,}", f"{fan['bytes_krcf']:,}", ""
        ),
        f"({fan['bytes_krcf'] / fan['bytes_ours']:.1f}x smaller)",
    )
    print(
        row.format(
            "model ready to score, MB (RSS growth)",
            f"{fl['hydrated_mb']:.2f}",
            f"{fl['krcf_hydrated_mb']:.2f}",
            "",
        ),
        f"(bank arrays {fl['bank_mb']:.2f} MB; {BASELINE_READY_MB} MB before issue 12)",
    )
    print(
        row.format(f"RSS of {fl['resident']:,} resident models, GB", f"{fl['rss_resident_gb']:.2f}", "", ""),
        f"({fl['fans']:,} in the bank, the rest as checkpoints; whole process {fl['process_rss_gb']:.2f} GB)",
    )
    print()
    print(
        f"SPEED-CONTROLLED FAN: {sp['changes']} setpoint changes after a {sp['learn']} s learning period, "
        f"Thresholder z=3, floor {ALERT_FLOOR};\n  with the target as input, {sp['window']} s of settling "
        "after each commanded change"
    )
    for name in ("rpm", "rpm+target"):
        s = sp[name]
        print(
            f"  input {name:<11} alert bursts per change {s['bursts_per_change']:.2f}, "
            f"longest {s['longest_s']} s, other bursts {s['other_bursts']}, "
            f"fan stuck after a change found: {'yes' if s['fault_found'] else 'no'}"
        )
    print()
    for r in (fan, load):
        name = r["stream"].name
        verdict(
            f"ROC AUC {name} >= krcf - 0.01",
            r["auc_ours"] >= r["auc_krcf"] - 0.01,
            f"{r['auc_ours']:.4f} vs {r['auc_krcf']:.4f}",
        )
        verdict(f"Spearman {name} >= 0.9", r["spearman"] >= 0.9, f"{r['spearman']:.3f}")
    ratio = ours / theirs
    verdict("single stream >= 0.5x krcf", ratio >= 0.5, f"{ratio:.2f}x (medians)")
    ratio = fleet_ours / fleet_krcf
    verdict("fleet batch >= 2x krcf", ratio >= 2.0, f"{ratio:.2f}x (medians)")
    ratio = fan["bytes_krcf"] / fan["bytes_ours"]
    verdict("serialized model <= 1/10 of krcf's", ratio >= 10, f"1/{ratio:.1f}")
    ratio = BASELINE_READY_MB / fl["hydrated_mb"]
    verdict("ready forest >= 5x smaller (issue 12)", ratio >= 5, f"{ratio:.2f}x ({fl['hydrated_mb']:.2f} MB)")
    ratio = BASELINE_LOAD_MS / fl["load_ms"]
    verdict(
        "checkpoint load >= 10x faster (issue 12)",
        ratio >= 10,
        f"{ratio:.2f}x ({fl['load_ms']:.1f} ms; into a used slot {BASELINE_LOAD_MS / fl['reload_ms']:.2f}x, "
        f"{fl['reload_ms']:.1f} ms)",
    )
    one, two = sp["rpm"], sp["rpm+target"]
    verdict(
        "setpoints, RPM alone: <= 1 short burst per change",
        one["bursts_per_change"] <= 1 and one["longest_s"] <= 30,
        f"{one['bursts_per_change']:.2f}, longest {one['longest_s']} s",
    )
    verdict(
        "setpoints, RPM + target: no alert after a commanded change",
        two["bursts_per_change"] == 0,
        f"{two['bursts_per_change']:.2f} per change",
    )
    verdict(
        "setpoints, RPM + target: a fan stuck after a change alerts",
        two["fault_found"],
        str(two["fault_found"]),
    )
    for name, ok, detail in RESULTS:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")


if __name__ == "__main__":
    sys.exit(main())
