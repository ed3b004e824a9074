"""Sweeps on a LocalCluster of 2 worker processes: the same numbers as sequential runs, resume,
a worker killed mid-sweep, a raising task, clear grid errors, both stores, and the CLI."""
import functools
import json
import math
import os
import sys

import cloudpickle
import distributed
import pandas as pd
import pytest

from qsnn_explorer import preset
from qsnn_explorer.cli import main, parse_grid, parse_seeds, split_values
from qsnn_explorer.sweep import (config_hash, expand_grid, load_store, local_cluster, run_task, sweep,
                                 train_metrics)

# Workers are separate processes that cannot import this test file: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

BASE = preset("digits8x8-mlp", hidden=(16,), num_steps=4, batch_size=64, epochs=1, device="cpu")
METRIC_COLUMNS = ["final_val_accuracy", "best_val_accuracy", "final_val_loss", "spikes_per_sample",
                  "epochs_done", "diverged", "error"]


@pytest.fixture(scope="module")
def client():
    environ = dict(os.environ)
    cluster = local_cluster(2, dashboard_address=None)
    # Dask's nannies put OMP_NUM_THREADS=1 etc. into os.environ; left there, every later
    # subprocess of this test session (notebook kernels!) would train on one thread.
    assert dict(os.environ) == environ
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def fails_at_high_lr(cfg):
    """A task body that raises for one grid cell (stands in for any training failure)."""
    if cfg.lr > 2e-3:
        raise RuntimeError(f"boom at lr={cfg.lr}")
    return train_metrics(cfg)


def dies_once(marker, cfg):
    """The first task to get here kills its own worker process; every later one trains."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return train_metrics(cfg)
    os._exit(1)


# ---------------------------------------------------------------- before anything runs
@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if a cluster or client is created."""
    def forbidden(*a, **k):
        raise AssertionError("a cluster was started")
    monkeypatch.setattr(distributed, "LocalCluster", forbidden)
    monkeypatch.setattr(distributed, "Client", forbidden)


@pytest.mark.parametrize("grid, message", [
    ({"colour": ["red"]}, "grid name 'colour' is not a config field; allowed: dataset"),
    ({"lr": [1e-3, 2.0]}, "lr=2.0 is out of range; allowed: [1e-06, 1.0]"),
    ({"surrogate": ["fast_sigmoid", "spiky"]}, "surrogate='spiky' is not allowed; allowed: fast_sigmoid, atan"),
    ({"lr": []}, "grid 'lr' has no values"),
    ({"surrogate": "triangular"}, "must be a list of values"),
    ({"seed": [1, 2]}, "seeds=[...]"),
    ({"lr": [1e-3, "0.001"]}, "the same configuration twice"),
])
def test_bad_grid_is_a_clear_error_before_any_cluster(no_cluster, tmp_path, grid, message):
    with pytest.raises(ValueError) as err:
        sweep(BASE, grid, seeds=[0], store=tmp_path / "s.jsonl")
    assert message in str(err.value)
    assert not (tmp_path / "s.jsonl").exists()


def test_bad_combination_and_store_name_are_errors_before_any_cluster(no_cluster):
    with pytest.raises(ValueError, match="grid combination .*adali_window_min=1.0 must be ≤ adali_window_max=0.5"):
        sweep(BASE, {"adali_window_min": [0.2, 1.0], "adali_window_max": [0.5]}, seeds=[0])
    with pytest.raises(ValueError, match=r"must end in \.jsonl or \.parquet"):
        sweep(BASE, {"lr": [1e-3]}, store="results.csv")


def test_expand_grid_order_values_and_hash():
    runs = expand_grid(BASE, {"surrogate": ["triangular", "atan"], "lr": ["1e-3", 3e-3]}, seeds=[0, 7])
    assert [(p["surrogate"], p["lr"], c.seed) for p, c in runs][:3] == [
        ("triangular", 0.001, 0), ("triangular", 0.001, 7), ("triangular", 0.003, 0)]
    assert len(runs) == 8 and len({config_hash(c) for _, c in runs}) == 8
    assert config_hash(BASE) == config_hash(preset("digits8x8-mlp", hidden=[16], num_steps=4, batch_size=64,
                                                   epochs=1, device="cpu"))
    assert config_hash(BASE) != config_hash(BASE.replace(epochs=2))
    assert expand_grid(BASE, {"hidden": [[8], "8,8"]})[1][0] == {"hidden": "8,8"}


