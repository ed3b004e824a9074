"""CPU kernels for the fused LIF layer, compiled once by numba and cached on disk.

numba specializes on dtype and rank, never on shape, so a new batch size or layer width runs
at once; a kernel compiles in about a second the first time on a machine, then loads from the
on-disk cache. Work is split into chunks of neurons (parallel); within a chunk time runs outer
and neurons inner (vectorized), so the state of step t−1 is still in cache at step t.

Forward arithmetic is done in the array's dtype in the same order as ``neurons.lif_step``, so
membranes and spikes equal the reference bit for bit. Each surrogate derivative is a scalar
function of ``v = u − θ`` and the surrogate's dataclass fields ``p`` (in declaration order);
``KERNEL_INDEX`` lists the registry names that have one. Any other surrogate uses the torch path.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from numba import njit, prange

CHUNK = 2048  # neurons per parallel work item: 8 KB of float32 per time step


# Constants are float32 so float32 data stays float32 (a bare 1 or math.pi would promote to float64).
_1, _2, _4, _PI = np.float32(1), np.float32(2), np.float32(4), np.float32(math.pi)


@njit(cache=True, inline="always")
def _fast_sigmoid(v, p):   # γ / (1 + k|v|)²
    d = p[0] * abs(v) + _1
    return p[1] / (d * d)


@njit(cache=True, inline="always")
def _atan(v, p):           # γ·(α/2) / (1 + (π/2·α·v)²)
    x = _PI / _2 * p[0] * v
    return p[1] * (p[0] / _2) / (_1 + x * x)


@njit(cache=True, inline="always")
def _triangular(v, p):     # γ·max(0, 1 − |βv|)
    return p[1] * max(_1 - _1, _1 - abs(p[0] * v))


@njit(cache=True, inline="always")
def _exponential(v, p):    # γ·e^(−2|βv|)
    return p[1] * math.exp(-_2 * abs(p[0] * v))


@njit(cache=True, inline="always")
def _hc_fast_sigmoid(v, p):  # γ / (1 + 2|βv|)²
    d = _1 + _2 * abs(p[0] * v)
    return p[1] / (d * d)


@njit(cache=True, inline="always")
def _gaussian(v, p):       # γ·e^(−π(βv)²)
    x = p[0] * v
    return p[1] * math.exp(-_PI * x * x)


@njit(cache=True, inline="always")
def _sigmoid(v, p):        # 4γ·σ(4βv)(1 − σ(4βv))
    sig = _1 / (_1 + math.exp(-_4 * p[0] * v))
    return _4 * p[1] * sig * (_1 - sig)


@njit(cache=True, inline="always")
def _rectangular(v, p):    # γ·1[|2βv| < 1]
    return p[1] if abs(_2 * p[0] * v) < _1 else p[1] - p[1]


@njit(cache=True, inline="always")
def _q_pseudospike(v, p):  # γ / (1 + |βv|/((q − 1)/2))^q
    return p[1] * (_1 + abs(p[0] * v) / ((p[2] - _1) / _2)) ** -p[2]


@njit(cache=True, inline="always")
def _adali(v, p):          # α/L on [−L, 0), β/R on [0, R]
    if -p[0] <= v < 0:
        return p[2] / p[0]
    if 0 <= v <= p[1]:
        return p[3] / p[1]
    return p[2] - p[2]


# Surrogates with a compiled scalar form, by registry name → index into ``_surrogate_grad``.
# A first-class function argument would recompile (≈1.5 s) in every new process: numba's disk
# cache keeps one kernel for an integer index. Other surrogates use the torch-op fast path.
KERNEL_INDEX = {name: i for i, name in enumerate((
    "fast_sigmoid", "atan", "triangular", "exponential", "hc_fast_sigmoid", "gaussian",
    "sigmoid", "rectangular", "q_pseudospike", "adali"))}


@njit(cache=True, inline="always")
def _surrogate_grad(kind, v, p):
    """σ'(v) of the surrogate with index ``kind`` in KERNEL_INDEX."""
    if kind == 0:
        return _fast_sigmoid(v, p)
    if kind == 1:
        return _atan(v, p)
    if kind == 2:
        return _triangular(v, p)
    if kind == 3:
        return _exponential(v, p)
    if kind == 4:
        return _hc_fast_sigmoid(v, p)
    if kind == 5:
        return _gaussian(v, p)
    if kind == 6:
        return _sigmoid(v, p)
    if kind == 7:
        return _rectangular(v, p)
    if kind == 8:
        return _q_pseudospike(v, p)
    return _adali(v, p)


def surrogate_params(surrogate, dtype) -> np.ndarray:
    """The surrogate's dataclass fields, in order, as an array of the data's dtype."""
    return np.array(dataclasses.astuple(surrogate), dtype=dtype)


