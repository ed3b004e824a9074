#!/usr/bin/env python
"""Subnormal floats vs flush-to-zero: CPU training speed over a long run.

    python benchmarks/bench_denormals.py [--epochs 20] [--reps 2] [--out benchmarks/RESULTS_DENORMALS.md]

Trains the mnist5k-mlp preset (fast path, CPU) for --epochs epochs, with per-epoch validation
as ``Trainer.run`` does, in a fresh process per run, interleaving: ``ieee`` (the Trainer's
FTZ/DAZ call disabled: subnormals computed exactly, slowly) and ``ftz`` (the default), on 1 and
2 torch threads. Reports samples/s per 2-epoch window (median over reps): the ``ieee`` runs slow
down as the network grows confident and softmax tails underflow into subnormals.
"""
from __future__ import annotations

import argparse, json, os, statistics, subprocess, sys, time  # noqa: E401

from _report import publish  # benchmarks/ is on sys.path when run as a script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WINDOW = 2  # epochs per reported window


def worker(mode: str, threads: int, epochs: int) -> list[float]:
    sys.path.insert(0, ROOT)
    import torch

    import qsnn_explorer.trainer as trainer_module
    from qsnn_explorer import Trainer, preset
    torch.set_num_threads(threads)
    if mode == "ieee":
        torch.set_flush_denormal(False)
        trainer_module.flush_denormals = lambda: False
    trainer = Trainer(preset("mnist5k-mlp", device="cpu"))
    rates = []
    for _ in range(epochs // WINDOW):
        rates.append(trainer.run(epochs=WINDOW).samples_per_s)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "RESULTS_DENORMALS.md"))
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.epochs)))
        return 0
    results: dict[tuple[str, int], list[list[float]]] = {}
    for _ in range(args.reps):
        for threads in (1, 2):
            for mode in ("ieee", "ftz"):
                out = subprocess.run([sys.executable, __file__, "--epochs", str(args.epochs), "--worker", mode,
                                      str(threads)], capture_output=True, text=True, check=True)
                rates = json.loads(out.stdout.strip().splitlines()[-1])
                results.setdefault((mode, threads), []).append(rates)
                print(mode, threads, [round(r) for r in rates], file=sys.stderr)
    windows = [f"epochs {i * WINDOW + 1}–{(i + 1) * WINDOW}" for i in range(args.epochs // WINDOW)]
    lines = ["# Subnormals vs flush-to-zero (benchmarks/bench_denormals.py)", "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {os.cpu_count()} cores, CPU only",
             f"- command: `python benchmarks/bench_denormals.py --epochs {args.epochs} --reps {args.reps}`",
             "- preset mnist5k-mlp (784-1000-10, T 25, batch 64), fast path, validation after every epoch; "
             f"training samples/s per {WINDOW}-epoch window, median of {args.reps} fresh-process runs", "",
             "| threads | mode | " + " | ".join(windows) + " | last ÷ first |",
             "|---|---|" + "---|" * len(windows) + "---|"]
    for threads in (1, 2):
        for mode in ("ieee", "ftz"):
            med = [statistics.median(r[i] for r in results[(mode, threads)]) for i in range(len(windows))]
            lines.append(f"| {threads} | {mode} | " + " | ".join(f"{m:,.0f}" for m in med) + f" | {med[-1] / med[0]:.2f} |")
    text = "\n".join(lines) + "\n"
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