# ---------------------------------------------------------------- on the cluster
def test_results_equal_sequential_runs(client):
    grid = {"surrogate": ["fast_sigmoid", "triangular"], "lr": [1e-3, 3e-3]}
    seen = []
    df = sweep(BASE, grid, seeds=[0, 1], client=client, progress=False, on_result=seen.append)
    runs = expand_grid(BASE, grid, [0, 1])
    sequential = [run_task(cfg.to_json(), params) for params, cfg in runs]
    assert len(df) == len(seen) == 8 and not df["cached"].any()
    assert list(df["key"]) == [config_hash(cfg) for _, cfg in runs]  # grid order, not finishing order
    for (_, row), seq in zip(df.iterrows(), sequential):
        assert pd.isna(row["error"]) and row["epochs_done"] == 1
        for col in METRIC_COLUMNS:
            assert row[col] == seq[col], col  # exact: same seed, same numbers
    # the grid really changes the runs, and seeds differ
    assert df["final_val_loss"].nunique() == 8


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_resume_skips_finished_runs_and_retries_errors(client, tmp_path, suffix):
    store = tmp_path / f"results{suffix}"
    first = sweep(BASE, {"lr": [1e-3]}, seeds=[0, 1], client=client, store=store, progress=False)
    stored = load_store(store)
    assert sorted(r["key"] for r in stored) == sorted(first["key"]) and all(r["error"] is None for r in stored)
    assert json.loads(stored[0]["config"])["lr"] == 1e-3

    seen = []
    second = sweep(BASE, {"lr": [1e-3, 3e-3]}, seeds=[0, 1], client=client, store=store, progress=False,
                   on_result=seen.append)
    ran = [r for r in seen if not r["cached"]]
    assert len(seen) == 4 and len(ran) == 2 and {r["lr"] for r in ran} == {3e-3}
    assert list(second["cached"]) == [True, True, False, False]
    for col in METRIC_COLUMNS:  # cached rows come back as they were stored
        assert list(second[col][:2]) == list(first[col]), col
    assert len(load_store(store)) == 4

    # an errored row is run again; a third call runs nothing
    failed = sweep(BASE, {"lr": [1e-2]}, seeds=[0], client=client, store=store, progress=False,
                   train=fails_at_high_lr)
    assert failed["error"][0].startswith("RuntimeError: boom")
    again = sweep(BASE, {"lr": [1e-2]}, seeds=[0], client=client, store=store, progress=False)
    assert not again["cached"][0] and pd.isna(again["error"][0])
    assert sweep(BASE, {"lr": [1e-3, 3e-3, 1e-2]}, seeds=[0, 1], client=client, store=store,
                 progress=False, train=fails_at_high_lr).loc[[0, 1, 2, 3, 4], "cached"].all()


def test_a_raising_task_is_recorded_not_fatal(client, tmp_path):
    df = sweep(BASE, {"lr": [1e-3, 3e-3]}, seeds=[0], client=client, train=fails_at_high_lr,
               store=tmp_path / "s.jsonl", progress=False)
    ok, bad = df.iloc[0], df.iloc[1]
    assert pd.isna(ok["error"]) and 0 < ok["final_val_accuracy"] <= 1
    assert bad["error"] == "RuntimeError: boom at lr=0.003" and not bad["diverged"]
    assert pd.isna(bad["final_val_accuracy"])
    assert [r["error"] for r in load_store(tmp_path / "s.jsonl")].count(None) == 1


def seed_only(cfg):
    """A task body with its own metrics (numpy ones too) and no training."""
    import numpy as np
    return {"twice_the_seed": np.int64(2 * cfg.seed), "curve": [0.5, 0.25 * cfg.seed]}


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_custom_task_body_adds_its_own_columns(client, tmp_path, suffix):
    store = tmp_path / f"s{suffix}"
    df = sweep(BASE, {"lr": [1e-3]}, seeds=[3, 4], client=client, train=seed_only, progress=False, store=store)
    assert list(df["twice_the_seed"]) == [6, 8] and df["error"].isna().all() and not df["diverged"].any()
    assert list(df.columns[-4:]) == ["twice_the_seed", "curve", "key", "cached"]
    again = sweep(BASE, {"lr": [1e-3]}, seeds=[3, 4], client=client, train=seed_only, progress=False, store=store)
    assert again["cached"].all() and list(again["curve"]) == [[0.5, 0.75], [0.5, 1.0]]
    assert list(again["twice_the_seed"]) == [6, 8]


