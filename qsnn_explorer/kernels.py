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
import functools
import math

import numpy as np
from numba import njit, prange

CHUNK = 2048  # neurons per parallel work item: 8 KB of float32 per time step
# error_model="numpy": x / 0 gives inf as torch does, and no zero-division check (a branch that
# raises) sits in the loops, so LLVM vectorizes them.
_KERNEL = dict(cache=True, nogil=True, error_model="numpy")
_INLINE = dict(cache=True, inline="always", error_model="numpy")


# Constants are float32 so float32 data stays float32 (a bare 1 or math.pi would promote to float64).
_1, _2, _4, _PI = np.float32(1), np.float32(2), np.float32(4), np.float32(math.pi)


@njit(**_INLINE)
def _fast_sigmoid(v, p):   # γ / (1 + k|v|)²
    d = p[0] * abs(v) + _1
    return p[1] / (d * d)


@njit(**_INLINE)
def _atan(v, p):           # γ·(α/2) / (1 + (π/2·α·v)²)
    x = _PI / _2 * p[0] * v
    return p[1] * (p[0] / _2) / (_1 + x * x)


@njit(**_INLINE)
def _triangular(v, p):     # γ·max(0, 1 − |βv|)
    return p[1] * max(_1 - _1, _1 - abs(p[0] * v))


@njit(**_INLINE)
def _exponential(v, p):    # γ·e^(−2|βv|)
    return p[1] * math.exp(-_2 * abs(p[0] * v))


@njit(**_INLINE)
def _hc_fast_sigmoid(v, p):  # γ / (1 + 2|βv|)²
    d = _1 + _2 * abs(p[0] * v)
    return p[1] / (d * d)


@njit(**_INLINE)
def _gaussian(v, p):       # γ·e^(−π(βv)²)
    x = p[0] * v
    return p[1] * math.exp(-_PI * x * x)


@njit(**_INLINE)
def _sigmoid(v, p):        # 4γ·σ(4βv)(1 − σ(4βv))
    sig = _1 / (_1 + math.exp(-_4 * p[0] * v))
    return _4 * p[1] * sig * (_1 - sig)


@njit(**_INLINE)
def _rectangular(v, p):    # γ·1[|2βv| < 1]
    return p[1] if abs(_2 * p[0] * v) < _1 else p[1] - p[1]


@njit(**_INLINE)
def _q_pseudospike(v, p):  # γ / (1 + |βv|/((q − 1)/2))^q
    return p[1] * (_1 + abs(p[0] * v) / ((p[2] - _1) / _2)) ** -p[2]


@njit(**_INLINE)
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


@njit(**_INLINE)
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


def surrogate_params(surrogate, dtype) -> tuple:
    """The surrogate's dataclass fields, in order, padded to 4, as scalars of the data's dtype
    (a tuple is a value: the compiler keeps it in registers and never reloads it in a loop)."""
    fields = dataclasses.astuple(surrogate)
    return tuple(np.dtype(dtype).type(v) for v in fields + (0.0,) * (4 - len(fields)))


@njit(**_KERNEL)
def _surrogate_row(kind, u, theta, p, out):
    """out[j] = σ'(u[j] − θ) of the surrogate ``kind``: the dispatch sits outside the loops, so each
    loop is one simple vectorizable pass (a branch on ``kind`` inside the loop blocks that)."""
    if kind == 0:
        for j in range(len(out)):
            out[j] = _fast_sigmoid(u[j] - theta, p)
    elif kind == 1:
        for j in range(len(out)):
            out[j] = _atan(u[j] - theta, p)
    elif kind == 2:
        for j in range(len(out)):
            out[j] = _triangular(u[j] - theta, p)
    elif kind == 3:
        for j in range(len(out)):
            out[j] = _exponential(u[j] - theta, p)
    elif kind == 4:
        for j in range(len(out)):
            out[j] = _hc_fast_sigmoid(u[j] - theta, p)
    elif kind == 5:
        for j in range(len(out)):
            out[j] = _gaussian(u[j] - theta, p)
    elif kind == 6:
        for j in range(len(out)):
            out[j] = _sigmoid(u[j] - theta, p)
    elif kind == 7:
        for j in range(len(out)):
            out[j] = _rectangular(u[j] - theta, p)
    elif kind == 8:
        for j in range(len(out)):
            out[j] = _q_pseudospike(u[j] - theta, p)
    else:
        for j in range(len(out)):
            out[j] = _adali(u[j] - theta, p)


