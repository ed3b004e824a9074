"""Fast path: the LIF recurrence over a whole sequence as one autograd Function.

Forward is ``neurons.lif_step`` unrolled over T with in-place writes into preallocated
[T, B, ...] buffers (no autograd graph, no per-step allocations). Backward is the exact
gradient of that recurrence, written by hand. With ``a_t = ∂L/∂s_t·σ'(u_t − θ) + ∂L/∂u_t``
(σ' the surrogate; both computed for all t at once) the membrane adjoint is a linear scan::

    δ_T = a_T,   δ_t = a_t + c_{t+1}·δ_{t+1},   c_{t+1} = ∂u_{t+1}/∂u_t = β  (subtract)
                                                               or β·(1 − s_t)  (zero)
    ∂L/∂I_t = δ_t
    ∂L/∂β   = Σ_t δ_t·u_{t−1}              (zero: Σ_t δ_t·(1 − s_{t−1})·u_{t−1})
    ∂L/∂θ   = −Σ_t ∂L/∂s_t·σ'(u_t − θ)  − Σ_t δ_t·s_{t−1}   (second term: subtract only)

The reset uses the detached previous spike, as the reference, so no gradient flows through
it. Membrane quantization is straight-through, so the scan is unchanged. The clamp of β to
[0, 1] stays outside (ordinary autograd). Tests check every case against ``lif_sequence``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .quant import quantize_membrane
from .surrogates import Surrogate


class FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, currents: Tensor, beta: Tensor, threshold: Tensor, surrogate: Surrogate,
                reset: str, mem_bits: int) -> tuple[Tensor, Tensor]:
        b, th = float(beta), float(threshold)
        mems = torch.empty(currents.shape, dtype=currents.dtype, device=currents.device)
        fired = torch.empty(currents.shape, dtype=torch.bool, device=currents.device)
        for t in range(currents.shape[0]):
            m = mems[t]
            if t == 0:
                m.copy_(currents[0])
            elif reset == "subtract":
                torch.mul(mems[t - 1], b, out=m).add_(currents[t])     # β·u + I, rounded as lif_step
                m.sub_(fired[t - 1].to(m.dtype), alpha=th)              # − θ·s
            else:
                torch.mul(mems[t - 1], b, out=m)                        # β·u …
                m.masked_fill_(fired[t - 1], 0).add_(currents[t])       # … zeroed where it fired, + I
            if mem_bits != 32:
                m.copy_(quantize_membrane(m, mem_bits, th))
            torch.gt(m, th, out=fired[t])
        spikes = fired.to(currents.dtype)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(mems, spikes, beta, threshold)
        ctx.surrogate, ctx.reset = surrogate, reset
        return spikes, mems

    @staticmethod
    def backward(ctx, grad_spikes: Tensor | None, grad_mems: Tensor | None):
        mems, spikes, beta, threshold = ctx.saved_tensors
        subtract = ctx.reset == "subtract"
        b = float(beta)
        surrogate_grad = ctx.surrogate.grad(mems - threshold) if grad_spikes is not None else None
        if grad_spikes is None and grad_mems is None:
            return None, None, None, None, None, None
        if surrogate_grad is not None:
            delta = grad_spikes * surrogate_grad
            if grad_mems is not None:
                delta += grad_mems
        else:
            delta = grad_mems.clone()
        steps = mems.shape[0]
        if subtract:
            for t in range(steps - 2, -1, -1):
                delta[t].add_(delta[t + 1], alpha=b)
        else:
            decay = (1 - spikes) * b  # c_{t+1} = β·(1 − s_t), indexed by t
            for t in range(steps - 2, -1, -1):
                delta[t].addcmul_(decay[t], delta[t + 1])
        grad_beta = grad_threshold = None
        if ctx.needs_input_grad[1]:
            carried = mems[:-1] if subtract else mems[:-1] * (1 - spikes[:-1])
            grad_beta = (delta[1:] * carried).sum().reshape(beta.shape)
        if ctx.needs_input_grad[2]:
            grad_threshold = torch.zeros((), dtype=mems.dtype, device=mems.device)
            if surrogate_grad is not None:
                grad_threshold = grad_threshold - (grad_spikes * surrogate_grad).sum()
            if subtract:
                grad_threshold = grad_threshold - (delta[1:] * spikes[:-1]).sum()
            grad_threshold = grad_threshold.reshape(threshold.shape)
        return delta, grad_beta, grad_threshold, None, None, None


def fused_lif(currents: Tensor, beta: Tensor, threshold: Tensor, surrogate: Surrogate,
              reset: str = "subtract", mem_bits: int = 32) -> tuple[Tensor, Tensor]:
    """currents [T, B, ...] → (spikes, membranes); same values and gradients as ``lif_sequence``."""
    return FusedLIF.apply(currents, beta.clamp(0, 1), threshold, surrogate, reset, mem_bits)
