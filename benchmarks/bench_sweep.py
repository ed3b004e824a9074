#!/usr/bin/env python
"""Sweep benchmark: an 8-task grid on a 2-process LocalCluster vs the same 8 tasks sequentially.

    python benchmarks/bench_sweep.py              # 3 interleaved reps, both workloads
    python benchmarks/bench_sweep.py --reps 1     # development

Grid: surrogate {fast_sigmoid, triangular} × lr {2e-3, 5e-3} × seeds {0, 1} on the digits8x8-mlp
preset (64-128-10, T 10), CPU, 1 torch thread per task. Workloads: ``small`` (10 epochs a task)
and ``tiny`` (1 epoch a task: overhead dominates). Each rep runs, each in a fresh process:
``seq`` (the 8 tasks with ``run_task`` in a loop, twice: cold then warm) and ``dask`` (start a
LocalCluster of 2 worker processes, ``sweep`` the grid twice: cold workers then warm, close).
Report: stdout + --out.
"""
from __future__ import annotations

import argparse, datetime, json, os, shlex, statistics, subprocess, sys, time  # noqa: E401

from _report import publish  # benchmarks/ is on sys.path when run as a script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
T0 = time.perf_counter()
now = time.perf_counter

GRID = {"surrogate": ["fast_sigmoid", "triangular"], "lr": [2e-3, 5e-3]}
SEEDS = [0, 1]
WORKLOADS = {"small": 10, "tiny": 1}  # epochs per task
WORKERS = 2


def base_config(workload: str):
    from qsnn_explorer import preset
    return preset("digits8x8-mlp", epochs=WORKLOADS[workload], device="cpu", engine="fast")


# ---------------------------------------------------------------- worker side (fresh process)
def worker_seq(workload: str) -> dict:
    from qsnn_explorer.sweep import expand_grid, run_task
    imported = now() - T0
    runs = expand_grid(base_config(workload), GRID, SEEDS)
    out = {"import_s": imported}
    for phase in ("cold", "warm"):
        t = now()
        rows = [run_task(cfg.to_json(indent=None), params) for params, cfg in runs]
        out[f"{phase}_s"] = now() - t
        out[f"{phase}_train_s"] = sum(r["wall_time"] for r in rows)
        out[f"{phase}_losses"] = {r["key"]: r["final_val_loss"] for r in rows}
    return out


def worker_dask(workload: str) -> dict:
    from distributed import Client, LocalCluster

    from qsnn_explorer.sweep import sweep
    imported = now() - T0
    t = now()
    cluster = LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    client.wait_for_workers(WORKERS)
    out = {"import_s": imported, "startup_s": now() - t}
    base = base_config(workload)
    for phase in ("cold", "warm"):
        t = now()
        df = sweep(base, GRID, SEEDS, client=client, progress=False)
        out[f"{phase}_s"] = now() - t
        out[f"{phase}_train_s"] = float(df["wall_time"].sum())
        out[f"{phase}_losses"] = dict(zip(df["key"], df["final_val_loss"]))
        out[f"{phase}_errors"] = int(df["error"].notna().sum())
    t = now()
    client.close()
    cluster.close()
    out["close_s"] = now() - t
    return out


