"""Sweeps: a grid of TrainConfigs × seeds, one Dask task per run, results in a tidy DataFrame.

    from qsnn_explorer import preset, sweep
    df = sweep(preset("digits8x8-mlp", epochs=2), grid={"surrogate": ["fast_sigmoid", "triangular"],
               "lr": [1e-3, 3e-3]}, seeds=[0, 1, 2], store="results.jsonl")

Scheduling is dask.distributed's: with no ``client`` a ``LocalCluster`` of worker processes
(one thread each) is started and closed again; a ``Client`` or a scheduler address
(``"tcp://host:8786"``) runs the tasks on that cluster instead. Worker processes are spawned and
import the main module again: a script that starts a local cluster needs the usual
``if __name__ == "__main__":`` guard (notebooks and the CLI need nothing). Once the package is
imported, ``qsnn_explorer.sweep`` is the function; import the helpers by name
(``from qsnn_explorer.sweep import run_task``).

Behaviour:

- Every grid name and value is checked with ``TrainConfig.replace`` before anything starts; a bad
  one raises ValueError naming the field and what it allows.
- A task never raises: an exception in training becomes the row's ``error`` (``"Type: message"``);
  a run whose loss became NaN/inf has ``diverged=True`` and an ``error`` saying so. A worker that
  dies is replaced and its task rerun by the scheduler (``distributed.scheduler.allowed-failures``
  times); past that the row gets a ``KilledWorker`` error. The other tasks go on either way.
- Each row is appended to ``store`` (``.jsonl``: one JSON object a line; ``.parquet``: the file is
  rewritten, atomically, after each row) as soon as its task finishes. Rows are keyed by
  :func:`config_hash` (the full config, seed and epochs included). Re-running with the same store
  skips every key already there with a result, diverged runs included (they would diverge again,
  bit for bit); rows with any other error are run again.
- Training is deterministic: a task uses ``threads`` torch threads (default 1, so N workers on N
  cores do not oversubscribe) and gives the same numbers as ``run_task`` in this process.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import os
import tempfile
import uuid
from typing import Any, Callable, Iterable

from .config import TrainConfig

METRICS = ("final_val_accuracy", "best_val_accuracy", "final_val_loss", "spikes_per_sample", "epochs_done",
           "wall_time", "diverged", "error")
STORE_FORMATS = (".jsonl", ".parquet")


# ---------------------------------------------------------------- grid
def expand_grid(base: TrainConfig, grid: dict[str, Iterable] | None,
                seeds: Iterable[int] | None = None) -> list[tuple[dict, TrainConfig]]:
    """Every (varied values, config) of ``grid`` × ``seeds``, in grid order, seeds innermost.

    Raises ValueError, before anything runs, for a name that is not a TrainConfig field, a value
    the field does not allow, a combination the config rejects, or a repeated configuration.
    ``seeds`` defaults to ``[base.seed]``; ``seed`` may not also be a grid name.
    """
    grid = dict(grid or {})
    fields = TrainConfig.fields()
    for name, values in grid.items():
        if name not in fields:
            raise ValueError(f"grid name {name!r} is not a config field; allowed: {', '.join(fields)}")
        if name == "seed":
            raise ValueError("give seeds with seeds=[...], not as a grid name")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ValueError(f"grid {name!r} must be a list of values, got {values!r}")
        grid[name] = list(values)
        if not grid[name]:
            raise ValueError(f"grid {name!r} has no values")
        for value in grid[name]:
            base.replace(**{name: value})  # raises ValueError naming the field and its range/choices
    seeds = [base.seed] if seeds is None else [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    out, seen = [], {}
    for combo in itertools.product(*grid.values()):
        changes = dict(zip(grid, combo))
        try:
            cfg = base.replace(**changes)
        except ValueError as exc:
            raise ValueError(f"grid combination {changes} is not a valid config: {exc}") from None
        params = {n: _plain(getattr(cfg, n)) for n in grid}  # validated form: "1e-3" → 0.001
        for seed in seeds:
            run = cfg.replace(seed=seed)
            key = config_hash(run)
            if key in seen:
                raise ValueError(f"grid gives the same configuration twice: {seen[key]} and {params} "
                                 f"(seed {seed})")
            seen[key] = params
            out.append((params, run))
    return out


def _plain(value: Any) -> Any:
    """A grid value as a table cell: tuples (hidden widths) as "64,64", which TrainConfig reads back."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def config_hash(cfg: TrainConfig) -> str:
    """sha1 of the canonical JSON of the whole config (seed and epochs are fields): the store key."""
    text = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()