@njit(**_KERNEL)
def _forward_chunk(cur, static, lo, hi, steps, consts, subtract, mems, mem_lo, keep_mems, spikes, keep_spikes):
    """The LIF recurrence for neurons [lo, hi): membranes into ``mems[t, mem_lo:]``, spikes into
    ``spikes[t, lo:hi]`` (each only when asked). The one place the forward arithmetic is written,
    so a recomputation in the backward equals the forward bit for bit."""
    n = hi - lo
    beta, theta, one, zero = consts[0], consts[1], consts[2], consts[3]
    u = np.zeros(n, dtype=consts.dtype)
    s = np.zeros(n, dtype=consts.dtype)
    for t in range(steps):
        c = cur[0 if static else t, lo:hi]
        if t == 0:
            for j in range(n):
                u[j] = c[j]
        elif subtract:
            for j in range(n):
                u[j] = (beta * u[j] + c[j]) - theta * s[j]
        else:
            for j in range(n):
                u[j] = beta * ((one - s[j]) * u[j]) + c[j]
        for j in range(n):
            s[j] = one if u[j] > theta else zero
        if keep_spikes:
            out = spikes[t, lo:hi]
            for j in range(n):
                out[j] = s[j]
        if keep_mems:
            out = mems[t, mem_lo:mem_lo + n]
            for j in range(n):
                out[j] = u[j]


@njit(**_KERNEL)
def _adjoint_chunk(mems, mem_lo, lo, hi, grad_s, grad_m, has_s, has_m, consts, subtract, kind, p, static, delta):
    """Reverse scan for neurons [lo, hi), their membranes in ``mems[:, mem_lo:]``; s_t = u_t > θ."""
    steps, n = len(mems), hi - lo
    beta, theta, one, zero = consts[0], consts[1], consts[2], consts[3]
    a = np.zeros(n, dtype=consts.dtype)       # δ of the step being processed
    total = np.zeros(n, dtype=consts.dtype)   # Σ_t δ_t (static input)
    grad = np.empty(n, dtype=consts.dtype)    # σ'(u_t − θ)
    for t in range(steps - 1, -1, -1):
        u = mems[t, mem_lo:mem_lo + n]
        if t < steps - 1:  # a holds δ_{t+1}: scale it by c_{t+1}
            if subtract:
                for j in range(n):
                    a[j] = beta * a[j]
            else:
                for j in range(n):
                    a[j] = beta * (one - (one if u[j] > theta else zero)) * a[j]
        if has_s:
            _surrogate_row(kind, u, theta, p, grad)
            g = grad_s[t, lo:hi]
            for j in range(n):
                a[j] += g[j] * grad[j]
        if has_m:
            g = grad_m[t, lo:hi]
            for j in range(n):
                a[j] += g[j]
        if static:
            for j in range(n):
                total[j] += a[j]
        else:
            out = delta[t, lo:hi]
            for j in range(n):
                out[j] = a[j]
    if static:
        out = delta[0, lo:hi]
        for j in range(n):
            out[j] = total[j]


