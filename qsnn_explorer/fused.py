"""Fast path: the LIF recurrence over a whole sequence as one autograd Function.

Forward is ``neurons.lif_step`` unrolled over T, writing into preallocated [T, B, ...] buffers
without an autograd graph. Backward is the exact gradient of that recurrence, written by hand.
With ``a_t = ∂L/∂s_t·σ'(u_t − θ) + ∂L/∂u_t`` (σ' the surrogate) the membrane adjoint is a
reverse linear scan::

    δ_T = a_T,   δ_t = a_t + c_{t+1}·δ_{t+1},   c_{t+1} = ∂u_{t+1}/∂u_t = β  (subtract)
                                                               or β·(1 − s_t)  (zero)
    ∂L/∂I_t = δ_t
    ∂L/∂β   = Σ_t δ_t·u_{t−1}              (zero: Σ_t δ_t·(1 − s_{t−1})·u_{t−1})
    ∂L/∂θ   = −Σ_t ∂L/∂s_t·σ'(u_t − θ)  − Σ_t δ_t·s_{t−1}   (second term: subtract only)

The reset uses the detached previous spike, as the reference, so no gradient flows through
it. Membrane quantization is straight-through, so the scan is unchanged. The clamp of β to
[0, 1] stays outside (ordinary autograd). Two implementations: ``CompiledLIF`` runs the numba
kernels of ``kernels.py`` (CPU), ``FusedLIF`` runs torch ops step by step (CUDA, membrane
quantization, any surrogate). Tests check both against ``lif_sequence`` in every case.
"""
from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from . import kernels
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


