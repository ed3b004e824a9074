"""Losses, prediction and sparsity terms on output sequences.

Every loss takes the network's output sequence ``out`` of shape ``[T, B, C]``
(time steps, batch, classes) and integer labels ``y`` of shape ``[B]``, and
returns a scalar tensor averaged over the batch. Which signal ``out`` holds
(output spikes, output membrane, or non-spiking per-step logits) is chosen by
the caller. ``CE`` below is ``torch.nn.functional.cross_entropy`` (log-softmax
over classes, mean over the batch).

Sparsity terms take the hidden layers' spike tensors ``spikes`` (a list of
``[T, B, ...]`` tensors) and a target rate, and return a scalar tensor.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _check(out: Tensor, y: Tensor) -> None:
    if out.dim() != 3:
        raise ValueError(f"out must have shape [T, B, C], got {tuple(out.shape)}")
    if y.shape != out.shape[1:2]:
        raise ValueError(f"y must have shape [B]={tuple(out.shape[1:2])}, got {tuple(y.shape)}")


def _per_step_ce(out: Tensor, y: Tensor) -> Tensor:
    """(1/T)·Σ_t CE(out[t], y), computed in one call on the [T·B, C] view."""
    T, B, C = out.shape
    return F.cross_entropy(out.reshape(T * B, C), y.repeat(T))


def rate_ce(out: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy at every step, averaged over time (snntorch ``ce_rate_loss``).

    L = (1/T)·Σ_t CE(out[t], y).
    """
    _check(out, y)
    return _per_step_ce(out, y)


def count_mse(out: Tensor, y: Tensor, correct: float = 0.8, incorrect: float = 0.2) -> Tensor:
    """Mean-squared error on spike counts (P1; snntorch ``mse_count_loss``).

    c[b, k] = Σ_t out[t, b, k];  target n[b, k] = int(T·correct) if k = y[b]
    else int(T·incorrect);  L = (1/T)·mean_{b,k} (c[b, k] − n[b, k])².

    Matches snntorch exactly, including two of its details: the target counts
    are truncated to integers with ``int()`` (exact for 0.8/0.2 at any T up to
    2000 at least, but e.g. T=3 gives targets 2 and 0), and the mean squared
    error is divided by T.
    """
    _check(out, y)
    T, _, C = out.shape
    on, off = int(T * correct), int(T * incorrect)
    target = torch.full_like(out[0], float(off))
    target.scatter_(1, y.long().unsqueeze(1), float(on))
    return F.mse_loss(out.sum(0), target) / T


def sdt(out: Tensor, y: Tensor) -> Tensor:
    """Standard direct training (P2's baseline): L = CE(mean_t out[t], y)."""
    _check(out, y)
    return F.cross_entropy(out.mean(0), y)


def tet(out: Tensor, y: Tensor, lam: float = 0.0, phi: float = 1.0) -> Tensor:
    """Temporal efficient training (P2), mixed as in the TET reference code.

    L_TET = (1/T)·Σ_t CE(out[t], y);  L_MSE = mean_{t,b,k} (out[t, b, k] − φ)²;
    L = (1 − λ)·L_TET + λ·L_MSE.
    """
    _check(out, y)
    loss = (1.0 - lam) * _per_step_ce(out, y)
    if lam != 0.0:
        loss = loss + lam * (out - phi).pow(2).mean()
    return loss


def sum_ce(out: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy summed over steps (snntorch tutorial, on output membrane).

    L = Σ_t CE(out[t], y) = T·rate_ce(out, y).
    """
    _check(out, y)
    return _per_step_ce(out, y) * out.shape[0]


LOSSES: dict[str, Callable[..., Tensor]] = {
    "rate_ce": rate_ce,
    "count_mse": count_mse,
    "sdt": sdt,
    "tet": tet,
    "sum_ce": sum_ce,
}


def loss_names() -> tuple[str, ...]:
    """Names accepted in ``LOSSES``, in a stable order."""
    return tuple(LOSSES)


def predict(out: Tensor) -> Tensor:
    """Predicted class per sample: argmax_k Σ_t out[t, b, k] -> [B].

    The spike count for spiking outputs; the same argmax as the mean over time
    for logits or membrane. Ties go to the lowest class index.
    """
    if out.dim() != 3:
        raise ValueError(f"out must have shape [T, B, C], got {tuple(out.shape)}")
    return out.sum(0).argmax(-1)


def spike_rate_penalty(spikes: list[Tensor], target: float | None = None) -> Tensor:
    """Mean firing rate of the hidden layers (P5's sparsity term).

    R = (1/L)·Σ_l mean_{t,b,n} s_l[t, b, n], used as L = CE + λ·R.
    P5 publishes no code and not its normalisation: averaging over steps,
    batch and neurons in each layer, then over layers, is this project's
    assumption. ``target`` is accepted for a uniform signature and ignored.
    Returns 0 for an empty list.
    """
    if not spikes:
        return torch.zeros(())
    return torch.stack([s.float().mean() for s in spikes]).mean()


def rate_target_penalty(spikes: list[Tensor], target: float) -> Tensor:
    """Squared distance of each layer's mean rate to a target rate (P4).

    R = Σ_l (mean_{t,b,n} s_l[t, b, n] − target)². Returns 0 for an empty list.
    """
    if not spikes:
        return torch.zeros(())
    return torch.stack([(s.float().mean() - target) ** 2 for s in spikes]).sum()


SPARSITY_TERMS: dict[str, Callable[[list[Tensor], float], Tensor]] = {
    "rate": spike_rate_penalty,
    "target": rate_target_penalty,
}
