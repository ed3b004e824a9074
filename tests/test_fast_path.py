"""The fast path equals the reference: spikes identical, membrane to 1e-6, gradients to 1e-5."""
import subprocess
import sys

import pytest
import torch

from qsnn_explorer import Trainer
from qsnn_explorer.fused import fused_lif
from qsnn_explorer.neurons import LIFParams, lif_sequence
from qsnn_explorer.surrogates import make_surrogate, surrogate_names

T, B, N = 20, 6, 30


def grads_of(fn, currents, beta, threshold, weights):
    currents = currents.clone().requires_grad_()
    beta = beta.clone().requires_grad_()
    threshold = threshold.clone().requires_grad_()
    spikes, mems = fn(currents, beta, threshold)
    ((spikes * weights[0]).sum() + (mems * weights[1]).sum()).backward()
    return spikes, mems, currents.grad, beta.grad, threshold.grad


@pytest.mark.parametrize("surrogate", surrogate_names())
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("mem_bits,compiled", [(32, True), (32, False), (6, False)])
@pytest.mark.parametrize("static", [False, True])
def test_fused_lif_equals_reference(surrogate, reset, mem_bits, compiled, static):
    """Both fused implementations (numba kernels; torch ops, as on CUDA) against lif_step."""
    g = torch.Generator().manual_seed(0)
    currents = torch.randn(T, B, N, generator=g, dtype=torch.float64) * 0.7 + 0.4
    if static:
        currents = currents[0]
    weights = torch.randn(2, T, B, N, generator=g, dtype=torch.float64)
    beta, threshold = torch.tensor(0.85, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    sur = make_surrogate(surrogate, sharpness=2.0)

    def reference(c, b, th):
        c = c.expand(T, B, N) if static else c
        return lif_sequence(c, LIFParams(b.clamp(0, 1), th, sur, reset, mem_bits))

    def fast(c, b, th):
        return fused_lif(c, b, th, sur, reset, mem_bits, steps=T if static else None, compiled=compiled)

    ref, got = grads_of(reference, currents, beta, threshold, weights), grads_of(fast, currents, beta, threshold, weights)
    assert ref[0].sum() > 100
    assert torch.equal(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1], atol=1e-6, rtol=0)
    for a, b in zip(got[2:], ref[2:]):
        assert b.abs().sum() > 0
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("surrogate", surrogate_names())
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("reuse", [False, True])
def test_recomputed_membranes_give_the_reference_gradient(surrogate, reset, static, reuse):
    """keep_mems=False: no membranes stored; the backward recomputes them and must still be exact,
    also when it writes the gradient over the stored currents (``reuse_currents``)."""
    g = torch.Generator().manual_seed(1)
    currents = torch.randn(T, B, N, generator=g) * 0.7 + 0.4
    currents = (currents[0] if static else currents).requires_grad_()
    weights = torch.randn(T, B, N, generator=g)
    beta, threshold = torch.tensor(0.85), torch.tensor(1.0)
    sur = make_surrogate(surrogate, sharpness=2.0)
    given = currents * 1 if reuse else currents  # reuse: a buffer no one else holds, as a layer's own
    spikes, mems = fused_lif(given, beta, threshold, sur, reset, steps=T if static else None, keep_mems=False,
                             reuse_currents=reuse)
    assert mems is None
    (spikes * weights).sum().backward()
    reference = currents.detach().clone().requires_grad_()
    ref_spikes, _ = lif_sequence(reference.expand(T, B, N) if static else reference,
                                 LIFParams(beta, threshold, sur, reset))
    (ref_spikes * weights).sum().backward()
    assert ref_spikes.sum() > 100 and reference.grad.abs().sum() > 0
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(currents.grad, reference.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_inference_spikes_written_over_the_currents_are_the_same_spikes(reset):
    currents = torch.randn(T, B, N) * 0.7 + 0.4
    args = (torch.tensor(0.9), torch.tensor(1.0), make_surrogate("atan"), reset)
    with torch.no_grad():
        want, _ = fused_lif(currents, *args, keep_mems=False)
        given = currents.clone()
        got, mems = fused_lif(given, *args, keep_mems=False, reuse_currents=True)
    assert mems is None and want.sum() > 100 and torch.equal(got, want)
    assert got.data_ptr() == given.data_ptr()  # one buffer for both


def test_a_second_backward_through_reused_currents_raises():
    currents = torch.randn(T, B, N, requires_grad=True)
    spikes, _ = fused_lif(currents * 1, torch.tensor(0.9), torch.tensor(1.0), make_surrogate("atan"),
                          keep_mems=False, reuse_currents=True)
    spikes.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="overwritten by its first backward"):
        spikes.sum().backward()


