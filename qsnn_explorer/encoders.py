"""Encoders: a static batch ``x`` [B, C, H, W] in [0, 1] → an input sequence [T, B, ...].

- direct:  x[t] = x (the image is the input current at every step; P1, P2, snntorch tutorial)
- rate:    x[t] ~ Bernoulli(x), independent over t
- latency: one spike at t = round((1 − x)·(T − 1)) for pixels with x > 0.01 (brighter → earlier)
- rows:    x[t] = row ⌊t·H/T⌋ of the image, [B, C, 1, W] (sequential digits, P4's recurrent task)

Event data (already [B, T, C, H, W]) bypasses the encoder and is only moved to [T, B, ...].
"""
from __future__ import annotations

import torch
from torch import Tensor

LATENCY_FLOOR = 0.01


def step_shape(input_shape: tuple[int, ...], encoder: str) -> tuple[int, ...]:
    """Shape of one time step of the encoded input, per sample."""
    if encoder == "rows":
        c, _, w = input_shape
        return (c, 1, w)
    return tuple(input_shape)


def encode(x: Tensor, num_steps: int, encoder: str, generator: torch.Generator | None = None) -> Tensor:
    """Turn a static batch into a [T, B, ...] sequence (``direct`` returns an expanded view)."""
    if encoder == "direct":
        return x.unsqueeze(0).expand(num_steps, *x.shape)
    if encoder == "rate":
        probs = x.unsqueeze(0).expand(num_steps, *x.shape)
        return torch.bernoulli(probs, generator=generator)
    if encoder == "latency":
        t_spike = torch.round((1 - x.clamp(0, 1)) * (num_steps - 1)).long()
        steps = torch.arange(num_steps, device=x.device).view(-1, *([1] * x.dim()))
        return ((steps == t_spike) & (x > LATENCY_FLOOR)).to(x.dtype)
    if encoder == "rows":
        height = x.shape[-2]
        rows = torch.arange(num_steps, device=x.device) * height // num_steps
        return x[..., rows, :].permute(2, 0, 1, 3).unsqueeze(3)  # [B, C, T, W] → [T, B, C, 1, W]
    raise ValueError(f"encoder={encoder!r} is not allowed; allowed: direct, rate, latency, rows")


def events_to_sequence(x: Tensor) -> Tensor:
    """Event frames [B, T, C, H, W] (uint8) → float sequence [T, B, C, H, W]."""
    return x.transpose(0, 1).float()
