"""Fake quantization in the forward pass (P1), so the bit-width can change between steps.

Weights: signed, per-tensor, narrow range. With q_max = 2^(bits−1) − 1 and a detached
scale = max|w| / q_max recomputed on every call,

    w_q = clamp(round(w / scale), −q_max, q_max) · scale        (4 bits: integers in [−7, 7])

and the gradient passes straight through (∂w_q/∂w = 1). ``torch.round`` rounds half to even.

Route: written by hand rather than with ``torch.fake_quantize_per_tensor_affine``. On CPU the
built-in op gives the same codes and an all-ones gradient for float32 and accepts a tensor scale,
but it computes with a float32 scale, so float64 weights come out ~1e-7 (relative) off the exact
levels. The hand version is exact in every dtype, takes a tensor scale (no host sync), and its
few elementwise passes over a weight tensor cost nothing next to a forward pass through T steps.

The straight-through estimator is written ``w − w.detach() + q``: the first two terms are exactly 0
in value, so the output is exactly q (``w + (q − w).detach()`` can be off by one rounding).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["quantization_levels", "quantize_membrane", "quantize_weight"]


def _check_weight_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not (bits == 32 or 1 <= bits <= 8):
        raise ValueError(f"weight_bits must be 1–8 or 32, got {bits!r}")


def _scale(w: Tensor, q_max: int) -> Tensor:
    """max|w| / q_max as a detached 0-d tensor, floored at the dtype's smallest normal number so
    that an all-zero tensor quantizes to zeros (0 / tiny = 0) instead of NaN."""
    return (w.detach().abs().amax() / q_max).clamp(min=torch.finfo(w.dtype).tiny)


def _straight_through(x: Tensor, q: Tensor) -> Tensor:
    """Value q, gradient 1 with respect to x."""
    return x - x.detach() + q


def quantize_weight(w: Tensor, bits: int) -> Tensor:
    """Fake-quantize a weight tensor to ``bits`` (P1), with a straight-through gradient.

    - 32: w itself, unchanged.
    - 2..8: clamp(round(w/scale), −q_max, q_max)·scale, q_max = 2^(bits−1) − 1,
      scale = max|w|/q_max (detached). An all-zero w stays zero.
    - 1: sign(w)·mean|w|, with sign(0) = +1 (binary weights with a per-tensor scale).
    Any other ``bits`` raises ValueError.
    """
    _check_weight_bits(bits)
    if bits == 32:
        return w
    wd = w.detach()
    if bits == 1:
        alpha = wd.abs().mean()
        return _straight_through(w, torch.where(wd >= 0, alpha, -alpha))
    q_max = 2 ** (bits - 1) - 1
    scale = _scale(w, q_max)
    return _straight_through(w, torch.clamp(torch.round(wd / scale), -q_max, q_max) * scale)


def quantization_levels(w: Tensor, bits: int) -> Tensor:
    """Sorted distinct values that ``quantize_weight(w, bits)`` can output (for histograms).

    2·q_max + 1 values for 2..8 bits, 2 values (±mean|w|) for 1 bit, an empty tensor for 32 bits,
    and just [0] when w is all zero.
    """
    _check_weight_bits(bits)
    wd = w.detach()
    if bits == 32:
        return wd.new_empty(0)
    if not bool(wd.any()):
        return wd.new_zeros(1)
    if bits == 1:
        alpha = wd.abs().mean()
        return torch.stack([-alpha, alpha])
    q_max = 2 ** (bits - 1) - 1
    codes = torch.arange(-q_max, q_max + 1, dtype=w.dtype, device=w.device)
    return codes * _scale(w, q_max)


def quantize_membrane(u: Tensor, bits: int, threshold: float) -> Tensor:
    """Optional membrane-state quantization — THIS PROJECT'S CHOICE (P1 keeps membranes float).

    A signed narrow-range grid over [−2θ, 2θ], like the weight quantizer: q_max = 2^(bits−1) − 1,
    step Δ = 2θ/q_max, u_q = clamp(round(u/Δ), −q_max, q_max)·Δ. Zero is a level, so a resting
    membrane stays exactly 0 (an even grid would put a rounding tie at rest). The gradient is
    straight-through everywhere (∂u_q/∂u = 1, also where u was clamped), so saturation does not
    cut off the spike's surrogate gradient. ``bits`` 32 returns u unchanged; bits must be 2..16 or 32.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not (bits == 32 or 2 <= bits <= 16):
        raise ValueError(f"mem_bits must be 2–16 or 32, got {bits!r}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0 to quantize the membrane, got {threshold!r}")
    if bits == 32:
        return u
    q_max = 2 ** (bits - 1) - 1
    step = 2.0 * threshold / q_max
    codes = torch.round(u.detach() / step).clamp(-q_max, q_max)
    return _straight_through(u, codes * step)
