"""Surrogate gradients for the spike nonlinearity s = H(v), with v = u − θ.

Forward is the Heaviside step ``(v > 0)`` (strictly greater, as snntorch); backward
multiplies the incoming gradient by ``surrogate.grad(v)``. Every surrogate takes v = u − θ,
so it is centred at the threshold by construction (P3 warns against baselines centred at u = 0).

Each surrogate is a frozen dataclass: its parameters show in ``repr``, it pickles and it compares
equal by value. ``primitive(v)`` is a soft step from 0 to ``area`` whose derivative is ``grad(v)``
(the tests check the hand-written ``grad`` against autograd of ``primitive``). New shapes are added
with ``@register``; nothing dispatches on names with if/elif.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, fields
from typing import Callable, ClassVar

import torch
from torch import Tensor

__all__ = [
    "ADALI_SCHEDULES",
    "SURROGATES",
    "ATan",
    "AdaLi",
    "Exponential",
    "FastSigmoid",
    "Gaussian",
    "HCFastSigmoid",
    "QPseudoSpike",
    "Rectangular",
    "Sigmoid",
    "SpikeFunction",
    "Surrogate",
    "Triangular",
    "adali_window",
    "adali_window_from_membrane",
    "fraction_in_window",
    "make_surrogate",
    "register",
    "surrogate_names",
]

SURROGATES: dict[str, type[Surrogate]] = {}
"""Registry name → surrogate class, filled by :func:`register`."""


def register(cls: type[Surrogate]) -> type[Surrogate]:
    """Class decorator: add ``cls`` to :data:`SURROGATES` under ``cls.name``."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__qualname__} needs a non-empty class attribute 'name'")
    if SURROGATES.get(name, cls) is not cls:
        raise ValueError(f"surrogate name {name!r} is already registered by {SURROGATES[name].__qualname__}")
    SURROGATES[name] = cls
    return cls


def surrogate_names() -> tuple[str, ...]:
    """Registered surrogate names, in registration order."""
    return tuple(SURROGATES)


def make_surrogate(name: str, **params: float) -> Surrogate:
    """Build the surrogate ``name`` from the keyword ``params`` its class declares as fields.

    Other keywords are ignored, so a caller may pass a superset (sharpness, dampening, tail,
    window_left, ...). Unknown names raise ValueError listing the allowed ones.
    """
    try:
        cls = SURROGATES[name]
    except (KeyError, TypeError):
        raise ValueError(f"surrogate must be one of {surrogate_names()}, got {name!r}") from None
    declared = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in params.items() if k in declared})