# ---------------------------------------------------------------- the task (runs on a worker)
def train_metrics(cfg: TrainConfig) -> dict:
    """Train ``cfg`` for ``cfg.epochs`` epochs (validation after each); the metrics of a row."""
    from .trainer import Trainer

    result = Trainer(cfg).run()
    evals = result.evals
    row = dict(final_val_accuracy=evals[-1].accuracy if evals else None,
               best_val_accuracy=max(e.accuracy for e in evals) if evals else None,
               final_val_loss=evals[-1].loss if evals else None,
               spikes_per_sample=evals[-1].spikes_per_sample if evals else None,
               epochs_done=len(evals), wall_time=result.wall_time, diverged=result.diverged, error=None)
    if result.diverged:
        row["error"] = f"diverged: the loss became {result.frames[-1].loss} at step {result.frames[-1].step}"
    return row


def run_task(config_json: str, params: dict, train: Callable[[TrainConfig], dict] = train_metrics,
             threads: int = 1) -> dict:
    """One row: ``train(config)`` on ``threads`` torch threads; an exception becomes ``error``.

    Top-level and picklable: Dask ships it to worker processes. Also the sequential reference.
    """
    import torch

    cfg = TrainConfig.from_json(config_json)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    metrics = {**dict.fromkeys(METRICS), "diverged": False}  # a custom train may return other keys only
    try:
        metrics.update(train(cfg))
    except Exception as exc:  # recorded, never fatal to the sweep
        metrics["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        torch.set_num_threads(previous)
    return {**params, "seed": cfg.seed, **metrics, "key": config_hash(cfg), "config": config_json}


# ---------------------------------------------------------------- store
def load_store(path: str | os.PathLike) -> list[dict]:
    """Rows of ``path`` (missing file: none); a JSON-lines file cut short mid-line loses that line only."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return []
    if path.endswith(".parquet"):
        import pandas as pd

        df = pd.read_parquet(path)
        return [{k: _cell(v) for k, v in row.items()} for row in df.to_dict("records")]
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _cell(value: Any) -> Any:
    """pandas' missing values back to None; numpy scalars and arrays (list cells) to Python."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    return None if isinstance(value, float) and math.isnan(value) else value


def _plain_json(value: Any) -> Any:
    """numpy values a custom task body may return, as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _finished(row: dict) -> bool:
    """A row that re-running would not change: a result, or a (deterministic) divergence."""
    return row.get("error") is None or bool(row.get("diverged"))


class _Store:
    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else os.fspath(path)
        if self.path is not None and not self.path.endswith(STORE_FORMATS):
            raise ValueError(f"store={self.path!r}: the name must end in {' or '.join(STORE_FORMATS)}")
        self.rows = load_store(self.path) if self.path else []
        self.done = {r["key"]: r for r in self.rows if _finished(r)}

    def append(self, row: dict) -> None:
        if self.path is None:
            return
        self.rows.append(row)
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        if self.path.endswith(".jsonl"):
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, ensure_ascii=False, default=_plain_json) + "\n")
            return
        import pandas as pd

        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".qsnn-sweep-", suffix=".parquet")
        os.close(fd)
        try:
            pd.DataFrame(self.rows).to_parquet(tmp, index=False)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


# ---------------------------------------------------------------- the sweep
def sweep(base_config: TrainConfig, grid: dict[str, Iterable] | None = None, seeds: Iterable[int] | None = None,
          *, epochs: int | None = None, client=None, workers: int | None = None, store=None,
          on_result: Callable[[dict], Any] | None = None, progress: bool = True,
          train: Callable[[TrainConfig], dict] = train_metrics, threads: int = 1, retries: int = 1,
          on_client: Callable[[Any], Any] | None = None):
    """Run ``grid`` × ``seeds`` on Dask; a pandas DataFrame with one row per (config, seed), grid order.

    Columns: the grid names, ``seed``, ``final_val_accuracy``, ``best_val_accuracy``,
    ``final_val_loss``, ``spikes_per_sample`` (hidden spikes per validation sample after the last
    epoch), ``epochs_done``, ``wall_time`` (training seconds), ``diverged``, ``error`` (None when it
    ran), ``key`` (:func:`config_hash`), ``cached`` (True: taken from ``store``, not run).

    epochs: sets ``epochs`` of every config (else the base's). client: None (a LocalCluster of
    ``workers`` processes, default min(CPU cores, tasks), closed at the end), a
    ``distributed.Client``, or a scheduler address. on_result(row): called in this thread for each
    row, stored ones first, then as tasks finish; returning False cancels the tasks not yet done.
    on_client(client): called once the client is up (e.g. to show ``client.dashboard_link``).
    train(cfg) -> metrics: the task body (a top-level function, so workers can unpickle it; its
    own keys become extra columns).
    threads: torch threads per task. retries: Dask retries of a task whose own code failed
    outside ``train`` (a dead worker is handled by the scheduler, see the module docstring).
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    if epochs is not None:
        base_config = base_config.replace(epochs=epochs)
    runs = expand_grid(base_config, grid, seeds)  # raises before any cluster starts
    stored = _Store(store)
    rows: dict[str, dict] = {}
    for params, cfg in runs:
        key = config_hash(cfg)
        if key in stored.done:
            rows[key] = {**stored.done[key], **params, "cached": True}
            if on_result is not None:
                on_result(rows[key])
    todo = [(params, cfg) for params, cfg in runs if config_hash(cfg) not in rows]
    if todo:
        _run(todo, rows, stored, client, workers, on_result, progress, train, threads, retries, on_client)
    return _frame([rows.get(config_hash(cfg)) for _, cfg in runs], list(dict(grid or {})))


def local_cluster(n_workers: int, **kwargs):
    """A dask ``LocalCluster`` of ``n_workers`` one-thread worker processes, leaving this process's
    environment as it was.

    Dask's nannies write their pre-spawn variables (OMP_NUM_THREADS=1, MKL_NUM_THREADS=1,
    MALLOC_TRIM_THRESHOLD_, ...) into this process's ``os.environ`` so that the workers inherit
    them. Left there, every process started from here afterwards (a notebook kernel, a server, a
    subprocess) would train on one thread, with other floating-point results than before. They
    are removed again once the workers are up.
    """
    from distributed import LocalCluster

    with _environ_restored():
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, **kwargs)


