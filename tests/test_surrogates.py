"""Tests for qsnn_explorer.surrogates: forward, backward, primitives, shapes, registry."""

import math
import pickle
from dataclasses import dataclass, fields
from typing import ClassVar

import pytest
import snntorch.surrogate as snn_surrogate
import torch

from qsnn_explorer import surrogates as S

NAMES = S.surrogate_names()
HC_FAMILY = (
    "triangular",
    "exponential",
    "hc_fast_sigmoid",
    "gaussian",
    "sigmoid",
    "rectangular",
    "q_pseudospike",
)
# A superset of parameters away from the defaults (so a formula that only holds at 1 fails).
CUSTOM = dict(
    sharpness=1.7, dampening=0.6, tail=2.3, window_left=0.9, window_right=0.4, alpha=0.3, beta=0.7
)
SETTINGS = [("default", {}), ("custom", CUSTOM)]


def build(name, setting):
    return S.make_surrogate(name, **dict(SETTINGS)[setting])


def kinks(sur):
    """Points where grad is discontinuous or not differentiable."""
    if isinstance(sur, S.Triangular):
        return [0.0, 1 / sur.sharpness, -1 / sur.sharpness]
    if isinstance(sur, S.Rectangular):
        return [0.5 / sur.sharpness, -0.5 / sur.sharpness]
    if isinstance(sur, S.AdaLi):
        return [-sur.window_left, 0.0, sur.window_right]
    return []


def _wide_grid():
    """Symmetric float64 grid from 1e-8 to 1e7 (log-spaced) plus 0, for areas and peaks."""
    x = torch.logspace(-8, 7, 100_001, dtype=torch.float64)
    return torch.cat([-x.flip(0), torch.zeros(1, dtype=torch.float64), x])


WIDE = _wide_grid()


def test_registry_holds_every_surrogate():
    assert set(NAMES) == {"fast_sigmoid", "atan", "adali", *HC_FAMILY}
    assert all(S.SURROGATES[n].name == n for n in NAMES)


@pytest.mark.parametrize("setting", ["default", "custom"])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_is_heaviside(name, setting, dtype):
    sur = build(name, setting)
    v = torch.tensor([-3.0, -1e-7, -0.0, 0.0, 1e-7, 2.0], dtype=dtype)
    out = sur(v)
    assert out.dtype == dtype
    assert out.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    r = torch.randn(1000, dtype=dtype, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sur(r), (r > 0).to(dtype))
    assert sur.grad(r).dtype == dtype


@pytest.mark.parametrize("setting", ["default", "custom"])
@pytest.mark.parametrize("name", NAMES)
def test_backward_uses_grad(name, setting):
    sur = build(name, setting)
    gen = torch.Generator().manual_seed(1)
    v = (3 * torch.randn(500, generator=gen)).requires_grad_()
    upstream = torch.randn(500, generator=gen)
    sur(v).backward(upstream)
    assert torch.equal(v.grad, upstream * sur.grad(v.detach()))
    assert v.grad.abs().sum() > 0


