"""The linear layer that skips silent input features equals F.linear, values and gradients."""
import pytest
import torch
import torch.nn.functional as F

from qsnn_explorer import Trainer, silent_inputs
from qsnn_explorer.silent_inputs import active_features, linear_skipping_silent


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


@pytest.mark.parametrize("with_bias", [True, False])
def test_values_and_gradients_equal_the_plain_linear(with_bias):
    x = spikes_with_silent_columns()
    weight = torch.randn(7, 40, dtype=torch.float64)
    bias = torch.randn(7, dtype=torch.float64) if with_bias else None
    assert len(active_features(x)) <= 25  # the skipping path runs
    for got, want in zip(grads(linear_skipping_silent, x, weight, bias), grads(F.linear, x, weight, bias)):
        if want is None:
            assert got is None
        else:
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_silent_columns_get_zero_weight_gradient_and_all_silent_gives_the_bias():
    x = torch.zeros(5, 8, dtype=torch.float64)
    weight = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64)
    y = linear_skipping_silent(x, weight, bias)
    torch.testing.assert_close(y, bias.expand(5, 3))
    y.sum().backward()
    assert torch.equal(weight.grad, torch.zeros_like(weight))


def test_negative_and_nan_features_count_as_active():
    x = torch.zeros(4, 6)
    x[1, 2], x[3, 4] = -0.5, float("nan")
    assert active_features(x).tolist() == [2, 4]
    weight = torch.ones(2, 6)
    torch.testing.assert_close(linear_skipping_silent(x, weight), F.linear(x, weight), equal_nan=True)


def test_fast_engine_skips_silent_pixels_of_rate_coded_input(small_cfg, monkeypatch):
    """digits8x8 has pixels that are 0 in every image of a batch: the first layer leaves them out."""
    calls = []
    original = silent_inputs._ActiveLinear.apply
    monkeypatch.setattr(silent_inputs._ActiveLinear, "apply",
                        lambda *a: calls.append(len(a[3])) or original(*a))
    Trainer(small_cfg.replace(encoder="rate", engine="fast")).step()
    assert calls and all(0 < n < 64 for n in calls)
    calls.clear()
    Trainer(small_cfg.replace(encoder="rate", engine="reference")).step()
    assert not calls
