#!/usr/bin/env python
"""Engine benchmark: (a) a plain snntorch loop vs the engine's (b) reference and (c) fast paths.

    python benchmarks/bench_engine.py                # full run: 3 interleaved reps, 2 threads
    python benchmarks/bench_engine.py --quick        # development: 1 rep, 5 batches per workload

Each (rep, workload, variant) runs in a fresh process (``--worker``, one JSON line on stdout), so peak
RSS is per variant and the order a, b, c, a, b, c, ... is honest. Workloads: tutorial (snntorch
tutorial 5 net, one epoch), rate (Bernoulli inputs), conv (P1's net); plus gemm (the tutorial's GEMM
floor) and bschange (fast-path first step after a batch-size change / reset). Report: stdout + --out.
"""
from __future__ import annotations

import argparse, datetime, hashlib, json, math, os, shlex, statistics, subprocess, sys, time  # noqa: E401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import snntorch as snn  # noqa: E402  (every worker pays the same imports before its RSS baseline)
import torch  # noqa: E402
from snntorch import functional as SF, spikegen, surrogate, utils  # noqa: E402
from torch import nn  # noqa: E402

from qsnn_explorer import Trainer, preset  # noqa: E402
from qsnn_explorer.allocator import keep_freed_memory  # noqa: E402
from qsnn_explorer.data import load_dataset  # noqa: E402
from qsnn_explorer.encoders import encode  # noqa: E402

from _report import publish  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

VARIANTS = {"a": "snntorch loop", "a2": "snntorch loop, freed memory kept", "b": "engine reference",
            "c": "engine fast"}
WORKLOADS = ("tutorial", "rate", "conv")
now = time.perf_counter


def proc_status() -> dict:
    """VmRSS / VmHWM of this process in MB."""
    with open("/proc/self/status") as fh:
        return {ln[:5]: int(ln.split()[1]) / 1024 for ln in fh if ln.startswith(("VmRSS:", "VmHWM:"))}


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0), so the peak excludes import/data-load transients."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- worker side
def workload_cfg(workload: str, engine: str):
    cfg = {"tutorial": lambda: preset("bench-snntorch-tutorial"),
           "rate": lambda: preset("mnist5k-rate", hidden=(1000,), num_steps=25, batch_size=128, lr=5e-4),
           "conv": lambda: preset("mnist5k-conv")}[workload]()
    return cfg.replace(engine=engine, device="cpu")


def engine_init(net: nn.Module, seed: int) -> None:
    """The engine's init (nn.Linear's default, Kaiming-uniform a=√5) drawn from the engine's generator."""
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=gen)
            if m.bias is not None:
                bound = 1 / math.sqrt(m.weight[0].numel())
                nn.init.uniform_(m.bias, -bound, bound, generator=gen)