@contextlib.contextmanager
def _environ_restored():
    saved = dict(os.environ)
    try:
        yield
    finally:
        if dict(os.environ) != saved:
            os.environ.clear()
            os.environ.update(saved)


def _run(todo, rows, stored, client, workers, on_result, progress, train, threads, retries, on_client):
    with _environ_restored():  # a worker restarted mid-sweep writes the pre-spawn variables again
        _run_tasks(todo, rows, stored, client, workers, on_result, progress, train, threads, retries, on_client)


def _run_tasks(todo, rows, stored, client, workers, on_result, progress, train, threads, retries, on_client):
    from distributed import Client, as_completed
    from tqdm import tqdm

    cluster = own_client = None
    if client is None:
        n = workers or min(os.cpu_count() or 1, len(todo))
        cluster = local_cluster(n, dashboard_address=":0",
                                silence_logs=logging.ERROR)  # no worker-shutdown chatter; errors still show
        client = own_client = Client(cluster)
    elif isinstance(client, str):
        client = own_client = Client(client)
    token = uuid.uuid4().hex[:8]  # one sweep's keys never collide with an earlier sweep's on this cluster
    futures = {}
    bar = tqdm(total=len(todo), unit="run", disable=not progress)
    try:
        if on_client is not None:
            on_client(client)
        for params, cfg in todo:
            key = config_hash(cfg)
            future = client.submit(run_task, cfg.to_json(indent=None), params, train, threads,
                                   key=f"qsnn-sweep-{key[:16]}-{token}", retries=retries, pure=False)
            futures[future] = (params, cfg, key)
        errors = 0
        pending = as_completed(list(futures))
        for future in pending:
            params, cfg, key = futures[future]
            if future.status == "finished":
                row = future.result()
            else:  # the task never returned a row: e.g. KilledWorker after repeated worker deaths
                exc = future.exception()
                row = {**params, "seed": cfg.seed, **dict.fromkeys(METRICS), "diverged": False,
                       "error": f"{type(exc).__name__}: {exc}", "key": key, "config": cfg.to_json(indent=None)}
            future.release()
            stored.append(row)
            rows[key] = {**row, "cached": False}
            errors += row["error"] is not None
            bar.update(1)
            bar.set_postfix(errors=errors)
            if on_result is not None and on_result(rows[key]) is False:
                client.cancel([f for f in futures if not f.done()])
                break
    finally:
        bar.close()
        for f in futures:
            f.release()
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()


def _frame(rows: list[dict | None], names: list[str]):
    """The tidy table: grid names, seed, the metrics (a custom train's own keys after them), key, cached."""
    import pandas as pd

    rows = [r for r in rows if r is not None]
    fixed = [*names, "seed", *METRICS, "key", "cached"]
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in fixed and k != "config"))
    return pd.DataFrame(rows, columns=[*fixed[:-2], *extra, *fixed[-2:]])