class CompiledLIF(torch.autograd.Function):
    """The same recurrence and adjoint as FusedLIF, run by the numba kernels (CPU, float32/64).

    With ``steps`` given, ``currents`` is one [B, ...] current repeated for ``steps`` steps
    (static input) and its gradient is Σ_t δ_t, summed inside the kernel. With ``keep_mems``
    false (and β, θ not learned), the membranes are neither returned (None) nor stored: the
    backward recomputes them chunk by chunk from the currents, which halves the memory traffic.
    ``reuse_currents`` (the caller holds no other reference to ``currents``) lets that backward
    write δ over the stored currents, each chunk after it has read them: one [T, B, ...] buffer
    fewer at the peak of the backward. A second backward through the same graph then raises.
    """

    @staticmethod
    def forward(ctx, currents: Tensor, beta: Tensor, threshold: Tensor, surrogate: Surrogate,
                reset: str, steps: int | None, keep_mems: bool,
                reuse_currents: bool = False) -> tuple[Tensor, Tensor | None]:
        static = steps is not None
        shape = (steps, *currents.shape) if static else tuple(currents.shape)
        source = currents.detach().contiguous().reshape(1 if static else shape[0], -1)
        keep_mems = keep_mems or ctx.needs_input_grad[1] or ctx.needs_input_grad[2]  # their sums read u_t
        spikes = torch.empty(shape, dtype=currents.dtype)
        mems = torch.empty(shape if keep_mems else (1, 1), dtype=currents.dtype)
        _use_torch_threads()
        kernels.lif_forward(source.numpy(), static, _consts(beta, threshold, source), reset == "subtract",
                            keep_mems, mems.view(len(mems), -1).numpy(), spikes.view(shape[0], -1).numpy())
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(mems if keep_mems else source, beta, threshold)
        ctx.surrogate, ctx.reset, ctx.static, ctx.input_shape = surrogate, reset, static, currents.shape
        ctx.recompute, ctx.steps = not keep_mems, shape[0]
        ctx.reuse, ctx.reused = ctx.recompute and reuse_currents and not static, False
        return spikes, (mems if keep_mems else None)

    @staticmethod
    def backward(ctx, grad_spikes: Tensor | None, grad_mems: Tensor | None):
        none = (None,) * 8
        if grad_spikes is None and grad_mems is None:
            return none
        stored, beta, threshold = ctx.saved_tensors
        steps, subtract = ctx.steps, ctx.reset == "subtract"
        consts = _consts(beta, threshold, stored)
        params = kernels.surrogate_params(ctx.surrogate, consts.dtype)
        kind = kernels.KERNEL_INDEX[ctx.surrogate.name]
        empty = np.zeros((1, 1), dtype=consts.dtype)
        width = stored.view(len(stored), -1).shape[1]
        g_s = empty if grad_spikes is None else grad_spikes.contiguous().view(steps, -1).numpy()
        _use_torch_threads()
        if ctx.recompute:  # grad_mems is None: the membranes were not an output
            if ctx.reuse:
                if ctx.reused:
                    raise RuntimeError("CompiledLIF: this graph's currents were overwritten by its first backward; "
                                       "run the forward again instead of backward(retain_graph=True)")
                ctx.reused, delta = True, stored.view(steps, width)
            else:
                delta = torch.empty((1 if ctx.static else steps, width), dtype=stored.dtype)
            kernels.lif_backward_recompute(stored.numpy(), ctx.static, steps, consts, subtract, g_s, kind, params,
                                           delta.numpy())
            return (delta.view(ctx.input_shape), *none[1:])
        flat = stored.view(steps, -1)
        g_m = empty if grad_mems is None else grad_mems.contiguous().view(steps, -1).numpy()
        want_params = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        static_sum = ctx.static and not want_params  # the parameter sums need every δ_t
        delta = torch.empty((1 if static_sum else steps, width), dtype=stored.dtype)
        kernels.lif_backward(flat.numpy(), g_s, g_m, grad_spikes is not None, grad_mems is not None, consts,
                             subtract, kind, params, static_sum, delta.numpy())
        if static_sum:
            grad_input = delta[0].view(ctx.input_shape)
        elif ctx.static:
            grad_input = delta.sum(0).view(ctx.input_shape)
        else:
            grad_input = delta.view(ctx.input_shape)
        grad_beta = grad_threshold = None
        if want_params:
            sums = np.zeros(((width + kernels.CHUNK - 1) // kernels.CHUNK, 4))
            kernels.lif_param_sums(flat.numpy(), g_s, grad_spikes is not None,
                                   delta.numpy(), consts, kind, params, sums)
            beta_sub, beta_zero, spike_sum, reset_sum = sums.sum(axis=0)
            if ctx.needs_input_grad[1]:
                grad_beta = torch.tensor(beta_sub if subtract else beta_zero, dtype=beta.dtype).reshape(beta.shape)
            if ctx.needs_input_grad[2]:
                value = -spike_sum - (reset_sum if subtract else 0.0)
                grad_threshold = torch.tensor(value, dtype=threshold.dtype).reshape(threshold.shape)
        return grad_input, grad_beta, grad_threshold, None, None, None, None, None


def _compiled_spikes_only(currents: Tensor, beta: Tensor, threshold: Tensor, reset: str,
                          steps: int | None, reuse_currents: bool) -> Tensor:
    """Inference: the forward kernel without storing membranes. With ``reuse_currents`` (and a
    current per step) the spikes are written over the currents: the kernel reads I_t of a chunk
    before it writes s_t there, so one [T, B, ...] buffer serves both."""
    static = steps is not None
    shape = (steps, *currents.shape) if static else tuple(currents.shape)
    source = currents.contiguous().reshape(1 if static else shape[0], -1)
    spikes = source.view(shape) if reuse_currents and not static else torch.empty(shape, dtype=currents.dtype)
    _use_torch_threads()
    kernels.lif_forward(source.numpy(), static, _consts(beta, threshold, source), reset == "subtract",
                        False, spikes.view(shape[0], -1).numpy()[:1, :1], spikes.view(shape[0], -1).numpy())
    return spikes


def _consts(beta: Tensor, threshold: Tensor, like: Tensor) -> np.ndarray:
    """(β, θ, 1, 0) in the data's dtype, so the kernels never promote to float64."""
    return np.array([float(beta), float(threshold), 1.0, 0.0], dtype=like.numpy().dtype)


def warm_up() -> None:
    """Start numba's thread pool and load the CPU kernels now (once per process), so that the
    first training step does not pay for it."""
    _use_torch_threads()
    kernels.load()


def _use_torch_threads() -> None:
    """Run the kernels on torch's intra-op thread count. Launching numba's OpenMP pool (on the
    first call in a process) resets torch's count to all cores, so the caller's is put back."""
    threads = torch.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def compiled_kernel_applies(currents: Tensor, surrogate: Surrogate, mem_bits: int) -> bool:
    """The numba kernels cover CPU float32/64 without membrane quantization, for registered shapes."""
    return (currents.device.type == "cpu" and currents.dtype in (torch.float32, torch.float64)
            and mem_bits == 32 and surrogate.name in kernels.KERNEL_INDEX)


def fused_lif(currents: Tensor, beta: Tensor, threshold: Tensor, surrogate: Surrogate,
              reset: str = "subtract", mem_bits: int = 32, steps: int | None = None,
              compiled: bool = True, keep_mems: bool = True,
              reuse_currents: bool = False) -> tuple[Tensor, Tensor | None]:
    """currents [T, B, ...] → (spikes, membranes); same values and gradients as ``lif_sequence``.

    ``steps``: ``currents`` is a single [B, ...] current repeated for that many steps. The numba
    kernels run where they apply (``compiled``); elsewhere (CUDA, membrane quantization) the
    torch-op Function does. ``keep_mems=False`` lets the numba path skip the membranes (returned
    as None) to save memory traffic; the torch-op path always returns them. ``reuse_currents``:
    the caller holds no other reference to ``currents``, whose buffer the numba path may then
    overwrite: with their gradient in the backward (see ``CompiledLIF``), or, in inference without
    membranes, with the spikes themselves.
    """
    beta = beta.clamp(0, 1)
    if compiled and compiled_kernel_applies(currents, surrogate, mem_bits):
        if not keep_mems and not torch.is_grad_enabled():
            return _compiled_spikes_only(currents, beta, threshold, reset, steps, reuse_currents), None
        return CompiledLIF.apply(currents, beta, threshold, surrogate, reset, steps, keep_mems, reuse_currents)
    if steps is not None:
        currents = currents.unsqueeze(0).expand(steps, *currents.shape)
    return FusedLIF.apply(currents, beta, threshold, surrogate, reset, mem_bits)