def snntorch_runner(cfg, workload: str, data):
    """(a): the network and loop as snntorch's tutorials write them. Returns (step, infer, None)."""
    grad = surrogate.fast_sigmoid(slope=cfg.surrogate_sharpness)
    T = cfg.num_steps

    class Net(nn.Module):  # tutorial 5, with the fast-sigmoid surrogate
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, cfg.hidden[0])
            self.lif1 = snn.Leaky(beta=cfg.beta, threshold=cfg.threshold, spike_grad=grad)
            self.fc2 = nn.Linear(cfg.hidden[0], 10)
            self.lif2 = snn.Leaky(beta=cfg.beta, threshold=cfg.threshold, spike_grad=grad)

        def forward(self, x):  # x [B, 784] (direct: same image every step) or [T, B, 784] (rate)
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            spk2_rec, mem2_rec = [], []
            for step in range(T):
                cur1 = self.fc1(x if x.dim() == 2 else x[step])
                spk1, mem1 = self.lif1(cur1, mem1)
                cur2 = self.fc2(spk1)
                spk2, mem2 = self.lif2(cur2, mem2)
                spk2_rec.append(spk2)
                mem2_rec.append(mem2)
            return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)

    if workload == "conv":  # P1's net in the tutorial 6/7 idiom (init_hidden, utils.reset)
        def lif(**kw):
            return snn.Leaky(beta=cfg.beta, threshold=cfg.threshold, spike_grad=grad, init_hidden=True, **kw)
        c1, c2 = cfg.hidden
        net = nn.Sequential(nn.Conv2d(1, c1, 5, bias=False), nn.AvgPool2d(2), nn.BatchNorm2d(c1), lif(),
                            nn.Conv2d(c1, c2, 5), nn.AvgPool2d(2), nn.BatchNorm2d(c2), lif(),
                            nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(c2 * 16, 10), lif(output=True))
        loss_fn = SF.mse_count_loss(correct_rate=cfg.count_correct, incorrect_rate=cfg.count_incorrect)

        def forward(x):  # → output spikes [T, B, 10]
            utils.reset(net)
            spk_rec = []
            for step in range(T):
                spk_out, mem_out = net(x)
                spk_rec.append(spk_out)
            return torch.stack(spk_rec)
    else:
        net, ce = Net(), nn.CrossEntropyLoss()

        def forward(x):  # → output membrane [T, B, 10]
            x = x.flatten(1)
            return net(spikegen.rate(x, num_steps=T) if workload == "rate" else x)[1]

        def loss_fn(mem_rec, targets):  # tutorial 5: Σ_t CE(mem2_rec[t], y)
            loss_val = torch.zeros((1), dtype=torch.float)
            for step in range(T):
                loss_val += ce(mem_rec[step], targets)
            return loss_val

    engine_init(net, cfg.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    order_gen = torch.Generator().manual_seed(cfg.seed + 1)  # the Trainer's shuffle stream
    x_all, y_all, bs = data.train.x, data.train.y, cfg.batch_size
    per_epoch, state = math.ceil(len(y_all) / bs), {"order": None, "i": 0}

    def step():
        b = state["i"] % per_epoch
        if b == 0:
            state["order"] = torch.randperm(len(y_all), generator=order_gen)
        idx = state["order"][b * bs:(b + 1) * bs]
        state["i"] += 1
        net.train()
        loss_val = loss_fn(forward(x_all[idx]), y_all[idx])
        optimizer.zero_grad()
        loss_val.backward()
        optimizer.step()

    def infer(x):
        net.eval()
        with torch.no_grad():
            return forward(x)
    return step, infer, None


def engine_runner(cfg, data):
    """(b)/(c): the public Trainer; inference = encode + model forward (evaluate() minus loss and stats),
    with spikes as bool, as the Trainer encodes them."""
    trainer = Trainer(cfg, data)
    gen = torch.Generator().manual_seed(cfg.seed + 3)

    def infer(x):
        trainer.model.eval()
        with torch.no_grad():
            seq = encode(x, cfg.num_steps, cfg.encoder, gen, spike_dtype=torch.bool)
            return trainer.model(seq, cfg.encoder == "direct", keep_mems=False).out
    return trainer.step, infer, trainer


def train_bench(args, data) -> dict:
    cfg = workload_cfg(args.workload, "fast" if args.worker == "c" else "reference")
    n, bs = len(data.train.y), cfg.batch_size
    steps = math.ceil(n / bs) if args.steps <= 0 else min(args.steps, math.ceil(n / bs))
    sizes = [min(bs, n - i * bs) for i in range(steps)]
    t0 = now()
    if args.worker == "a2":  # the allocator setting the engine's Trainer applies (allocator.py)
        keep_freed_memory()
    step, infer, trainer = snntorch_runner(cfg, args.workload, data) if args.worker.startswith("a") \
        else engine_runner(cfg, data)
    t1, c1 = now(), time.process_time()
    step()
    t2 = now()
    for _ in range(steps - 1):
        step()
    t3, c3 = now(), time.process_time()
    train_peak, _ = proc_status()["VmHWM"], reset_peak()  # the inference peak is measured separately
    xv, yv = data.val.x, data.val.y
    # inference at the training batch (bs), the size the run's memory was sized for
    batches = [(xv[i:i + bs], yv[i:i + bs]) for i in range(0, len(yv), bs)]
    infer(batches[0][0])  # warm-up at the inference shape
    times = []
    for _ in range(args.infer_reps):
        ts = now()
        # each batch's predictions are kept, not its [T, B, classes] output: holding those small
        # outputs across batches fragmented the heap between the engine's [T·B, N] buffers
        predictions = [infer(x).sum(0).argmax(-1) for x, _ in batches]
        times.append(now() - ts)
    correct = sum(int((p == y).sum()) for p, (_, y) in zip(predictions, batches))
    res = dict(steps=steps, samples=sum(sizes), build_s=t1 - t0, first_step_s=t2 - t1, train_s=t3 - t1,
               cpu_per_wall=(c3 - c1) / (t3 - t1), train_sps=sum(sizes) / (t3 - t1),
               warm_sps=(sum(sizes) - sizes[0]) / (t3 - t2) if steps > 1 else float("nan"),
               infer_sps=len(yv) / statistics.median(times), val_acc=correct / len(yv), rss_train_peak_mb=train_peak)
    if trainer is not None:
        ts = now()
        trainer.evaluate("val")
        res["evaluate_sps"] = len(yv) / (now() - ts)
    return res


def gemm_floor(args, data=None) -> dict:
    """(d) The GEMMs the tutorial workload needs at minimum per batch, forward + backward."""
    B, T, I, H, O = 128, 25, 784, 1000, 10
    g = torch.Generator().manual_seed(0)
    x, w1, g1 = torch.rand(B, I, generator=g), torch.randn(H, I, generator=g), torch.randn(B, H, generator=g)
    s = (torch.rand(T * B, H, generator=g) < 0.1).float()
    w2, g2 = torch.randn(O, H, generator=g), torch.randn(T * B, O, generator=g)
    ops = {"L1 fwd x@W1ᵀ [128,784]x[784,1000]": (x, w1.t()), "L1 dW1 gᵀ@x [1000,128]x[128,784]": (g1.t(), x),
           "L2 fwd s@W2ᵀ [3200,1000]x[1000,10]": (s, w2.t()), "L2 dW2 gᵀ@s [10,3200]x[3200,1000]": (g2.t(), s),
           "L2 dS g@W2 [3200,10]x[10,1000]": (g2, w2)}
    per_op = {}
    for k, (a, b) in ops.items():
        out, ts = torch.empty(a.shape[0], b.shape[1]), []
        for _ in range(5 + args.gemm_iters):  # 5 warm-up calls, then the median of the timed ones
            t = now()
            torch.mm(a, b, out=out)
            ts.append(now() - t)
        per_op[k] = statistics.median(ts[5:])
    total = sum(per_op.values())
    return dict(floor_batch_s=total, floor_sps=B / total, per_op_s=per_op)


def bs_change(args, data) -> dict:
    """(f) Fast path: cold first step; first step of a new Trainer after a batch-size change; after a reset."""
    cfg = workload_cfg("tutorial", "fast")

    def timed_step(tr):
        t = now()
        tr.step()
        return now() - t

    tr = Trainer(cfg, data)
    res = dict(cold_s=timed_step(tr), warm128_s=timed_step(tr))
    tr100 = Trainer(cfg.replace(batch_size=100), data)
    res.update(after_bs_s=timed_step(tr100), warm100_s=timed_step(tr100))
    if callable(getattr(tr, "reset", None)):
        tr.reset()
        res["reset_how"] = "trainer.reset()"
    else:
        tr, res["reset_how"] = Trainer(cfg, data), "new Trainer(same cfg)"
    res["after_reset_s"] = timed_step(tr)
    return res


def worker(args) -> None:
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist5k")
    base, peak_reset = proc_status()["VmRSS"], reset_peak()
    res = {"gemm": gemm_floor, "bschange": bs_change}.get(args.worker, train_bench)(args, data)
    last = proc_status()["VmHWM"]  # since the last reset: the inference phase of train_bench
    peak = max(last, res.get("rss_train_peak_mb", 0))
    res.update(rss_base_mb=base, rss_peak_mb=peak, rss_delta_mb=peak - base, peak_reset=peak_reset,
               threads=torch.get_num_threads())
    if "rss_train_peak_mb" in res:
        res.update(rss_delta_train_mb=res["rss_train_peak_mb"] - base, rss_delta_infer_mb=last - base)
    print(json.dumps(res))


# ---------------------------------------------------------------- orchestration and report
def steps_for(args, workload: str) -> int:
    return args.tutorial_steps if workload == "tutorial" else args.steps if workload else 0


def run_worker(args, kind: str, workload: str = "") -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--threads", str(args.threads),
           "--steps", str(steps_for(args, workload)), "--infer-reps", str(args.infer_reps),
           "--gemm-iters", str(args.gemm_iters)] + (["--workload", workload] if workload else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    t = now()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0 or not proc.stdout.strip():
        print(f"  ! {kind} {workload} failed (rc {proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {workload or kind:9s} {kind:8s} {now() - t:6.1f}s  "
          + ", ".join(f"{k}={v:.4g}" for k, v in res.items() if isinstance(v, float)), file=sys.stderr)
    return res


def fmt(values, scale=1.0, digits=0) -> str:
    """median (min–max) of the reps; one value alone; — when none."""
    vals = [v * scale for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return "—"
    med = f"{statistics.median(vals):.{digits}f}"
    return med if len(vals) == 1 else f"{med} ({min(vals):.{digits}f}–{max(vals):.{digits}f})"


def col(runs, key):
    return [r.get(key) if r else None for r in runs]


def ratio(num, den):  # per rep: the runs are interleaved, so rep i of (b) is paired with rep i of (a)
    return [x / y if x and y else None for x, y in zip(num, den)]


HEAD = ("| variant | train samples/s | warm samples/s | build ms | first batch ms | infer samples/s | evaluate() samples/s "
        "| val acc % | peak RSS MB | ΔRSS train MB | ΔRSS infer MB | train ÷ (a) | infer ÷ (a) | CPU ÷ wall |")
TITLES = {"tutorial": "snntorch tutorial 5 net, preset bench-snntorch-tutorial",
          "rate": "rate-coded input, preset mnist5k-rate with hidden 1000, T 25, batch 128, lr 5e-4",
          "conv": "P1 conv net, preset mnist5k-conv"}
NOTES = (
    "Definitions: *train samples/s* = samples ÷ wall time of all the batches, first included (shuffle and "
    "indexing inside for every variant). *warm* = batches 2..N. *build* = building the model and optimizer "
    "(for the engine: the Trainer, which on a fast CPU engine also loads the compiled kernels once per "
    "process, ~0.4 s, and sets the allocator thresholds of allocator.py). *first batch* = the first step after "
    "building the model/Trainer (cold). *(a2)* = (a) with the engine's allocator setting applied first, to "
    "show how much of the fast path's gain is that setting alone. *infer* = forward only, no_grad, eval mode, the 500 val digits in batches of "
    "the preset's training batch (128; conv 64) for all variants, input encoding included, one warm-up pass then the median pass. "
    "*evaluate()* = Trainer.evaluate('val') (forward + loss + activity stats). *val acc* = argmax_k Σ_t O[t,k] "
    "on that pass (O = output membrane for tutorial/rate, output spikes for conv), one rule for all. *peak RSS* "
    "= VmHWM, reset (clear_refs) once imports and data are loaded: the variant's peak, resident imports "
    "included. *ΔRSS* = the peak of one phase (build + training; then inference + evaluate(), peak reset in "
    "between) − RSS after imports + data load; weights, optimizer state and allocator caches carry over. "
    "*÷ (a)* = samples/s ÷ (a)'s, paired per rep, then median (> 1: faster than snntorch). *time ÷ GEMM floor* "
    "column = (1 ÷ warm samples/s) ÷ (floor time per sample). *CPU ÷ wall* = process CPU time ÷ wall time "
    "over the training batches (well under the thread count: other load, or single-threaded work).\n\n"
    "Caveats: (a) starts from the engine's initial weights and batch order, so on tutorial the three accuracies "
    "should agree closely; its rate inputs come from spikegen.rate (global RNG). conv: snntorch's loop runs "
    "BatchNorm once per time step (25 running-stat updates per batch), the engine once over all T·B (one "
    "update), so after a few batches the engine's eval-mode running stats are still near their init and its val "
    "acc can sit at chance; compare conv accuracy only after ≥ 1 epoch (--steps 0).")


def report(args, res, started, load0) -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    pkg = os.path.join(ROOT, "qsnn_explorer")
    src = hashlib.sha1(b"".join(open(os.path.join(pkg, f), "rb").read()
                                for f in sorted(os.listdir(pkg)) if f.endswith(".py"))).hexdigest()[:10]
    floor = col(res["gemm"], "floor_sps")
    L = [f"# Engine benchmark{' — QUICK development run (1 rep, 5 batches), not a measurement' * args.quick}",
         "", f"- date: {started:%Y-%m-%d %H:%M} UTC",
         f"- machine: {cpu}, {os.cpu_count()} cores, torch.set_num_threads({args.threads}); torch "
         f"{torch.__version__}, snntorch {snn.__version__}, Python {sys.version.split()[0]}",
         f"- load average (1 min) at start / end: {load0} / {open('/proc/loadavg').read().split()[0]}"
         + (" — ⚠ the machine was not idle: timings are unreliable" if float(load0) > 0.5 else ""),
         f"- code: commit {git('rev-parse', '--short', 'HEAD')}, qsnn_explorer/*.py sha1 {src}, uncommitted: "
         f"{git('status', '--porcelain', '--', 'qsnn_explorer').replace(chr(10), '; ') or 'none'}",
         f"- command: `{' '.join(shlex.quote(a) for a in [sys.executable] + sys.argv)}` (cwd {ROOT})",
         f"- {args.reps} interleaved rep(s): {', '.join(VARIANTS)} per rep, each in a fresh process; cells: median (min–max)",
         f"- other processes: {args.note}" if args.note else "", ""]
    for wl in WORKLOADS:
        steps, tut, c = steps_for(args, wl), wl == "tutorial", workload_cfg(wl, "fast")
        L += [f"## {wl}: {TITLES[wl]}, {'one epoch' if steps <= 0 else f'{steps} batches'}", "",
              f"{c.model} {list(c.hidden)}, encoder {c.encoder}, T {c.num_steps}, batch {c.batch_size}, "
              f"{c.optimizer} lr {c.lr}, β {c.beta}, θ {c.threshold}, {c.surrogate} k {c.surrogate_sharpness}, "
              f"loss {c.loss} on {c.readout}, dropout {c.dropout}", "",
              HEAD + (" time ÷ GEMM floor |" if tut else ""), "|" + "---|" * (14 + tut)]
        base = col(res[wl]["a"], "train_sps"), col(res[wl]["a"], "infer_sps")
        for v, name in VARIANTS.items():
            runs = res[wl][v]
            row = [f"({v}) {name}", fmt(col(runs, "train_sps")), fmt(col(runs, "warm_sps")),
                   fmt(col(runs, "build_s"), 1e3), fmt(col(runs, "first_step_s"), 1e3), fmt(col(runs, "infer_sps")),
                   fmt(col(runs, "evaluate_sps")), fmt(col(runs, "val_acc"), 100, 1),
                   fmt(col(runs, "rss_peak_mb")), fmt(col(runs, "rss_delta_train_mb")),
                   fmt(col(runs, "rss_delta_infer_mb")),
                   fmt(ratio(col(runs, "train_sps"), base[0]), digits=2),
                   fmt(ratio(col(runs, "infer_sps"), base[1]), digits=2), fmt(col(runs, "cpu_per_wall"), digits=2)]
            row += [fmt(ratio(floor, col(runs, "warm_sps")), digits=1)] if tut else []
            L.append("| " + " | ".join(row) + " |")
        L.append("")
    L += ["## GEMM floor of the tutorial workload (torch.mm into preallocated out, per batch of 128)", "",
          "| GEMM | ms |", "|---|---|"]
    ops = next((r["per_op_s"] for r in res["gemm"] if r), {})
    L += [f"| {op} | {fmt([r['per_op_s'][op] if r else None for r in res['gemm']], 1e3, 3)} |" for op in ops]
    L += [f"| **total** (= {fmt(floor)} samples/s) | {fmt(col(res['gemm'], 'floor_batch_s'), 1e3, 3)} |", "",
          "## Fast path: first training step after a batch-size change (tutorial preset, ms)", "",
          "| cold first step (batch 128) | warm step (128) | first step, new Trainer batch 100 | warm step (100) "
          "| first step after reset (128) | reset = |", "|---|---|---|---|---|---|",
          "| " + " | ".join(fmt(col(res["bschange"], k), 1e3, 1)
                           for k in ("cold_s", "warm128_s", "after_bs_s", "warm100_s", "after_reset_s"))
          + f" | {next((r['reset_how'] for r in res['bschange'] if r), '—')} |", "", NOTES]
    return "\n".join(L) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions (≥ 3 for a report)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every worker")
    p.add_argument("--steps", type=int, default=10, help="batches for the rate and conv workloads (0: epoch)")
    p.add_argument("--tutorial-steps", type=int, default=0, help="batches for tutorial (0: one epoch)")
    p.add_argument("--infer-reps", type=int, default=3, help="timed inference passes per worker")
    p.add_argument("--gemm-iters", type=int, default=50, help="timed calls per GEMM")
    p.add_argument("--quick", action="store_true", help="development: 1 rep, 5 batches everywhere")
    p.add_argument("--note", default="", help="a line for the report, e.g. how the machine was kept quiet")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "RESULTS.md"), help="report file")
    p.add_argument("--worker", choices=[*VARIANTS, "gemm", "bschange"], help=argparse.SUPPRESS)
    p.add_argument("--workload", choices=WORKLOADS, default="tutorial", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.reps, args.steps, args.tutorial_steps, args.infer_reps, args.gemm_iters = 1, 5, 5, 1, 10
    started, load0 = datetime.datetime.now(datetime.timezone.utc), open("/proc/loadavg").read().split()[0]
    res = {wl: {v: [] for v in VARIANTS} for wl in WORKLOADS} | {"gemm": [], "bschange": []}
    for rep in range(args.reps):
        print(f"rep {rep + 1}/{args.reps}", file=sys.stderr)
        for wl in WORKLOADS:
            for v in VARIANTS:
                res[wl][v].append(run_worker(args, v, wl))
        res["gemm"].append(run_worker(args, "gemm"))
        res["bschange"].append(run_worker(args, "bschange"))
    text = report(args, res, started, load0)
    publish(text, args.out)


if __name__ == "__main__":
    main()
