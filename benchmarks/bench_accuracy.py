#!/usr/bin/env python
"""Accuracy after 3 epochs: the snntorch tutorial loop (a) vs the engine's fast path (c).

    python benchmarks/bench_accuracy.py [--epochs 3] [--seeds 0 1 2] [--out benchmarks/RESULTS_ACCURACY.md]

The tutorial preset (784-1000-10, direct input, T 25, batch 128, Adam 5e-4) trained for
--epochs epochs per seed, both variants from the engine's initial weights and batch order
(bench_engine.py's runners), on 2 threads; validation accuracy on the 500 val digits, by the
same rule (argmax over classes of Σ_t output membrane). Issue 3 asks for the same accuracy
"within seed noise": the table gives each seed, the mean, and the spread over seeds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import publish  # noqa: E402
from bench_engine import engine_runner, snntorch_runner, workload_cfg  # noqa: E402

from qsnn_explorer.data import load_dataset  # noqa: E402


def val_accuracy(variant: str, seed: int, epochs: int, data) -> float:
    cfg = workload_cfg("tutorial", "fast").replace(seed=seed)
    step, infer, _ = snntorch_runner(cfg, "tutorial", data) if variant == "a" else engine_runner(cfg, data)
    per_epoch = -(-len(data.train.y) // cfg.batch_size)
    for _ in range(epochs * per_epoch):
        step()
    xv, yv = data.val.x, data.val.y
    bs = cfg.batch_size  # inference at the training batch, as bench_engine
    correct = sum(int((infer(xv[i:i + bs]).sum(0).argmax(-1) == yv[i:i + bs]).sum())
                  for i in range(0, len(yv), bs))
    return correct / len(yv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "RESULTS_ACCURACY.md"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = load_dataset(workload_cfg("tutorial", "fast").dataset)
    acc = {v: [val_accuracy(v, s, args.epochs, data) for s in args.seeds] for v in ("a", "c")}
    names = {"a": "(a) snntorch tutorial loop", "c": "(c) engine fast path"}
    lines = ["# Accuracy after training (benchmarks/bench_accuracy.py)", "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU, 2 threads",
             f"- command: `python benchmarks/bench_accuracy.py --epochs {args.epochs} --seeds "
             f"{' '.join(map(str, args.seeds))}`",
             f"- preset bench-snntorch-tutorial, {args.epochs} epochs; val accuracy % on the 500 val digits", "",
             "| variant | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean | spread (max − min) |",
             "|---|" + "---|" * len(args.seeds) + "---|---|"]
    for v, values in acc.items():
        pct = [100 * a for a in values]
        lines.append(f"| {names[v]} | " + " | ".join(f"{p:.1f}" for p in pct) +
                     f" | {statistics.mean(pct):.1f} | {max(pct) - min(pct):.1f} |")
    diff = 100 * (statistics.mean(acc["c"]) - statistics.mean(acc["a"]))
    spread = 100 * max(max(acc[v]) - min(acc[v]) for v in acc)
    verdict = "within" if abs(diff) <= max(spread, 0.2) else "outside"
    lines += ["", f"Mean difference (c) − (a): {diff:+.1f} points; the larger spread over seeds: {spread:.1f} "
                  f"points, so the difference is **{verdict}** seed noise.", ""]
    text = "\n".join(lines)
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