def test_a_worker_killed_mid_sweep_does_not_lose_the_sweep(client, tmp_path):
    marker = str(tmp_path / "killed")
    df = sweep(BASE, {"lr": [1e-3, 3e-3]}, seeds=[0, 1], client=client, progress=False,
               train=functools.partial(dies_once, marker))
    assert os.path.exists(marker)  # one worker process did die
    assert len(df) == 4 and df["error"].isna().all() and (df["epochs_done"] == 1).all()
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_diverged_run_is_an_error_row(monkeypatch):
    from qsnn_explorer.trainer import Frame, RunResult, Trainer

    def diverging_run(self, *a, **k):
        frame = Frame(step=3, epoch=0.1, loss=math.nan, accuracy=0.1, lr=1.0, sparsity_weight=0.0,
                      firing_rates=(0.0, 0.0), spikes_per_sample=0.0, synops_per_sample=0.0, step_time=0.1,
                      samples_per_s=1.0, diverged=True)
        return RunResult(self.cfg, frames=[frame], diverged=True)

    monkeypatch.setattr(Trainer, "run", diverging_run)
    row = run_task(BASE.to_json(), {"lr": 5e-3})
    assert row["diverged"] and row["error"] == "diverged: the loss became nan at step 3"
    assert row["epochs_done"] == 0 and row["final_val_accuracy"] is None and row["lr"] == 5e-3


def test_on_result_false_stops_the_sweep(client):
    df = sweep(BASE, {"lr": [1e-3, 2e-3, 3e-3, 4e-3]}, seeds=[0], client=client, progress=False,
               on_result=lambda row: False)
    assert len(df) == 1


# ---------------------------------------------------------------- CLI
def test_cli_grid_parsing():
    assert split_values("a, b,[64,64],[8]") == ["a", "b", "[64,64]", "[8]"]
    assert parse_grid(["surrogate=fast_sigmoid,triangular", "lr=1e-3,3e-3", "hidden=[64],[128,64]",
                       "learn_beta=true,false"]) == {
        "surrogate": ["fast_sigmoid", "triangular"], "lr": ["1e-3", "3e-3"], "hidden": [[64], [128, 64]],
        "learn_beta": [True, False]}
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("0,5,7") == [0, 5, 7]
    for bad in ("0", "x", "1,b"):
        with pytest.raises(ValueError, match="--seeds expects"):
            parse_seeds(bad)
    with pytest.raises(ValueError, match="given twice"):
        parse_grid(["lr=1e-3", "lr=3e-3"])


def test_cli_bad_grid_exits_2_before_running(no_cluster, capsys):
    assert main(["sweep", "--preset", "digits8x8-mlp", "--grid", "colour=red,blue"]) == 2
    assert "--grid 'colour' is not a config field; allowed: dataset" in capsys.readouterr().err
    assert main(["sweep", "--preset", "digits8x8-mlp", "--grid", "lr=1e-3,7"]) == 2
    assert "lr=7.0 is out of range" in capsys.readouterr().err
    assert main(["sweep", "--grid", "lr=1e-3", "--out", "r.csv"]) == 2
    assert "must end in .jsonl or .parquet" in capsys.readouterr().err


def test_cli_sweep_on_a_scheduler_address(client, tmp_path, capsys):
    out = tmp_path / "results.parquet"
    args = ["sweep", "--preset", "digits8x8-mlp", "--set", "hidden=[16]", "--set", "num_steps=4",
            "--set", "device=cpu", "--set", "batch_size=64", "--grid", "surrogate=fast_sigmoid,triangular",
            "--seeds", "2", "--epochs", "1", "--out", str(out), "--quiet",
            "--scheduler", client.scheduler.address]
    assert main(args) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[:3] == ["surrogate", "runs", "val"]
    assert lines[1].split()[:2] == ["fast_sigmoid", "2"] and lines[2].split()[:2] == ["triangular", "2"]
    assert "4 runs (0 from" in lines[-1] and "Dask dashboard:" in captured.err
    assert len(load_store(out)) == 4
    assert main(args) == 0  # resumed: nothing left to run
    assert "4 runs (4 from" in capsys.readouterr().out


def test_a_sweep_leaves_this_processs_environment_alone():
    """Its own LocalCluster's nannies must not leave OMP_NUM_THREADS=1 etc. behind."""
    environ = dict(os.environ)
    df = sweep(BASE, {"lr": [1e-3]}, seeds=[0], workers=1, progress=False)
    assert df["error"].isna().all()
    assert dict(os.environ) == environ
