"""The fast engine's linear synapse equals F.linear, values and gradients; it frees its input early."""
import weakref

import pytest
import torch
import torch.nn.functional as F

from qsnn_explorer import Trainer, fast_linear
from qsnn_explorer.fast_linear import active_features, linear


def spikes_with_silent_columns(n=50, k=40, silent=15, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, k, generator=g, dtype=torch.float64) < 0.3).double()
    x[:, torch.randperm(k, generator=g)[:silent]] = 0
    return x


def grads(fn, x, weight, bias):
    x, weight = x.clone().requires_grad_(), weight.clone().requires_grad_()
    bias = None if bias is None else bias.clone().requires_grad_()
    y = fn(x, weight, bias)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
    return y, x.grad, weight.grad, None if bias is None else bias.grad


@pytest.mark.parametrize("skip_silent", [True, False])
@pytest.mark.parametrize("with_bias", [True, False])
def test_values_and_gradients_equal_the_plain_linear(with_bias, skip_silent):
    x = spikes_with_silent_columns()
    weight = torch.randn(7, 40, dtype=torch.float64)
    bias = torch.randn(7, dtype=torch.float64) if with_bias else None
    assert len(active_features(x)) <= 25  # the skipping path runs
    fast = grads(lambda *a: linear(*a, skip_silent=skip_silent), x, weight, bias)
    for got, want in zip(fast, grads(F.linear, x, weight, bias)):
        if want is None:
            assert got is None
        else:
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("skip_silent", [True, False])
def test_bool_spikes_give_the_values_and_weight_gradient_of_float_ones(skip_silent):
    x = spikes_with_silent_columns()
    weight = torch.randn(7, 40, dtype=torch.float64, requires_grad=True)
    y = linear(x.bool(), weight, skip_silent=skip_silent)
    torch.testing.assert_close(y, F.linear(x, weight), rtol=1e-12, atol=1e-12)
    y.square().sum().backward()
    want = torch.autograd.grad(F.linear(x, weight).square().sum(), weight)[0]
    torch.testing.assert_close(weight.grad, want, rtol=1e-12, atol=1e-12)


def test_silent_columns_get_zero_weight_gradient_and_all_silent_gives_the_bias():
    x = torch.zeros(5, 8, dtype=torch.float64)
    weight = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64)
    y = linear(x, weight, bias, skip_silent=True)
    torch.testing.assert_close(y, bias.expand(5, 3))
    y.sum().backward()
    assert torch.equal(weight.grad, torch.zeros_like(weight))


def test_negative_and_nan_features_count_as_active():
    x = torch.zeros(4, 6)
    x[1, 2], x[3, 4] = -0.5, float("nan")
    assert active_features(x).tolist() == [2, 4]
    weight = torch.ones(2, 6)
    torch.testing.assert_close(linear(x, weight, skip_silent=True), F.linear(x, weight), equal_nan=True)


def test_the_input_is_freed_before_its_gradient_is_made(monkeypatch):
    weight = torch.randn(3, 6, requires_grad=True)
    x = torch.randn(4, 6, requires_grad=True) * 2  # a non-leaf: only the layer keeps it
    watch = weakref.ref(x)
    y = linear(x, weight)
    del x
    alive_then = []
    original = fast_linear._input_gradient
    monkeypatch.setattr(fast_linear, "_input_gradient",
                        lambda *a: alive_then.append(watch() is not None) or original(*a))
    y.sum().backward()
    assert alive_then == [False]


def test_a_second_backward_and_an_input_changed_in_place_raise():
    weight = torch.randn(3, 6, requires_grad=True)
    y = linear(torch.randn(4, 6), weight)
    y.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="already backpropagated once"):
        y.sum().backward()
    x = torch.randn(4, 6)
    y = linear(x, weight)
    x.add_(1)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()


def test_fast_engine_skips_silent_pixels_of_rate_coded_input(small_cfg, monkeypatch):
    """digits8x8 has pixels that are 0 in every image of a batch: the first layer leaves them out;
    the readout layer takes every hidden neuron."""
    calls = []
    original = fast_linear._Linear.apply
    monkeypatch.setattr(fast_linear._Linear, "apply",
                        lambda *a: calls.append(None if a[3] is None else len(a[3])) or original(*a))
    Trainer(small_cfg.replace(encoder="rate", engine="fast")).step()
    assert len(calls) == 2 and 0 < calls[0] < 64 and calls[1] is None
    calls.clear()
    Trainer(small_cfg.replace(encoder="rate", engine="reference")).step()
    assert not calls