@njit(parallel=True, cache=True, nogil=True)
def lif_forward(cur, static, consts, subtract, keep_mems, mems, spikes):
    """u[t] = (β·u[t−1] + I[t]) − θ·s[t−1]  or  β·((1 − s[t−1])·u[t−1]) + I[t];  s[t] = u[t] > θ.

    ``cur`` is [T, M] ([1, M] when ``static``), ``spikes`` [T, M]; ``mems`` [T, M] is written only
    with ``keep_mems`` (training, probes). ``consts`` = (β, θ, 1, 0) in the data's dtype, so all
    arithmetic stays in it; with s ∈ {0, 1} these branch-free forms round exactly as ``lif_step``.
    The state of each chunk lives in small local buffers between steps.
    """
    steps, size = spikes.shape
    beta, theta, one, zero = consts[0], consts[1], consts[2], consts[3]
    for c in prange((size + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(size, (c + 1) * CHUNK)
        u = np.zeros(hi - lo, dtype=spikes.dtype)
        s = np.zeros(hi - lo, dtype=spikes.dtype)
        for t in range(steps):
            row = 0 if static else t
            if t == 0:
                for j in range(hi - lo):
                    u[j] = cur[row, lo + j]
            elif subtract:
                for j in range(hi - lo):
                    u[j] = (beta * u[j] + cur[row, lo + j]) - theta * s[j]
            else:
                for j in range(hi - lo):
                    u[j] = beta * ((one - s[j]) * u[j]) + cur[row, lo + j]
            for j in range(hi - lo):
                s[j] = one if u[j] > theta else zero
                spikes[t, lo + j] = s[j]
            if keep_mems:
                for j in range(hi - lo):
                    mems[t, lo + j] = u[j]


@njit(parallel=True, cache=True, nogil=True)
def lif_backward(mems, spikes, grad_s, grad_m, has_s, has_m, consts, subtract, kind, p, static, delta):
    """Reverse scan δ_t = a_t + c_{t+1}·δ_{t+1}, a_t = ∂L/∂s_t·σ'(u_t − θ) + ∂L/∂u_t.

    c_{t+1} = β (subtract) or β·(1 − s_t) (zero). ``delta`` is [T, M], or [1, M] with ``static``,
    which then receives the input gradient Σ_t δ_t. Each chunk keeps δ_{t+1} in a small local
    buffer, so every inner loop is a simple vectorizable pass over cached data.
    ``kind`` selects the surrogate (KERNEL_INDEX); ``p`` holds its dataclass fields in order.
    """
    steps, size = mems.shape
    beta, theta, one = consts[0], consts[1], consts[2]
    for c in prange((size + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(size, (c + 1) * CHUNK)
        a = np.zeros(hi - lo, dtype=mems.dtype)
        total = np.zeros(hi - lo, dtype=mems.dtype)
        for t in range(steps - 1, -1, -1):
            if t < steps - 1:  # a currently holds δ_{t+1}: scale it by c_{t+1}
                if subtract:
                    for j in range(hi - lo):
                        a[j] = beta * a[j]
                else:
                    for j in range(hi - lo):
                        a[j] = beta * (one - spikes[t, lo + j]) * a[j]
            if has_s:
                for j in range(hi - lo):
                    a[j] += grad_s[t, lo + j] * _surrogate_grad(kind, mems[t, lo + j] - theta, p)
            if has_m:
                for j in range(hi - lo):
                    a[j] += grad_m[t, lo + j]
            if static:
                for j in range(hi - lo):
                    total[j] += a[j]
            else:
                for j in range(hi - lo):
                    delta[t, lo + j] = a[j]
        if static:
            for j in range(hi - lo):
                delta[0, lo + j] = total[j]


@njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def lif_param_sums(mems, spikes, grad_s, has_s, delta, consts, kind, p, sums):
    """Per chunk: Σ δ_t·keep_{t−1}·u_{t−1} (∂L/∂β), Σ ∂L/∂s·σ' and Σ δ_t·s_{t−1} (for ∂L/∂θ); delta [T, M]."""
    steps, size = mems.shape
    theta, one = consts[1], consts[2]
    for c in prange((size + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(size, (c + 1) * CHUNK)
        beta_sum, spike_sum, reset_sum, beta_zero_sum = 0.0, 0.0, 0.0, 0.0
        for t in range(steps):
            for i in range(lo, hi):
                if has_s:
                    spike_sum += grad_s[t, i] * _surrogate_grad(kind, mems[t, i] - theta, p)
                if t >= 1:
                    beta_sum += delta[t, i] * mems[t - 1, i]
                    beta_zero_sum += delta[t, i] * (one - spikes[t - 1, i]) * mems[t - 1, i]
                    reset_sum += delta[t, i] * spikes[t - 1, i]
        sums[c, 0], sums[c, 1], sums[c, 2], sums[c, 3] = beta_sum, beta_zero_sum, spike_sum, reset_sum
