"""The reference LIF step equals snntorch.Leaky: spikes equal, membrane to 1e-6, gradients to 1e-5."""
import pytest
import snntorch as snn
import torch
from snntorch import surrogate as snn_surrogate

from qsnn_explorer.models import LIFLayer
from qsnn_explorer.neurons import LIFParams, LIFState, initial_state, lif_step
from qsnn_explorer.surrogates import make_surrogate

T, B, N = 30, 8, 40


def run_snntorch(leaky, currents):
    mem = torch.zeros_like(currents[0])
    spikes, mems = [], []
    for cur in currents:
        spk, mem = leaky(cur, mem)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


def currents_pair(seed):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(T, B, N, generator=g) * 0.6 + 0.35
    return base.clone().requires_grad_(), base.clone().requires_grad_()


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate,spike_grad", [
    ("fast_sigmoid", lambda: snn_surrogate.fast_sigmoid(slope=25)),
    ("atan", lambda: snn_surrogate.atan(alpha=2.0)),
])
@pytest.mark.parametrize("learn", [False, True])
def test_lif_layer_equals_snntorch_leaky(reset, surrogate, spike_grad, learn):
    sharp = 25.0 if surrogate == "fast_sigmoid" else 2.0
    ours = LIFLayer(0.9, 1.1, learn_beta=learn, learn_threshold=learn, reset=reset,
                    surrogate=make_surrogate(surrogate, sharpness=sharp))
    ref = snn.Leaky(beta=0.9, threshold=1.1, spike_grad=spike_grad(), reset_mechanism=reset,
                    learn_beta=learn, learn_threshold=learn)
    x_ours, x_ref = currents_pair(1)
    spk_a, mem_a = ours(x_ours)
    spk_b, mem_b = run_snntorch(ref, x_ref)
    assert spk_a.sum() > 50, "the test needs spikes to mean anything"
    assert torch.equal(spk_a, spk_b)
    torch.testing.assert_close(mem_a, mem_b, atol=1e-6, rtol=0)
    weights = torch.randn(T, B, N, generator=torch.Generator().manual_seed(2))
    ((spk_a * weights).sum() + (mem_a * weights).sum()).backward()
    ((spk_b * weights).sum() + (mem_b * weights).sum()).backward()
    assert x_ours.grad.abs().sum() > 0
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    if learn:
        torch.testing.assert_close(ours.beta.grad, ref.beta.grad, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.threshold.grad, ref.threshold.grad, atol=1e-5, rtol=1e-5)


def test_step_function_is_pure_and_resets():
    p = LIFParams(torch.tensor(0.5), torch.tensor(1.0), make_surrogate("fast_sigmoid"))
    state = initial_state(torch.zeros(1))
    spk, state1 = lif_step(torch.tensor([1.5]), state, p)
    assert spk.item() == 1 and state1.mem.item() == 1.5
    assert state.mem.item() == 0  # the input state is untouched
    spk, state2 = lif_step(torch.tensor([0.2]), state1, p)  # 0.5·1.5 + 0.2 − 1.0 = −0.05
    assert spk.item() == 0 and state2.mem.item() == pytest.approx(-0.05)
    zero = LIFParams(torch.tensor(0.5), torch.tensor(1.0), make_surrogate("fast_sigmoid"), reset="zero")
    _, z2 = lif_step(torch.tensor([0.2]), lif_step(torch.tensor([1.5]), state, zero)[1], zero)
    assert z2.mem.item() == pytest.approx(0.2)


def test_reset_is_detached():
    """The gradient of u[t] through the reset term −θ·s[t−1] is zero, as in snntorch."""
    p = LIFParams(torch.tensor(1.0), torch.tensor(1.0), make_surrogate("fast_sigmoid", sharpness=1.0))
    mem0 = torch.tensor([1.2], requires_grad=True)
    spk0 = p.surrogate(mem0 - p.threshold)
    _, state = lif_step(torch.tensor([0.0]), LIFState(mem0, spk0), p)
    (grad,) = torch.autograd.grad(state.mem.sum(), mem0)
    assert grad.item() == pytest.approx(1.0)  # only β·u[t−1] carries gradient


def test_beta_is_clamped():
    p = LIFParams(torch.tensor(1.7), torch.tensor(10.0), make_surrogate("fast_sigmoid"))
    _, state = lif_step(torch.tensor([0.0]), LIFState(torch.ones(1), torch.zeros(1)), p)
    assert state.mem.item() == pytest.approx(1.0)
