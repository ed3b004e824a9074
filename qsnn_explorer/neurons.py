"""Leaky integrate-and-fire neurons: the reference physics as a pure step function.

One step, with the reset decided by the previous step's spike (as ``snntorch.Leaky``)::

    subtract:  u[t] = β·u[t−1] + I[t] − θ·sg(s[t−1])
    zero:      u[t] = β·(1 − sg(s[t−1]))·u[t−1] + I[t]
    spike:     s[t] = H(u[t] − θ)   (forward; the surrogate gives ∂s/∂u in the backward)

``sg`` stops the gradient (the reset term is detached). β is clamped to [0, 1]. A recurrent
layer adds ``V·s[t−1]`` to the input current. Optional membrane quantization rounds ``u[t]``
before the spike test. Everything else (layers, fast paths) is checked against ``lif_step``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from .quant import quantize_membrane
from .surrogates import Surrogate


class LIFState(NamedTuple):
    """Membrane ``mem`` and last spike ``spk`` of one layer, both [B, ...]."""

    mem: Tensor
    spk: Tensor


@dataclass(frozen=True)
class LIFParams:
    """Neuron constants for one step; ``beta`` and ``threshold`` may be learnable tensors."""

    beta: Tensor
    threshold: Tensor
    surrogate: Surrogate
    reset: str = "subtract"
    mem_bits: int = 32


def initial_state(like: Tensor) -> LIFState:
    """Resting state: zero membrane, no spike."""
    zeros = torch.zeros_like(like)
    return LIFState(zeros, zeros)


def lif_step(current: Tensor, state: LIFState, p: LIFParams) -> tuple[Tensor, LIFState]:
    """Advance one time step; returns the spike and the new state."""
    beta = p.beta.clamp(0, 1)
    reset = state.spk.detach()
    if p.reset == "subtract":
        mem = beta * state.mem + current - reset * p.threshold
    elif p.reset == "zero":
        mem = beta * ((1 - reset) * state.mem) + current
    else:
        raise ValueError(f"reset={p.reset!r} is not allowed; allowed: subtract, zero")
    if p.mem_bits != 32:
        mem = quantize_membrane(mem, p.mem_bits, float(p.threshold.detach().mean()))
    spk = p.surrogate(mem - p.threshold)
    return spk, LIFState(mem, spk)


def lif_sequence(currents: Tensor, p: LIFParams, recurrent: torch.nn.Module | None = None
                 ) -> tuple[Tensor, Tensor]:
    """Run ``lif_step`` over the time axis of ``currents`` [T, B, ...] → (spikes, membranes), both [T, B, ...].

    With ``recurrent`` (a linear map of the previous spikes), the current at step t is
    ``currents[t] + recurrent(s[t−1])``.
    """
    state = initial_state(currents[0])
    spikes, mems = [], []
    for current in currents:
        if recurrent is not None:
            current = current + recurrent(state.spk)
        spk, state = lif_step(current, state, p)
        spikes.append(spk)
        mems.append(state.mem)
    return torch.stack(spikes), torch.stack(mems)
