"""A linear layer that leaves out the input features silent in every row of its batch.

For ``y = x·Wᵀ + b`` with ``x`` [N, K], a feature j with ``x[n, j] = 0`` for all n adds nothing
to ``y``, and its weight gradient ``∂L/∂W[:, j] = Σ_n g[n]·x[n, j]`` is 0. So only the active
features A = {j : x[:, j] ≠ 0} enter the two GEMMs::

    y = x[:, A]·W[:, A]ᵀ + b,    ∂L/∂W[:, A] = gᵀ·x[:, A],   ∂L/∂W[:, ∉A] = 0,   ∂L/∂x = g·W

The result equals the plain layer up to float rounding (a shorter sum). It pays on spike input
with structurally silent features: rate-coded MNIST digits leave ~32% of the 784 pixels at 0 in
every image of a batch of 128, so both first-layer GEMMs shrink by that much. Used by the fast
engine on CPU for the first layer; below ``MIN_SILENT_FRACTION`` the gathers cost more than they save.
"""
from __future__ import annotations

import torch
from torch import Tensor

MIN_SILENT_FRACTION = 0.1


def active_features(x: Tensor) -> Tensor:
    """Indices of the columns of ``x`` [N, K] with at least one non-zero (NaN counts as non-zero)."""
    return (x.amax(0).ne(0) | x.amin(0).ne(0)).nonzero().squeeze(1)


class _ActiveLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, active: Tensor) -> Tensor:
        x_active = x.index_select(1, active)
        w_active = weight.index_select(1, active)
        y = x_active @ w_active.t() if bias is None else torch.addmm(bias, x_active, w_active.t())
        ctx.save_for_backward(x_active, weight, active)
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        x_active, weight, active = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_y @ weight
        if ctx.needs_input_grad[1]:
            grad_w = torch.zeros_like(weight).index_copy_(1, active, grad_y.t() @ x_active)
        if ctx.needs_input_grad[2]:
            grad_b = grad_y.sum(0)
        return grad_x, grad_w, grad_b, None


def linear_skipping_silent(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)`` for 2-D ``x``, computed on the active features only (see module doc)."""
    active = active_features(x)
    if len(active) > (1 - MIN_SILENT_FRACTION) * x.shape[1]:
        return torch.nn.functional.linear(x, weight, bias)
    return _ActiveLinear.apply(x, weight, bias, active)
