"""The fast engine's linear synapse ``y = x·Wᵀ + b`` (x [N, K]): F.linear's values and gradients
with two savings.

**Silent input features left out.** A feature j with ``x[n, j] = 0`` for all n adds nothing to
``y``, and its weight gradient ``∂L/∂W[:, j] = Σ_n g[n]·x[n, j]`` is 0. So only the active
features A = {j : x[:, j] ≠ 0} enter the two GEMMs::

    y = x[:, A]·W[:, A]ᵀ + b,    ∂L/∂W[:, A] = gᵀ·x[:, A],   ∂L/∂W[:, ∉A] = 0,   ∂L/∂x = g·W

The result equals the plain layer up to float rounding (a shorter sum). It pays on spike input
with structurally silent features: rate-coded MNIST digits leave ~32% of the 784 pixels at 0 in
every image of a batch of 128, so both first-layer GEMMs shrink by that much. Used on CPU for
the first layer; below ``MIN_SILENT_FRACTION`` the gathers cost more than they save. Bool spikes
are gathered and kept for the backward as bool, and become numbers only for each GEMM.

**The input released before its gradient.** F.linear's backward keeps its saved input while it
allocates ∂L/∂x. Here ∂L/∂W = gᵀ·x is computed first and the input dropped, so a layer's input
and its gradient, each [T·B, K], are never alive together: on a rate-coded MNIST step (T 25,
batch 128, 1000 hidden) that is 12.8 MB off the peak. The graph therefore supports one backward
(a second raises), and an input modified in place before it raises, as autograd's own check does.
"""
from __future__ import annotations

import torch
from torch import Tensor

MIN_SILENT_FRACTION = 0.1


def active_features(x: Tensor) -> Tensor:
    """Indices of the columns of ``x`` [N, K] with at least one non-zero (NaN counts as non-zero)."""
    if x.dtype == torch.bool:
        return x.any(0).nonzero().squeeze(1)
    return (x.amax(0).ne(0) | x.amin(0).ne(0)).nonzero().squeeze(1)


def _gather(x: Tensor, weight: Tensor, active: Tensor | None) -> tuple[Tensor, Tensor]:
    """(x[:, A] in x's dtype, W[:, A]); A = all features when ``active`` is None."""
    if active is None:
        return x, weight
    return x.index_select(1, active), weight.index_select(1, active)


def _affine(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return x @ weight.t() if bias is None else torch.addmm(bias, x, weight.t())


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, active: Tensor | None) -> Tensor:
        x_used, w_used = _gather(x, weight, active)
        ctx.save_for_backward(weight, active)
        # kept as given (bool spikes: a quarter of float32), and not saved: backward drops it early
        ctx.input, ctx.input_version = x_used, x_used._version
        return _affine(x_used.to(weight.dtype), w_used, bias)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        weight, active = ctx.saved_tensors
        x = getattr(ctx, "input", None)
        if x is None:
            raise RuntimeError("fast_linear: this graph was already backpropagated once (its input is freed); "
                               "run the forward again instead of using retain_graph=True")
        del ctx.input
        if x._version != ctx.input_version:
            raise RuntimeError("fast_linear: the layer's input was modified in place after the forward")
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            part = grad_y.t() @ x.to(grad_y.dtype)
            grad_w = part if active is None else torch.zeros_like(weight).index_copy_(1, active, part)
        del x  # the input goes before its gradient arrives
        if ctx.needs_input_grad[2]:
            grad_b = grad_y.sum(0)
        if ctx.needs_input_grad[0]:
            grad_x = _input_gradient(grad_y, weight)
        return grad_x, grad_w, grad_b, None


def _input_gradient(grad_y: Tensor, weight: Tensor) -> Tensor:
    """∂L/∂x = g·W (all features: a silent one still gets its gradient)."""
    return grad_y @ weight


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, skip_silent: bool = False) -> Tensor:
    """``F.linear(x, weight, bias)`` for 2-D ``x`` (numbers or bool spikes), with the savings of
    the module doc; ``skip_silent`` turns on the first."""
    active = None
    if skip_silent:
        active = active_features(x)
        if len(active) > (1 - MIN_SILENT_FRACTION) * x.shape[1]:
            active = None
    if not torch.is_grad_enabled() or not (x.requires_grad or weight.requires_grad
                                           or (bias is not None and bias.requires_grad)):
        x_used, w_used = _gather(x, weight, active)
        return _affine(x_used.to(weight.dtype), w_used, bias)
    return _Linear.apply(x, weight, bias, active)
