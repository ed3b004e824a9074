"""The runner thread: start, step, pause, hot changes, reset, divergence, stop within 1 s."""
import time

import numpy as np
import pytest
import torch

from qsnn_explorer import TrainConfig
from qsnn_explorer.app.runner import Runner, histogram


@pytest.fixture
def runner(wait_for):
    cfg = TrainConfig(dataset="digits8x8", hidden=(32,), num_steps=6, batch_size=64, lr=5e-3,
                      readout="membrane", loss="sum_ce", epochs=2, device="cpu")
    r = Runner(cfg).start()
    assert wait_for(lambda: r.trainer is not None and r.snapshot is not None)
    yield r
    r.stop()


def steps(r):
    return r.trainer.step_count


def test_idle_until_told_then_steps_and_pauses(runner, wait_for):
    time.sleep(0.3)
    assert steps(runner) == 0
    runner.step(3)
    assert wait_for(lambda: steps(runner) == 3)
    time.sleep(0.2)
    assert steps(runner) == 3
    runner.play()
    assert wait_for(lambda: steps(runner) > 20)
    runner.pause()
    time.sleep(0.2)
    frozen = steps(runner)
    time.sleep(0.3)
    assert steps(runner) == frozen


def test_step_epoch_stops_at_the_epoch_boundary_and_evaluates(runner, wait_for):
    runner.step_epoch()
    spe = runner.trainer.steps_per_epoch
    assert wait_for(lambda: steps(runner) == spe)
    time.sleep(0.2)
    assert steps(runner) == spe
    kinds = [getattr(item, "kind", None) for item in runner.frames]
    assert kinds.count("eval") == 1 and kinds.count("step") == spe


def test_hot_change_reaches_the_trainer_and_bad_one_is_reported(runner, wait_for):
    runner.set_hot(weight_bits=4, surrogate="triangular")
    runner.step()
    assert wait_for(lambda: runner.trainer.cfg.weight_bits == 4)
    assert runner.trainer.model.lif_layers[0].surrogate.name == "triangular"
    runner.set_hot(num_steps=50)  # cold: refused by the trainer, reported to the UI
    assert wait_for(lambda: any("cannot change while training" in m for m in runner.messages))


def test_reset_builds_a_new_trainer_and_a_bad_config_keeps_the_old(runner, wait_for):
    old = runner.trainer
    runner.reset(old.cfg.replace(num_steps=4))
    assert wait_for(lambda: runner.trainer is not old and runner.trainer.cfg.num_steps == 4)
    current = runner.trainer
    runner.reset(old.cfg.replace(model="conv", hidden=(16, 16)))  # 8×8 images: too small for 2 convs
    assert wait_for(lambda: any("Could not start" in m for m in runner.messages))
    assert runner.trainer is current


def test_diverging_loss_pauses_with_a_message(runner, wait_for):
    runner.trainer.model.blocks[-1].synapse[-1].bias.data[0] = float("nan")  # runner is idle
    runner.play()
    assert wait_for(lambda: any("paused" in m for m in runner.messages))
    assert not runner.running and runner.alive


def test_stop_ends_the_thread_within_a_second(runner, wait_for):
    runner.play()
    assert wait_for(lambda: steps(runner) > 5)
    start = time.monotonic()
    assert runner.stop(timeout=1.0)
    assert time.monotonic() - start < 1.0 and not runner.alive


def test_histogram_matches_numpy_on_finite_values():
    """The snapshot's weight histogram: numpy's bins and counts (±1 per bin at an edge, float32
    rounding), non-finite weights left out, constant or empty input without error."""
    w = torch.randn(1000, 784, generator=torch.Generator().manual_seed(0)) * 0.05
    counts, edges = histogram(w, bins=60)
    ref_counts, ref_edges = np.histogram(w.numpy(), bins=60)
    assert counts.sum() == w.numel() and np.abs(counts - ref_counts).max() <= 1
    np.testing.assert_allclose(edges, ref_edges, atol=1e-6)
    counts, edges = histogram(torch.tensor([1.0, float("nan"), 2.0, float("inf")]), bins=4)
    assert counts.tolist() == [1, 0, 0, 1] and edges[0] == 1 and edges[-1] == 2
    counts, edges = histogram(torch.full((10,), 0.3), bins=3)
    assert counts.tolist() == [0, 10, 0] and np.allclose(edges, np.histogram(np.full(10, 0.3), bins=3)[1])
    assert histogram(torch.empty(0), bins=3)[0].tolist() == [0, 0, 0]
