"""Command line: ``qsnn-explorer train | sweep | serve | presets``."""
from __future__ import annotations

import argparse
import json
import sys
import time

from .config import ENGINES, TrainConfig
from .presets import PRESETS, preset


def parse_assignment(text: str) -> tuple[str, object]:
    """'key=value' → (key, value); the value is read as JSON when it parses (1e-3, true, [256,128])."""
    if "=" not in text:
        raise ValueError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def build_config(args: argparse.Namespace) -> TrainConfig:
    overrides = dict(parse_assignment(item) for item in args.set)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.engine is not None:
        overrides["engine"] = args.engine
    if args.device is not None:
        overrides["device"] = args.device
    unknown = set(overrides) - set(TrainConfig.fields())
    if unknown:
        raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
    return preset(args.preset, **overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .trainer import Trainer

    cfg = build_config(args)
    trainer = Trainer(cfg)
    total = cfg.epochs * trainer.steps_per_epoch
    print(f"{args.preset}: {trainer.data.description}; {cfg.model} {list(cfg.hidden)}, T={cfg.num_steps}, "
          f"{cfg.weight_bits}-bit weights, device {trainer.device}, engine {cfg.engine}", file=sys.stderr)
    bar = tqdm(total=total, unit="step", disable=args.quiet)

    def show(item):
        if item.kind == "step":
            bar.update(1)
            bar.set_postfix(loss=f"{item.loss:.3f}", acc=f"{item.accuracy:.3f}", lr=f"{item.lr:.2g}")
        else:
            bar.write(f"epoch {item.epoch:.0f}: val loss {item.loss:.4f}, val accuracy {item.accuracy:.4f}")

    start = time.perf_counter()
    result = trainer.run(callback=show)
    bar.close()
    wall = time.perf_counter() - start
    test = trainer.evaluate("test")
    metrics = {
        "preset": args.preset,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "val_accuracy": result.evals[-1].accuracy if result.evals else None,
        "firing_rate_per_layer": list(test.firing_rates),
        "hidden_spikes_per_sample": test.spikes_per_sample,
        "synops_per_sample": test.synops_per_sample,
        "wall_time_s": wall,
        "train_samples_per_s": result.samples_per_s,
        "steps": trainer.step_count,
        "diverged": result.diverged,
        "config": cfg.to_dict(),
    }
    if result.diverged:
        print("training diverged (loss became NaN/inf): the run stopped early; try a lower lr", file=sys.stderr)
    print(f"test accuracy {test.accuracy:.4f} | test loss {test.loss:.4f} | firing rates "
          f"{', '.join(f'{r:.3f}' for r in test.firing_rates)} | hidden spikes/sample "
          f"{test.spikes_per_sample:.1f} | SynOps/sample {test.synops_per_sample:.3g} | "
          f"{wall:.1f} s, {result.samples_per_s:.0f} samples/s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(metrics, fh, indent=2)
    if args.save:
        trainer.save(args.save)
    return 1 if result.diverged else 0


def split_values(text: str) -> list[str]:
    """'a,b,[64,64]' → ['a', 'b', '[64,64]']: commas inside brackets stay with their value."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text + ","):
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    return [v for v in out if v]


def parse_grid(items: list[str]) -> dict[str, list]:
    """['lr=1e-3,3e-3', 'hidden=[64],[128,64]'] → {'lr': ['1e-3', '3e-3'], 'hidden': [[64], [128, 64]]}.

    Numbers stay text (TrainConfig converts them to the field's type and checks the range);
    true/false become booleans for boolean fields; bracketed lists are read as JSON.
    """
    fields = TrainConfig.fields()
    grid: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--grid expects name=value1,value2,..., got {item!r}")
        name, raw = (part.strip() for part in item.split("=", 1))
        if name not in fields:
            raise ValueError(f"--grid {name!r} is not a config field; allowed: {', '.join(fields)}")
        if name in grid:
            raise ValueError(f"--grid {name!r} is given twice; list all its values in one --grid")
        values = []
        for v in split_values(raw):
            if isinstance(fields[name].default, bool) and v.lower() in ("true", "false"):
                v = v.lower() == "true"
            elif v.startswith("["):
                try:
                    v = json.loads(v)
                except json.JSONDecodeError:
                    raise ValueError(f"--grid {name}: {v!r} is not a JSON list") from None
            values.append(v)
        grid[name] = values
    return grid


def parse_seeds(text: str) -> list[int]:
    """'3' → [0, 1, 2]; '0,5,7' → [0, 5, 7]."""
    try:
        if "," not in text:
            n = int(text)
            if n < 1:
                raise ValueError
            return list(range(n))
        return [int(s) for s in split_values(text)]
    except ValueError:
        raise ValueError(f"--seeds expects a count N ≥ 1 (seeds 0..N−1) or a list like 0,5,7; got {text!r}") from None


def summary_table(df, names: list[str]) -> str:
    """Mean ± std over seeds of each grid cell: final validation accuracy, spikes/sample, errors."""
    lines = []
    header = [*names, "runs", "val acc % (mean ± std)", "best val acc %", "spikes/sample", "errors"]
    groups = df.groupby(names, sort=False, dropna=False) if names else [((), df)]
    for cell, g in groups:
        cell = cell if isinstance(cell, tuple) else (cell,)
        acc = g["final_val_accuracy"].astype(float) * 100
        std = f"{acc.std(ddof=1):.1f}" if acc.count() > 1 else "–"
        lines.append([*(str(c) for c in cell), str(len(g)),
                      f"{acc.mean():.1f} ± {std}" if acc.count() else "–",
                      f"{g['best_val_accuracy'].astype(float).mean() * 100:.1f}" if acc.count() else "–",
                      f"{g['spikes_per_sample'].astype(float).mean():.1f}" if acc.count() else "–",
                      str(int(g["error"].notna().sum()))])
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [header, *lines])


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import sweep

    base = build_config(args)
    grid, seeds = parse_grid(args.grid), parse_seeds(args.seeds)
    df = sweep(base, grid, seeds, client=args.scheduler, workers=args.workers, store=args.out,
               threads=args.threads, progress=not args.quiet,
               on_client=lambda c: print(f"Dask dashboard: {c.dashboard_link}", file=sys.stderr))
    print(summary_table(df, list(grid)))
    cached = int(df["cached"].sum())
    errors = df[df["error"].notna()]
    print(f"{len(df)} runs ({cached} from {args.out}, {len(df) - cached} run now), {len(errors)} with errors"
          + (f"; rows in {args.out}" if args.out else ""))
    for _, row in errors.iterrows():
        cell = ", ".join(f"{n}={row[n]}" for n in grid)
        print(f"  error [{cell}, seed {row['seed']}]: {row['error']}", file=sys.stderr)
    return 1 if len(errors) else 0


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    if args.threads < 0:
        print(f"error: --threads must be ≥ 1 (0: all cores), got {args.threads}", file=sys.stderr)
        return 2
    # Panel's and Bokeh's assets from this server, never their CDN (offline rooms, CI).
    os.environ.setdefault("BOKEH_RESOURCES", "server")
    import panel as pn

    from .app import create_app

    # Training threads re-take the GIL after every torch op; with the default 5 ms switch
    # interval a busy event loop makes each wait up to 5 ms and training crawls.
    sys.setswitchinterval(0.0005)
    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    origins = args.allow_websocket_origin or [f"{args.address}:{args.port}", f"localhost:{args.port}"]
    print(f"qsnn explorer on http://{args.address}:{args.port}/  (Ctrl+C stops it)", file=sys.stderr)
    # Sessions whose page closed are destroyed (and their training thread stopped) within ~1 s.
    pn.serve({"/": create_app}, port=args.port, address=args.address, websocket_origin=origins,
             show=args.show, title="qsnn explorer", threaded=False,
             check_unused_sessions_milliseconds=500, unused_session_lifetime_milliseconds=500)
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    width = max(map(len, PRESETS))
    for name, p in PRESETS.items():
        print(f"{name:<{width}}  {p.description}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qsnn-explorer", description="Train and explore spiking networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train headless and print the final metrics")
    train.add_argument("--preset", default="mnist5k-mlp", help="a name from `qsnn-explorer presets`")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. --set weight_bits=4 --set hidden=[256,128]")
    train.add_argument("--epochs", type=int, help="epochs to train (default: the preset's)")
    train.add_argument("--engine", choices=ENGINES,
                       help="fast (default: fused kernels) or reference (the plain lif_step loop)")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"))
    train.add_argument("--json", metavar="PATH", help="write the final metrics and config as JSON")
    train.add_argument("--save", metavar="PATH", help="save weights with the config inside")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)
    sw = sub.add_parser("sweep", help="train a grid of configs × seeds on a Dask cluster (local by default)",
                        description="One Dask task per (config, seed); results stream into --out. Re-running with "
                                    "the same --out skips finished runs. Exit status 1 when any run failed.")
    sw.add_argument("--preset", default="digits8x8-mlp", help="the base config (a name from `qsnn-explorer presets`)")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a base config field")
    sw.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                    help="a field and its values, repeatable: --grid surrogate=fast_sigmoid,triangular "
                         "--grid lr=1e-3,3e-3 (hidden: --grid hidden=[64],[128,64])")
    sw.add_argument("--seeds", default="1", help="N (seeds 0..N-1) or a list 0,5,7 (default 1)")
    sw.add_argument("--epochs", type=int, help="epochs per run (default: the preset's)")
    sw.add_argument("--engine", choices=ENGINES)
    sw.add_argument("--device", choices=("auto", "cpu", "cuda"))
    sw.add_argument("--out", metavar="PATH", help="results store, .jsonl or .parquet (appended as runs finish)")
    sw.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://host:8786 "
                    "(default: a local cluster of worker processes)")
    sw.add_argument("--workers", type=int, help="local worker processes (default: min(CPU cores, runs))")
    sw.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=cmd_sweep)
    serve = sub.add_parser("serve", help="serve the live explorer (one engine per browser session)")
    serve.add_argument("--port", type=int, default=5006)
    serve.add_argument("--address", default="127.0.0.1", help="interface to listen on (0.0.0.0: all)")
    serve.add_argument("--allow-websocket-origin", action="append", metavar="HOST[:PORT]",
                       help="allowed browser origin, repeatable (default: the address and localhost)")
    serve.add_argument("--show", action="store_true", help="open a browser tab")
    serve.add_argument("--threads", type=int, default=0, metavar="N",
                       help="torch threads for training (default: all cores; training runs at a lower "
                            "priority, so the server and a browser on the same machine get a core when "
                            "they need one)")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("presets", help="list presets, one line each").set_defaults(func=cmd_presets)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # bad preset, field or value: say which, no traceback
        print(f"qsnn-explorer: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