class SpikeFunction(torch.autograd.Function):
    """s = H(v) = 1[v > 0] forward; ∂L/∂v = ∂L/∂s · surrogate.grad(v) backward."""

    @staticmethod
    def forward(ctx, v: Tensor, surrogate: Surrogate) -> Tensor:
        ctx.save_for_backward(v)
        ctx.surrogate = surrogate
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None]:
        (v,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.grad(v), None


class Surrogate(abc.ABC):
    """Base class. Subclasses are ``@dataclass(frozen=True)`` with a class attribute ``name``."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def grad(self, v: Tensor) -> Tensor:
        """∂s/∂v, elementwise, same dtype and device as v."""

    @abc.abstractmethod
    def primitive(self, v: Tensor) -> Tensor:
        """Soft step from 0 (v → −∞) to ``area`` (v → +∞) with d/dv primitive(v) = grad(v)."""

    @property
    @abc.abstractmethod
    def peak(self) -> float:
        """max_v grad(v)."""

    @property
    @abc.abstractmethod
    def area(self) -> float:
        """∫ grad(v) dv."""

    def __call__(self, v: Tensor) -> Tensor:
        return SpikeFunction.apply(v, self)


def _check_positive(obj: Surrogate, *names: str) -> None:
    """Coerce the fields ``names`` to float and require each to be finite and > 0."""
    for field in names:
        value = getattr(obj, field)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not (0 < number < math.inf):
            raise ValueError(f"{obj.name}: {field} must be a finite number > 0, got {value!r}")
        object.__setattr__(obj, field, number)


def _odd(v: Tensor, half: Callable[[Tensor], Tensor]) -> Tensor:
    """sign(v)·half(|v|) for half(0) = 0, written so autograd gives half'(0) at v = 0.

    (Through ``abs`` autograd would give 0 at v = 0. Each branch only sees clamped, finite
    input, so the branch ``torch.where`` drops cannot put NaN into the gradient.)
    """
    return torch.where(v >= 0, half(v.clamp(min=0)), -half((-v).clamp(min=0)))


# --------------------------------------------------------------------------------------------
# snntorch conventions


@register
@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """snntorch's fast sigmoid (SuperSpike): grad = γ / (1 + k|v|)², k = ``sharpness``.

    primitive = γ·(v / (1 + k|v|) + 1/k); peak γ, area 2γ/k. With γ = 1 it is exactly
    ``snntorch.surrogate.fast_sigmoid(slope=k)``.
    """

    name: ClassVar[str] = "fast_sigmoid"
    sharpness: float = 25.0
    dampening: float = 1.0

    def __post_init__(self) -> None:
        _check_positive(self, "sharpness", "dampening")

    def grad(self, v: Tensor) -> Tensor:
        # Same operation order as snntorch, so the result is bit-identical for γ = 1.
        return self.dampening / (self.sharpness * v.abs() + 1.0) ** 2

    def primitive(self, v: Tensor) -> Tensor:
        return self.dampening * (v / (1 + self.sharpness * v.abs()) + 1 / self.sharpness)

    @property
    def peak(self) -> float:
        return self.dampening

    @property
    def area(self) -> float:
        return 2 * self.dampening / self.sharpness


@register
@dataclass(frozen=True)
class ATan(Surrogate):
    """snntorch's ATan: grad = γ·(α/2) / (1 + (π/2·α·v)²), α = ``sharpness``.

    primitive = γ·(arctan(π/2·α·v)/π + 1/2); peak γα/2, area γ. With γ = 1 it is exactly
    ``snntorch.surrogate.atan(alpha=α)``.
    """

    name: ClassVar[str] = "atan"
    sharpness: float = 2.0
    dampening: float = 1.0

    def __post_init__(self) -> None:
        _check_positive(self, "sharpness", "dampening")

    def grad(self, v: Tensor) -> Tensor:
        # Same operation order as snntorch, so the result is bit-identical for γ = 1.
        alpha = self.sharpness
        return self.dampening * (alpha / 2) / (1 + (math.pi / 2 * alpha * v) ** 2)

    def primitive(self, v: Tensor) -> Tensor:
        return self.dampening * (torch.atan(math.pi / 2 * self.sharpness * v) / math.pi + 0.5)

    @property
    def peak(self) -> float:
        return self.dampening * self.sharpness / 2

    @property
    def area(self) -> float:
        return self.dampening


# --------------------------------------------------------------------------------------------
# Herranz-Celotti & Rouat (P4): every shape has peak γ = dampening and area γ/β, β = sharpness.


@dataclass(frozen=True)
class _HCShape(Surrogate):
    """Shared fields of the P4 family: sharpness β, dampening γ; peak γ, area γ/β."""

    sharpness: float = 1.0
    dampening: float = 1.0

    def __post_init__(self) -> None:
        _check_positive(self, "sharpness", "dampening")

    @property
    def peak(self) -> float:
        return self.dampening

    @property
    def area(self) -> float:
        return self.dampening / self.sharpness


@register
@dataclass(frozen=True)
class Triangular(_HCShape):
    """grad = γ·max(0, 1 − |βv|).

    primitive = γ/(2β) + γ·(c − β·c|c|/2) with c = clamp(v, −1/β, 1/β).
    """

    name: ClassVar[str] = "triangular"

    def grad(self, v: Tensor) -> Tensor:
        return self.dampening * (1 - (self.sharpness * v).abs()).clamp(min=0)

    def primitive(self, v: Tensor) -> Tensor:
        b = self.sharpness
        c = v.clamp(-1 / b, 1 / b)
        return self.area / 2 + self.dampening * (c - b * c * c.abs() / 2)


@register
@dataclass(frozen=True)
class Exponential(_HCShape):
    """grad = γ·exp(−2|βv|).

    primitive = γ/(2β)·(1 + sign(v)·(1 − exp(−2β|v|))).
    """

    name: ClassVar[str] = "exponential"

    def grad(self, v: Tensor) -> Tensor:
        return self.dampening * torch.exp(-2 * (self.sharpness * v).abs())

    def primitive(self, v: Tensor) -> Tensor:
        half = self.area / 2
        return half + _odd(v, lambda x: -half * torch.expm1(-2 * self.sharpness * x))


@register
@dataclass(frozen=True)
class HCFastSigmoid(_HCShape):
    """grad = γ / (1 + 2|βv|)²  (P4's fast sigmoid, scaled to area γ/β).

    primitive = γ/(2β) + γ·v / (1 + 2β|v|).
    """

    name: ClassVar[str] = "hc_fast_sigmoid"

    def grad(self, v: Tensor) -> Tensor:
        return self.dampening / (1 + 2 * (self.sharpness * v).abs()) ** 2

    def primitive(self, v: Tensor) -> Tensor:
        return self.area / 2 + self.dampening * v / (1 + 2 * self.sharpness * v.abs())


@register
@dataclass(frozen=True)
class Gaussian(_HCShape):
    """grad = γ·exp(−π(βv)²).

    primitive = γ/(2β)·(1 + erf(√π·βv)).
    """

    name: ClassVar[str] = "gaussian"

    def grad(self, v: Tensor) -> Tensor:
        return self.dampening * torch.exp(-math.pi * (self.sharpness * v) ** 2)

    def primitive(self, v: Tensor) -> Tensor:
        return self.area / 2 * (1 + torch.erf(math.sqrt(math.pi) * self.sharpness * v))


@register
@dataclass(frozen=True)
class Sigmoid(_HCShape):
    """grad = 4γ·σ(4βv)·(1 − σ(4βv)).

    primitive = γ/β·σ(4βv).
    """

    name: ClassVar[str] = "sigmoid"

    def grad(self, v: Tensor) -> Tensor:
        sig = torch.sigmoid(4 * self.sharpness * v)
        return 4 * self.dampening * sig * (1 - sig)

    def primitive(self, v: Tensor) -> Tensor:
        return self.area * torch.sigmoid(4 * self.sharpness * v)


@register
@dataclass(frozen=True)
class Rectangular(_HCShape):
    """grad = γ·1[|2βv| < 1].

    primitive = γ·clamp(v + 1/(2β), 0, 1/β) (piecewise linear).
    """

    name: ClassVar[str] = "rectangular"

    def grad(self, v: Tensor) -> Tensor:
        return self.dampening * ((2 * self.sharpness * v).abs() < 1).to(v.dtype)

    def primitive(self, v: Tensor) -> Tensor:
        b = self.sharpness
        return self.dampening * (v + 1 / (2 * b)).clamp(0, 1 / b)


@register
@dataclass(frozen=True)
class QPseudoSpike(_HCShape):
    """q-PseudoSpike: grad = γ / (1 + |βv|/a)^q with a = (q − 1)/2 and tail fatness q > 1.

    The choice of a gives area 2·(a/β)/(q − 1) · γ = γ/β. Smaller q means fatter tails.
    primitive = γ/(2β)·(1 + sign(v)·(1 − (1 + β|v|/a)^(1−q))).
    """

    name: ClassVar[str] = "q_pseudospike"
    tail: float = 1.56

    def __post_init__(self) -> None:
        super().__post_init__()
        tail = float(self.tail)
        if not (1 < tail < math.inf):
            raise ValueError(f"{self.name}: tail must be a finite number > 1, got {self.tail!r}")
        object.__setattr__(self, "tail", tail)

    def grad(self, v: Tensor) -> Tensor:
        a = (self.tail - 1) / 2
        return self.dampening * (1 + (self.sharpness * v).abs() / a) ** -self.tail

    def primitive(self, v: Tensor) -> Tensor:
        a, half = (self.tail - 1) / 2, self.area / 2
        return half + _odd(v, lambda x: half * (1 - (1 + self.sharpness * x / a) ** (1 - self.tail)))


# --------------------------------------------------------------------------------------------
# AdaLi (P3): asymmetric rectangle whose window narrows with the epochs.


@register
@dataclass(frozen=True)
class AdaLi(Surrogate):
    """grad = α/L for −L ≤ v < 0, β/R for 0 ≤ v ≤ R, 0 elsewhere (L, R = window_left/right).

    Area α + β (1 for the defaults), so the height grows as the window narrows.
    primitive = α·clamp(v + L, 0, L)/L + β·clamp(v, 0, R)/R (piecewise linear).
    """

    name: ClassVar[str] = "adali"
    window_left: float = 1.5
    window_right: float = 1.5
    alpha: float = 0.5
    beta: float = 0.5

    def __post_init__(self) -> None:
        _check_positive(self, "window_left", "window_right", "alpha", "beta")

    def grad(self, v: Tensor) -> Tensor:
        left = ((v >= -self.window_left) & (v < 0)).to(v.dtype)
        right = ((v >= 0) & (v <= self.window_right)).to(v.dtype)
        return left * (self.alpha / self.window_left) + right * (self.beta / self.window_right)

    def primitive(self, v: Tensor) -> Tensor:
        lw, rw = self.window_left, self.window_right
        return self.alpha * (v + lw).clamp(0, lw) / lw + self.beta * v.clamp(0, rw) / rw

    @property
    def peak(self) -> float:
        return max(self.alpha / self.window_left, self.beta / self.window_right)

    @property
    def area(self) -> float:
        return self.alpha + self.beta


ADALI_SCHEDULES = ("log", "linear", "sqrt", "fixed")


def adali_window(epoch: int, epochs: int, schedule: str, w_max: float = 1.5, w_min: float = 0.3) -> float:
    """AdaLi window half-width for 1-based ``epoch`` of ``epochs`` (P3).

    - "log" (P3's default): w_max·(w_min/w_max)^(ln e / ln E)
    - "linear": w_max + (w_min − w_max)·(e − 1)/(E − 1)
    - "sqrt": w_max + (w_min − w_max)·√((e − 1)/(E − 1))
    - "fixed": w_max
    All give w_max at e = 1 and, except "fixed", w_min at e = E; with E = 1 they give w_max.
    """
    if schedule not in ADALI_SCHEDULES:
        raise ValueError(f"adali_schedule must be one of {ADALI_SCHEDULES}, got {schedule!r}")
    if not 1 <= epoch <= epochs:
        raise ValueError(f"epoch must be in 1..epochs={epochs}, got {epoch}")
    if not (0 < w_min < math.inf and 0 < w_max < math.inf):
        raise ValueError(f"adali windows must be finite and > 0, got w_min={w_min}, w_max={w_max}")
    if schedule == "fixed" or epochs == 1:
        return float(w_max)
    if schedule == "log":
        return w_max * (w_min / w_max) ** (math.log(epoch) / math.log(epochs))
    progress = (epoch - 1) / (epochs - 1)
    if schedule == "sqrt":
        progress = math.sqrt(progress)
    return w_max + (w_min - w_max) * progress


def _quantile(x: Tensor, q: float) -> float:
    """Linearly interpolated q-quantile of a flat tensor, as ``torch.quantile`` but without
    its 2**24-element limit."""
    pos = q * (x.numel() - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, x.numel() - 1)
    a = x.kthvalue(lo + 1).values.item()
    b = x.kthvalue(hi + 1).values.item()
    return a + (b - a) * (pos - lo)


def adali_window_from_membrane(v: Tensor, w_min: float, w_max: float) -> tuple[float, float]:
    """Window (L, R) from samples of v = u − θ of hidden membranes.

    THIS PROJECT'S OWN RULE: the AdaLi reference code only *reports* membrane statistics
    (min, quartiles, mean, max, share inside the window); it does not set the window from them.
    Here the window spans the inter-quartile range of u around θ, clamped to [w_min, w_max]:
    L = clamp(−q25(v), w_min, w_max), R = clamp(q75(v), w_min, w_max).
    """
    if not 0 < w_min <= w_max:
        raise ValueError(f"need 0 < w_min <= w_max, got w_min={w_min}, w_max={w_max}")
    x = v.detach().flatten()
    if x.numel() == 0:
        raise ValueError("adali_window_from_membrane needs at least one membrane sample")
    q25, q75 = _quantile(x, 0.25), _quantile(x, 0.75)
    return min(max(-q25, w_min), w_max), min(max(q75, w_min), w_max)


def fraction_in_window(v: Tensor, window_left: float, window_right: float) -> float:
    """Share of v = u − θ inside the AdaLi window [−L, R] (P3 reports it per epoch)."""
    if v.numel() == 0:
        raise ValueError("fraction_in_window needs at least one membrane sample")
    inside = (v >= -window_left) & (v <= window_right)
    return inside.sum().item() / v.numel()