@pytest.mark.parametrize("compiled", [True, False])
def test_fused_handles_unused_outputs_and_float32(compiled):
    currents = torch.randn(T, B, N, requires_grad=True)
    args = (torch.tensor(0.9), torch.tensor(1.0), make_surrogate("atan"))
    spikes, mems = fused_lif(currents, *args, compiled=compiled)
    spikes.sum().backward()
    assert currents.grad is not None and torch.isfinite(currents.grad).all()
    with torch.no_grad():
        s2, m2 = fused_lif(currents, *args, compiled=compiled)
        s3, m3 = lif_sequence(currents, LIFParams(args[0], args[1], args[2]))
    assert torch.equal(s2, spikes) and torch.equal(s3, spikes)  # float32 too: same rounding as lif_step
    assert torch.equal(m3, m2)


CASES = [
    dict(),
    dict(weight_bits=4, readout="spikes", loss="count_mse", surrogate="q_pseudospike", surrogate_sharpness=1.5),
    dict(encoder="rate", reset="zero", learn_beta=True, learn_threshold=True, surrogate="gaussian",
         surrogate_sharpness=1.0),
    dict(encoder="latency", readout="current", loss="tet", tet_lambda=0.1, weight_bits=2, hidden=(24, 16)),
    dict(model="recurrent", encoder="rows", readout="current", loss="sdt", learn_beta=True),
    dict(model="conv", dataset="mnist5k", hidden=(4, 6), train_fraction=0.02, batch_size=16, mem_bits=8,
         readout="spikes", loss="count_mse", surrogate="adali"),
    dict(dataset="events_mnist", hidden=(16,), num_steps=5, train_fraction=0.02, batch_size=16,
         sparsity_weight=0.5, weight_bits=3),
]


@pytest.mark.parametrize("overrides", CASES)
def test_fast_engine_trains_like_reference(small_cfg, overrides):
    """Whole training steps in float64: same losses, spikes and parameter updates on both engines."""
    cfg = small_cfg.replace(**overrides)
    trainers = {e: Trainer(cfg.replace(engine=e)) for e in ("reference", "fast")}
    for trainer in trainers.values():
        trainer.model.double()  # float64: no spike can flip on a last-bit difference
    losses = {e: [t.step().loss for _ in range(3)] for e, t in trainers.items()}
    assert losses["fast"] == pytest.approx(losses["reference"], rel=1e-6, abs=1e-8)
    ref, fast = (dict(t.model.named_parameters()) for t in trainers.values())
    for name in ref:
        torch.testing.assert_close(fast[name], ref[name], atol=1e-6, rtol=1e-5, msg=name)
    # Forward equality on identical weights (a quantizer turns any rounding difference in
    # the trained weights into a whole grid step, so probes are compared on the same weights).
    trainers["fast"].model.load_state_dict(trainers["reference"].model.state_dict())
    probes = [t.probe(0) for t in trainers.values()]
    for a, b in zip(probes[0].layers, probes[1].layers):
        assert torch.equal(a.spikes, b.spikes)
        torch.testing.assert_close(a.mem, b.mem, atol=1e-6, rtol=0)


def test_the_kernels_keep_the_callers_torch_thread_count():
    """numba's OpenMP pool, launched by the first kernel call, must not undo torch.set_num_threads."""
    program = ("import torch; torch.set_num_threads(1)\n"
               "from qsnn_explorer.fused import fused_lif\n"
               "from qsnn_explorer.surrogates import make_surrogate\n"
               "fused_lif(torch.rand(3, 2, 4), torch.tensor(0.9), torch.tensor(1.0), make_surrogate('atan'))\n"
               "a = torch.get_num_threads()\n"
               "from qsnn_explorer import Trainer, preset\n"
               "Trainer(preset('digits8x8-mlp'))\n"
               "print(a, torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]


def test_conv_in_time_chunks_equals_one_call_batch_norm_included(monkeypatch):
    """The fast engine convolves a few steps at a time; batch norm still pools all T·B maps."""
    from torch import nn

    from qsnn_explorer import models

    torch.manual_seed(0)
    synapse = nn.Sequential(models.QuantConv2d(2, 4, 3), nn.AvgPool2d(2), nn.BatchNorm2d(4)).double()
    block = models.Block(synapse, None)
    monkeypatch.setattr(models, "CONV_CHUNK_SAMPLES", 6)  # batch 3: chunks of 2, 2 and 1 steps
    x = torch.rand(5, 3, 2, 8, 8, dtype=torch.float64)
    results = []
    for chunked in (True, False):
        synapse[2].reset_running_stats()
        xi = x.clone().requires_grad_()
        out = block._conv_in_chunks(xi) if chunked else synapse(xi.flatten(0, 1)).unflatten(0, (5, 3))
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        results.append((out.detach(), xi.grad, synapse[0].weight.grad.clone(), synapse[2].running_var.clone()))
        synapse.zero_grad()
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