@pytest.mark.parametrize("setting", ["default", "custom"])
@pytest.mark.parametrize("name", NAMES)
def test_grad_is_derivative_of_primitive(name, setting):
    sur = build(name, setting)
    v = torch.cat(
        [torch.linspace(-6, 6, 12_001, dtype=torch.float64), torch.tensor([0.0, -1e3, 1e3, -1e6, 1e6])]
    )
    for k in kinks(sur):
        v = v[(v - k).abs() > 1e-6]
    v.requires_grad_()
    (auto,) = torch.autograd.grad(sur.primitive(v).sum(), v)
    assert torch.isfinite(auto).all()
    torch.testing.assert_close(auto, sur.grad(v.detach()), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("setting", ["default", "custom"])
@pytest.mark.parametrize("name", NAMES)
def test_peak_area_and_primitive_limits(name, setting):
    sur = build(name, setting)
    v = WIDE
    g = sur.grad(v)
    assert g.min() >= 0
    assert g.max().item() == pytest.approx(sur.peak, rel=1e-9)
    assert torch.trapezoid(g, v).item() == pytest.approx(sur.area, rel=0.01)
    ends = sur.primitive(torch.tensor([-1e7, 1e7], dtype=torch.float64))
    assert ends[0].item() == pytest.approx(0.0, abs=0.01 * sur.area)
    assert ends[1].item() == pytest.approx(sur.area, rel=0.01)


@pytest.mark.parametrize("setting", ["default", "custom"])
@pytest.mark.parametrize("name", HC_FAMILY)
def test_hc_family_peak_gamma_area_gamma_over_beta(name, setting):
    sur = build(name, setting)
    gamma, beta = sur.dampening, sur.sharpness
    assert sur.grad(torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(gamma, rel=1e-12)
    assert sur.peak == pytest.approx(gamma)
    assert sur.area == pytest.approx(gamma / beta)
    v = WIDE
    assert torch.trapezoid(sur.grad(v), v).item() == pytest.approx(gamma / beta, rel=0.01)


@pytest.mark.parametrize("tail", [1.2, 1.56, 3.0, 8.0])
def test_q_pseudospike_area_for_any_tail(tail):
    sur = S.QPseudoSpike(sharpness=2.0, dampening=1.0, tail=tail)
    v = WIDE
    # Heavy tails (q → 1) leave mass beyond the grid: (1 + β·1e7/a)^(1−q) of the area.
    a = (tail - 1) / 2
    outside = (1 + 2.0 * 1e7 / a) ** (1 - tail) * sur.area
    numeric = torch.trapezoid(sur.grad(v), v).item() + outside
    assert numeric == pytest.approx(0.5, rel=0.005)


def test_hc_shapes_differ():
    v = torch.linspace(-2, 2, 101, dtype=torch.float64)
    grads = [S.make_surrogate(n).grad(v) for n in HC_FAMILY]
    for i in range(len(grads)):
        for j in range(i):
            assert not torch.allclose(grads[i], grads[j])


def _snn_backward(fn, v):
    v = v.clone().requires_grad_()
    fn(v).backward(torch.ones_like(v))
    return v.grad


@pytest.mark.parametrize("k", [25.0, 13.84, 5.5565, 1.0])
def test_fast_sigmoid_matches_snntorch(k):
    v = torch.randn(2000, generator=torch.Generator().manual_seed(2)) * 2
    ours = _snn_backward(S.FastSigmoid(sharpness=k), v)
    theirs = _snn_backward(snn_surrogate.fast_sigmoid(slope=k), v)
    assert torch.equal(ours, theirs)
    assert torch.equal(S.FastSigmoid(sharpness=k)(v), snn_surrogate.fast_sigmoid(slope=k)(v))
    # dampening scales the gradient
    damped = _snn_backward(S.FastSigmoid(sharpness=k, dampening=0.3), v)
    torch.testing.assert_close(damped, 0.3 * theirs)


@pytest.mark.parametrize("alpha", [2.0, 0.7, 5.0])
def test_atan_matches_snntorch(alpha):
    v = torch.randn(2000, generator=torch.Generator().manual_seed(3)) * 2
    ours = _snn_backward(S.ATan(sharpness=alpha), v)
    theirs = _snn_backward(snn_surrogate.atan(alpha=alpha), v)
    assert torch.equal(ours, theirs)
    damped = _snn_backward(S.ATan(sharpness=alpha, dampening=0.3), v)
    torch.testing.assert_close(damped, 0.3 * theirs)


def test_adali_asymmetric_heights_and_unit_area():
    sur = S.AdaLi(window_left=0.9, window_right=0.4)
    v = torch.tensor([-0.95, -0.9, -0.5, -1e-9, 0.0, 0.2, 0.4, 0.41], dtype=torch.float64)
    left, right = 0.5 / 0.9, 0.5 / 0.4
    expected = [0.0, left, left, left, right, right, right, 0.0]
    torch.testing.assert_close(sur.grad(v), torch.tensor(expected, dtype=torch.float64))
    assert sur.area == 1.0
    assert sur.peak == pytest.approx(right)
    x = torch.linspace(-3, 3, 600_001, dtype=torch.float64)
    assert torch.trapezoid(sur.grad(x), x).item() == pytest.approx(1.0, rel=1e-3)
    prim = sur.primitive(torch.tensor([-5.0, -0.9, 0.0, 0.4, 5.0], dtype=torch.float64))
    torch.testing.assert_close(prim, torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("schedule", ["log", "linear", "sqrt"])
def test_adali_window_endpoints_and_monotonic(schedule):
    epochs = 10
    w = [S.adali_window(e, epochs, schedule) for e in range(1, epochs + 1)]
    assert w[0] == pytest.approx(1.5)
    assert w[-1] == pytest.approx(0.3)
    assert all(a > b for a, b in zip(w, w[1:]))
    assert S.adali_window(1, 1, schedule) == 1.5


def test_adali_window_formulas():
    assert S.adali_window(6, 11, "linear") == pytest.approx(0.9)
    assert S.adali_window(6, 11, "sqrt") == pytest.approx(1.5 - 1.2 * math.sqrt(0.5))
    assert S.adali_window(4, 16, "log") == pytest.approx(1.5 * math.sqrt(0.2))
    expected = 2.0 * 0.25 ** (math.log(3) / math.log(5))
    assert S.adali_window(3, 5, "log", w_max=2.0, w_min=0.5) == pytest.approx(expected)
    assert [S.adali_window(e, 7, "fixed", w_max=1.1) for e in range(1, 8)] == [1.1] * 7


def test_adali_window_rejects_bad_input():
    with pytest.raises(ValueError, match="adali_schedule.*log.*linear.*sqrt.*fixed"):
        S.adali_window(1, 10, "cosine")
    with pytest.raises(ValueError, match="epoch"):
        S.adali_window(0, 10, "log")
    with pytest.raises(ValueError, match="epoch"):
        S.adali_window(11, 10, "log")


def test_adali_window_from_membrane_uses_interquartile_range():
    v = torch.arange(-2000, 2001, dtype=torch.float64) / 1000  # quartiles exactly -1 and 1
    assert S.adali_window_from_membrane(v, 0.3, 1.5) == pytest.approx((1.0, 1.0))
    assert S.adali_window_from_membrane(v, 0.3, 0.8) == pytest.approx((0.8, 0.8))
    skewed = torch.linspace(-0.4, 3.6, 4001).repeat(2, 3)  # [2, 12003]; quartiles 0.6, 2.6
    assert S.adali_window_from_membrane(skewed, 0.3, 1.5) == pytest.approx((0.3, 1.5))
    assert S.adali_window_from_membrane(skewed, 0.3, 5.0) == pytest.approx((0.3, 2.6), rel=1e-5)
    # agrees with torch.quantile on an irregular sample
    r = torch.randn(999, generator=torch.Generator().manual_seed(4)) * 0.7 + 0.1
    q25, q75 = torch.quantile(r, torch.tensor([0.25, 0.75])).tolist()
    assert S.adali_window_from_membrane(r, 0.01, 10.0) == pytest.approx((-q25, q75), rel=1e-6)


def test_fraction_in_window():
    v = torch.arange(-2000, 2001, dtype=torch.float64) / 1000
    assert S.fraction_in_window(v, 1.0, 1.0) == pytest.approx(2001 / 4001)
    assert S.fraction_in_window(v, 0.5, 1.5) == pytest.approx(2001 / 4001)
    assert S.fraction_in_window(v, 2.0, 0.0) == pytest.approx(2001 / 4001)
    assert S.fraction_in_window(v, 5.0, 5.0) == 1.0


def test_make_surrogate_ignores_extra_params_and_rejects_bad_names():
    sur = S.make_surrogate("atan", **CUSTOM, learning_rate=3.0)
    assert sur == S.ATan(sharpness=1.7, dampening=0.6)
    adali = S.make_surrogate("adali", **CUSTOM)
    assert adali == S.AdaLi(window_left=0.9, window_right=0.4, alpha=0.3, beta=0.7)
    with pytest.raises(ValueError) as info:
        S.make_surrogate("heaviside")
    for n in NAMES:
        assert n in str(info.value)


def test_register_adds_a_surrogate_without_other_edits():
    @dataclass(frozen=True)
    class Box(S.Surrogate):
        name: ClassVar[str] = "test_box"
        width: float = 1.0

        def grad(self, v):
            return (v.abs() <= self.width / 2).to(v.dtype) / self.width

        def primitive(self, v):
            return (v / self.width + 0.5).clamp(0, 1)

        peak = property(lambda self: 1 / self.width)
        area = property(lambda self: 1.0)

    S.register(Box)
    try:
        assert "test_box" in S.surrogate_names()
        assert S.make_surrogate("test_box", width=2.0, sharpness=9.0) == Box(width=2.0)
        with pytest.raises(ValueError, match="already registered"):
            S.register(type("Other", (Box,), {}))
    finally:
        del S.SURROGATES["test_box"]
    assert "test_box" not in S.surrogate_names()


def _positive_fields(name):
    return [f for f in ("sharpness", "dampening", "window_left", "window_right", "alpha", "beta")
            if f in {x.name for x in fields(S.SURROGATES[name])}]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_parameters_are_rejected(name, bad):
    positive = _positive_fields(name)
    assert positive
    for field in positive:
        with pytest.raises(ValueError, match=f"{field} must be a finite number > 0"):
            S.make_surrogate(name, **{field: bad})


@pytest.mark.parametrize("tail", [1.0, 0.5, -2.0])
def test_tail_must_exceed_one(tail):
    with pytest.raises(ValueError, match="tail must be a finite number > 1"):
        S.QPseudoSpike(tail=tail)


@pytest.mark.parametrize("name", NAMES)
def test_repr_pickle_equality(name):
    sur = build(name, "custom")
    text = repr(sur)
    for field in fields(sur):
        assert f"{field.name}={getattr(sur, field.name)!r}" in text
    clone = pickle.loads(pickle.dumps(sur))
    assert clone == sur and hash(clone) == hash(sur)
    v = torch.linspace(-3, 3, 61)
    assert torch.equal(clone.grad(v), sur.grad(v))
    assert sur != build(name, "default")


def test_parameters_are_stored_as_floats():
    sur = S.make_surrogate("gaussian", sharpness=2, dampening=1)
    assert repr(sur) == "Gaussian(sharpness=2.0, dampening=1.0)"
    assert S.Gaussian(1.0, 1.0) != S.Sigmoid(1.0, 1.0)
