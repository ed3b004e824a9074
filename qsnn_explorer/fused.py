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
            elif reset == "subtract":  # β·u + I − θ·s, rounded as lif_step
                torch.mul(mems[t - 1], b, out=m).add_(currents[t]).add_(fired[t - 1], alpha=-th)
            else:                      # β·u zeroed where it fired, + I
                torch.mul(mems[t - 1], b, out=m).masked_fill_(fired[t - 1], 0).add_(currents[t])
            if mem_bits != 32:
                m.copy_(quantize_membrane(m, mem_bits, th))
            torch.gt(m, th, out=fired[t])
        spikes = fired.to(currents.dtype)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(mems, fired, beta, threshold)
        ctx.surrogate, ctx.reset = surrogate, reset
        return spikes, mems

    @staticmethod
    def backward(ctx, grad_spikes: Tensor | None, grad_mems: Tensor | None):
        """Reverse scan one step at a time, so each [B, ...] slice stays in cache."""
        if grad_spikes is None and grad_mems is None:
            return None, None, None, None, None, None
        mems, fired, beta, threshold = ctx.saved_tensors
        subtract = ctx.reset == "subtract"
        b, th = float(beta), float(threshold)
        want_theta = ctx.needs_input_grad[2] and grad_spikes is not None
        delta = torch.empty_like(mems)
        spike_term = torch.zeros((), dtype=mems.dtype, device=mems.device)  # Σ ∂L/∂s·σ'
        for t in range(mems.shape[0] - 1, -1, -1):
            d = delta[t]
            if grad_spikes is not None:
                torch.mul(grad_spikes[t], ctx.surrogate.grad(torch.sub(mems[t], th)), out=d)
                if want_theta:
                    spike_term = spike_term + d.sum()
                if grad_mems is not None:
                    d.add_(grad_mems[t])
            else:
                d.copy_(grad_mems[t])
            if t + 1 < mems.shape[0]:
                if subtract:
                    d.add_(delta[t + 1], alpha=b)
                else:
                    d.add_(delta[t + 1].masked_fill(fired[t], 0), alpha=b)
        grad_beta = grad_threshold = None
        if ctx.needs_input_grad[1]:
            carried = mems[:-1] if subtract else mems[:-1].masked_fill(fired[:-1], 0)
            grad_beta = (delta[1:] * carried).sum().reshape(beta.shape)
        if ctx.needs_input_grad[2]:
            grad_threshold = -spike_term
            if subtract:
                grad_threshold = grad_threshold - (delta[1:] * fired[:-1]).sum()
            grad_threshold = grad_threshold.reshape(threshold.shape)
        return delta, grad_beta, grad_threshold, None, None, None


def fused_lif(currents: Tensor, beta: Tensor, threshold: Tensor, surrogate: Surrogate,
              reset: str = "subtract", mem_bits: int = 32) -> tuple[Tensor, Tensor]:
    """currents [T, B, ...] → (spikes, membranes); same values and gradients as ``lif_sequence``."""
    return FusedLIF.apply(currents, beta.clamp(0, 1), threshold, surrogate, reset, mem_bits)
