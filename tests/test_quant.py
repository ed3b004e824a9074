"""Tests for qsnn_explorer.quant: weight fake-quantization (P1) and membrane quantization."""

import pytest
import torch

from qsnn_explorer.quant import quantization_levels, quantize_membrane, quantize_weight

DTYPES = [torch.float32, torch.float64]


def weights(dtype=torch.float32, n=4000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (0.3 * torch.randn(n, generator=gen)).to(dtype)


def reference(w, bits):
    """P1's formula written out in the plainest way."""
    q_max = 2 ** (bits - 1) - 1
    scale = w.abs().max() / q_max
    return torch.clamp(torch.round(w / scale), -q_max, q_max) * scale, scale


@pytest.mark.parametrize("dtype", DTYPES)
def test_4bit_gives_integer_codes_in_narrow_range(dtype):
    w = weights(dtype).reshape(40, 100)
    out = quantize_weight(w, 4)
    assert out.dtype == dtype and out.shape == w.shape
    scale = w.abs().max() / 7
    codes = torch.round(out / scale)
    assert torch.equal(out, codes * scale)
    assert codes.min() >= -7 and codes.max() <= 7
    assert torch.unique(out).numel() <= 15
    expected, _ = reference(w, 4)
    assert torch.equal(out, expected)
    i = w.abs().argmax()
    assert out.flatten()[i] == torch.sign(w.flatten()[i]) * 7 * scale
    # the negative extreme maps to -q_max too
    w2 = w.clone()
    w2.flatten()[0] = -2 * w.abs().max()
    assert torch.round(quantize_weight(w2, 4).flatten()[0] / (w2.abs().max() / 7)) == -7


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_round_half_to_even(dtype):
    w = torch.tensor([7.0, 0.5, 1.5, 2.5, 3.5, -0.5, -2.5, 6.5], dtype=dtype)  # scale = 1
    expected = torch.tensor([7.0, 0.0, 2.0, 2.0, 4.0, 0.0, -2.0, 6.0], dtype=dtype)
    assert torch.equal(quantize_weight(w, 4), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
def test_error_at_most_half_a_step(bits, dtype):
    w = weights(dtype, seed=bits)
    out = quantize_weight(w, bits)
    expected, scale = reference(w, bits)
    assert torch.equal(out, expected)
    eps = 4 * torch.finfo(dtype).eps * w.abs().max()
    assert (out - w).abs().max() <= scale / 2 + eps
    assert torch.unique(out).numel() <= 2 ** bits - 1


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 32])
def test_gradient_is_straight_through(bits):
    w = weights().requires_grad_()
    quantize_weight(w, bits).sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    # a non-uniform upstream gradient passes unchanged too
    w.grad = None
    upstream = weights(seed=9)
    quantize_weight(w, bits).backward(upstream)
    assert torch.equal(w.grad, upstream)


def test_32_bits_is_identity():
    w = weights()
    assert quantize_weight(w, 32) is w
    assert quantization_levels(w, 32).numel() == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_1bit_is_sign_times_mean_abs(dtype):
    w = weights(dtype)
    w[:5] = 0.0
    out = quantize_weight(w, 1)
    m = w.abs().mean()
    assert torch.equal(out, torch.where(w >= 0, m, -m))
    assert (out[:5] == m).all()  # sign(0) = +1
    assert torch.unique(out).numel() == 2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_levels_agree_with_outputs(bits, dtype):
    w = weights(dtype, seed=bits)
    levels = quantization_levels(w, bits)
    n = 2 if bits == 1 else 2 ** bits - 1
    assert levels.numel() == n and levels.dtype == dtype
    assert torch.all(levels[1:] > levels[:-1])
    assert torch.isin(quantize_weight(w, bits), levels).all()
    # a ramp hits every level, so the outputs' distinct values are exactly the levels
    ramp = torch.linspace(-1, 1, 10_001, dtype=dtype)
    assert torch.equal(torch.unique(quantize_weight(ramp, bits)), quantization_levels(ramp, bits))


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 32])
def test_zero_tensor_stays_zero(bits):
    w = torch.zeros(3, 4, requires_grad=True)
    out = quantize_weight(w, bits)
    assert torch.equal(out, torch.zeros(3, 4))
    out.sum().backward()
    assert torch.equal(w.grad, torch.ones(3, 4))
    if bits != 32:
        assert torch.equal(quantization_levels(w, bits), torch.zeros(1))


@pytest.mark.parametrize("bits", [0, -1, 9, 16, 31, 33, 64, 4.0, True])
def test_bad_weight_bits(bits):
    with pytest.raises(ValueError, match="weight_bits must be 1–8 or 32"):
        quantize_weight(weights(), bits)
    with pytest.raises(ValueError, match="weight_bits"):
        quantization_levels(weights(), bits)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", [2, 4, 8, 16])
@pytest.mark.parametrize("theta", [1.0, 2.5])
def test_membrane_on_grid_clamped_and_nearest(bits, theta, dtype):
    u = torch.linspace(-3 * theta, 3 * theta, 5001, dtype=dtype)
    out = quantize_membrane(u, bits, theta)
    assert out.dtype == dtype
    q_max = 2 ** (bits - 1) - 1
    step = 2 * theta / q_max
    codes = out / step
    tol = 1e-3 if bits == 16 and dtype == torch.float32 else 1e-6
    assert torch.allclose(codes, codes.round(), atol=tol)
    assert codes.round().min() == -q_max and codes.round().max() == q_max
    assert out.min() >= -2 * theta and out.max() <= 2 * theta
    assert torch.allclose(out[u >= 2 * theta], torch.tensor(2 * theta, dtype=dtype))
    assert torch.allclose(out[u <= -2 * theta], torch.tensor(-2 * theta, dtype=dtype))
    eps = 8 * torch.finfo(dtype).eps * theta
    assert ((out - u.clamp(-2 * theta, 2 * theta)).abs() <= step / 2 + eps).all()
    if bits <= 8:
        assert torch.unique(out).numel() <= 2 * q_max + 1


def test_membrane_rest_is_exactly_zero():
    """Zero is a level: a resting membrane is not pushed to ±Δ/2 by rounding noise."""
    u = torch.tensor([0.0, 1e-12, -1e-12], dtype=torch.float64)
    assert torch.equal(quantize_membrane(u, 4, 1.0), torch.zeros(3, dtype=torch.float64))


def test_membrane_gradient_is_straight_through_and_32_is_identity():
    u = (3 * torch.randn(1000, generator=torch.Generator().manual_seed(5))).requires_grad_()
    quantize_membrane(u, 4, 1.0).sum().backward()
    assert torch.equal(u.grad, torch.ones_like(u))  # also where u was clamped
    assert quantize_membrane(u, 32, 1.0) is u


@pytest.mark.parametrize("bits", [0, 1, 17, 31, 64, -3, 2.0])
def test_bad_membrane_bits(bits):
    with pytest.raises(ValueError, match="mem_bits"):
        quantize_membrane(torch.zeros(3), bits, 1.0)


@pytest.mark.parametrize("theta", [0.0, -1.0, float("nan")])
def test_membrane_needs_positive_threshold(theta):
    with pytest.raises(ValueError, match="threshold"):
        quantize_membrane(torch.zeros(3), 4, theta)