@njit(parallel=True, **_KERNEL)
def lif_forward(cur, static, consts, subtract, keep_mems, mems, spikes):
    """u[t] = (β·u[t−1] + I[t]) − θ·s[t−1]  or  β·((1 − s[t−1])·u[t−1]) + I[t];  s[t] = u[t] > θ.

    ``cur`` is [T, M] ([1, M] when ``static``), ``spikes`` [T, M]; ``mems`` [T, M] is written only
    with ``keep_mems``. ``consts`` = (β, θ, 1, 0) in the data's dtype, so all arithmetic stays in
    it; with s ∈ {0, 1} these branch-free forms round exactly as ``lif_step``.
    """
    steps, size = spikes.shape
    for c in prange((size + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(size, (c + 1) * CHUNK)
        _forward_chunk(cur, static, lo, hi, steps, consts, subtract, mems, lo, keep_mems, spikes, True)


@njit(parallel=True, **_KERNEL)
def lif_backward(mems, grad_s, grad_m, has_s, has_m, consts, subtract, kind, p, static, delta):
    """Reverse scan δ_t = a_t + c_{t+1}·δ_{t+1}, a_t = ∂L/∂s_t·σ'(u_t − θ) + ∂L/∂u_t, from stored
    membranes [T, M]; c_{t+1} = β (subtract) or β·(1 − s_t) (zero).

    ``delta`` is [T, M], or [1, M] with ``static``, which then receives the input gradient Σ_t δ_t.
    ``kind`` selects the surrogate (KERNEL_INDEX); ``p`` holds its fields (``surrogate_params``).
    """
    steps, size = mems.shape
    for c in prange((size + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(size, (c + 1) * CHUNK)
        _adjoint_chunk(mems, lo, lo, hi, grad_s, grad_m, has_s, has_m, consts, subtract, kind, p, static, delta)


@njit(parallel=True, **_KERNEL)
def lif_backward_recompute(cur, static, steps, consts, subtract, grad_s, kind, p, delta):
    """The adjoint of ``lif_forward`` without stored membranes: each chunk first recomputes its
    membranes from the currents ``cur`` ([T, M], or [1, M] when ``static``) into a small scratch
    that stays in cache, then scans back. ``delta`` as in ``lif_backward`` (Σ_t δ_t when static).
    Saves writing and re-reading a [T, M] membrane tensor: the layer stays memory-bound on spikes
    and ∂L/∂s alone."""
    size = grad_s.shape[1]
    for c in prange((size + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(size, (c + 1) * CHUNK)
        scratch = np.empty((steps, hi - lo), dtype=consts.dtype)
        _forward_chunk(cur, static, lo, hi, steps, consts, subtract, scratch, 0, True, scratch, False)
        _adjoint_chunk(scratch, 0, lo, hi, grad_s, grad_s, True, False, consts, subtract, kind, p, static, delta)


@njit(parallel=True, fastmath={"reassoc", "nsz"}, **_KERNEL)
def lif_param_sums(mems, grad_s, has_s, delta, consts, kind, p, sums):
    """Per chunk: Σ δ_t·keep_{t−1}·u_{t−1} (∂L/∂β), Σ ∂L/∂s·σ' and Σ δ_t·s_{t−1} (for ∂L/∂θ); delta [T, M].
    s_{t−1} = u_{t−1} > θ, as in the forward."""
    steps, size = mems.shape
    theta, one, zero = consts[1], consts[2], consts[3]
    for c in prange((size + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(size, (c + 1) * CHUNK)
        beta_sum, spike_sum, reset_sum, beta_zero_sum = 0.0, 0.0, 0.0, 0.0
        for t in range(steps):
            for i in range(lo, hi):
                if has_s:
                    spike_sum += grad_s[t, i] * _surrogate_grad(kind, mems[t, i] - theta, p)
                if t >= 1:
                    fired = one if mems[t - 1, i] > theta else zero
                    beta_sum += delta[t, i] * mems[t - 1, i]
                    beta_zero_sum += delta[t, i] * (one - fired) * mems[t - 1, i]
                    reset_sum += delta[t, i] * fired
        sums[c, 0], sums[c, 1], sums[c, 2], sums[c, 3] = beta_sum, beta_zero_sum, spike_sum, reset_sum


@functools.cache
def load() -> None:
    """Load the float32 kernels now (≈ 0.4 s once per process: numba's first dispatch imports its
    typing registries, then reads the on-disk cache), so a first training step does not pay it."""
    f32 = np.float32
    cur, consts = np.zeros((1, 4), f32), np.array([0.9, 1.0, 1.0, 0.0], f32)
    out, scalar = np.zeros((2, 4), f32), np.zeros((1, 1), f32)
    params = (f32(25.0), f32(1.0), f32(0.0), f32(0.0))  # fast_sigmoid's, padded as surrogate_params does
    lif_forward(cur, True, consts, True, True, out, out.copy())
    lif_backward(out, out, scalar, True, False, consts, True, 0, params, True, np.zeros((1, 4), f32))
    lif_backward_recompute(cur, True, 2, consts, True, out, 0, params, np.zeros((1, 4), f32))