def run_worker(kind: str, workload: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--workload", workload]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = now()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"worker {kind} {workload} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = now() - t
    return res


# ---------------------------------------------------------------- report
def fmt(values, scale=1.0, digits=2) -> str:
    values = [v * scale for v in values]
    med = statistics.median(values)
    return f"{med:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})" if len(values) > 1 \
        else f"{med:.{digits}f}"


def report(args, res, started, load0, load1) -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    import dask
    import distributed
    import torch
    busy = max(float(load0), float(load1)) > 0.5
    L = ["# Sweep benchmark: 8 tasks on a 2-process LocalCluster vs sequential", "",
         f"- date: {started:%Y-%m-%d %H:%M} UTC",
         f"- machine: {cpu}, {os.cpu_count()} cores; torch {torch.__version__} (1 thread a task), dask "
         f"{dask.__version__}, distributed {distributed.__version__}, Python {sys.version.split()[0]}",
         f"- load average (1 min) at start / end: {load0} / {load1}"
         + (" — ⚠ the machine was not idle (other jobs, or the 1-minute average still holding earlier runs): check before trusting the timings"
            if busy else ""),
         f"- code: commit {git('rev-parse', '--short', 'HEAD')}, uncommitted in qsnn_explorer: "
         f"{git('status', '--porcelain', '--', 'qsnn_explorer').replace(chr(10), '; ') or 'none'}",
         f"- command: `{' '.join(shlex.quote(a) for a in [sys.executable] + sys.argv)}` (cwd {ROOT})",
         f"- {args.reps} interleaved rep(s), each variant in a fresh process; cells: median (min–max) in seconds",
         f"- grid: {GRID} × seeds {SEEDS} = 8 tasks, preset digits8x8-mlp (64-128-10, T 10, batch 32, "
         f"1439 training digits), CPU, fast engine", ""]
    for wl, epochs in WORKLOADS.items():
        seq, dsk = res[wl]["seq"], res[wl]["dask"]
        L += [f"## {wl}: {epochs} epoch{'s' * (epochs > 1)} a task", "",
              "| | sequential (1 process) | Dask, 2 workers | speed-up | overhead per task |", "|---|---|---|---|---|"]
        for phase, what in (("cold", "cold (first pass: workers / process import and load on their first task)"),
                            ("warm", "warm (second pass, same processes)")):
            s, d = [r[f"{phase}_s"] for r in seq], [r[f"{phase}_s"] for r in dsk]
            speed = [a / b for a, b in zip(s, d)]
            over = [(b - a / WORKERS) / 8 for a, b in zip(s, d)]
            L.append(f"| {what} | {fmt(s)} | {fmt(d)} | {fmt(speed)}× | {fmt(over, 1e3, 0)} ms |")
        for phase in ("cold", "warm"):
            s, d = [r[f"{phase}_train_s"] for r in seq], [r[f"{phase}_train_s"] for r in dsk]
            L.append(f"| Σ in-task training time ({phase}) | {fmt(s)} | {fmt(d)} | | |")
        ends = [r["startup_s"] + r["cold_s"] + r["close_s"] for r in dsk]
        s = [r["cold_s"] for r in seq]
        L += [f"| cluster start (LocalCluster + Client, 2 workers up) | — | {fmt([r['startup_s'] for r in dsk])} | | |",
              f"| cluster close | — | {fmt([r['close_s'] for r in dsk])} | | |",
              f"| end to end: start + cold pass + close | {fmt(s)} | {fmt(ends)} | "
              f"{fmt([a / b for a, b in zip(s, ends)])}× | |",
              f"| whole process (imports included) | {fmt([r['process_s'] for r in seq])} | "
              f"{fmt([r['process_s'] for r in dsk])} | | |"]
        same = all(r["cold_losses"] == d[p] for r in seq for d in dsk for p in ("cold_losses", "warm_losses"))
        errors = sum(r["cold_errors"] + r["warm_errors"] for r in dsk)
        L += ["", f"Final validation losses identical between sequential and Dask, every rep and pass: "
                  f"**{'yes' if same else 'NO'}**; task errors: {errors}.", ""]
    L += ["Definitions: *speed-up* = sequential ÷ Dask wall time of the same 8 tasks, paired per rep. "
          f"*overhead per task* = (Dask wall − sequential wall ÷ {WORKERS}) ÷ 8: what each task costs beyond a "
          "perfect split over the 2 workers (scheduling, serialization, result transfer, and on the cold pass "
          "the workers' own imports and data loading; contention for the 2 cores shows up here too). "
          "*cold* sequential includes the first task's data load and numba cache load in that process; "
          "cold Dask includes each worker importing torch/qsnn_explorer, loading the data and the numba cache. "
          "*Σ in-task training time* = sum of `Trainer.run` wall times reported by the tasks: when it is higher "
          "under Dask, the 2 worker processes slowed each other (shared cores, memory bandwidth, other users). "
          "Cluster start and close are not in the pass timings; *end to end* adds them."]
    return "\n".join(L) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "RESULTS_SWEEP.md"))
    p.add_argument("--worker", choices=("seq", "dask"), help=argparse.SUPPRESS)
    p.add_argument("--workload", choices=tuple(WORKLOADS), default="small", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        res = (worker_seq if args.worker == "seq" else worker_dask)(args.workload)
        print(json.dumps(res))
        return
    started, load0 = datetime.datetime.now(datetime.timezone.utc), open("/proc/loadavg").read().split()[0]
    res = {wl: {"seq": [], "dask": []} for wl in WORKLOADS}
    for rep in range(args.reps):
        for wl in WORKLOADS:
            for kind in (("seq", "dask") if rep % 2 == 0 else ("dask", "seq")):
                print(f"rep {rep + 1}/{args.reps}: {wl} {kind}", file=sys.stderr)
                res[wl][kind].append(run_worker(kind, wl))
    text = report(args, res, started, load0, open("/proc/loadavg").read().split()[0])
    publish(text, args.out)


if __name__ == "__main__":
    main()
