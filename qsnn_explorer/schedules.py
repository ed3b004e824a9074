"""Learning-rate and sparsity-weight schedules as pure functions.

They depend only on the step (or the fraction of training done), so the app
can draw them before training starts. Step ``s`` means the ``s``-th optimizer
step, counted from 0: ``lr_at(s, ...)`` is the rate the optimizer holds after
``s`` calls to the matching torch scheduler's ``step()``.
"""

from __future__ import annotations

import math

LR_SCHEDULES = ("constant", "cosine_periodic", "cosine_restarts")
SPARSITY_SCHEDULES = ("constant", "linear", "anneal_20_60", "geometric")


def _check_lr_args(kind: str, period: int, t_mult: int) -> None:
    if kind not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {kind!r}")
    if int(period) != period or period < 1:
        raise ValueError(f"lr_period must be an integer >= 1, got {period!r}")
    if int(t_mult) != t_mult or t_mult < 1:
        raise ValueError(f"lr_t_mult must be an integer >= 1, got {t_mult!r}")


def _cosine(lr: float, lr_min: float, t_cur: float, t_i: float) -> float:
    """η = η_min + (η_max − η_min)·(1 + cos(π·t_cur/t_i))/2."""
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def _cycle(step: int, period: int, t_mult: int) -> tuple[int, int]:
    """SGDR position (T_cur, T_i): cycle lengths period, period·m, period·m², ..."""
    if t_mult == 1:
        return step % period, period
    t_cur, t_i = step, period
    while t_cur >= t_i:
        t_cur, t_i = t_cur - t_i, t_i * t_mult
    return t_cur, t_i


def lr_at(
    step: int, lr: float, kind: str, period: int, t_mult: int = 1, lr_min: float = 0.0
) -> float:
    """Learning rate at optimizer step ``step`` (0-based).

    - ``"constant"``: η = lr.
    - ``"cosine_periodic"`` (P1's reference code): η = lr_min + (lr − lr_min)·
      (1 + cos(π·step/period))/2, never restarted, so η falls to lr_min at
      ``period`` and climbs back to lr at 2·period (period 2·period). This is
      ``CosineAnnealingLR(T_max=period, eta_min=lr_min)`` stepped once per
      iteration and run past T_max. Torch computes it recursively,
      η_t = η_min + (η_{t−1} − η_min)·(1 + cos(πt/T))/(1 + cos(π(t−1)/T)),
      with an additive branch at the minimum where that ratio is 0/0; its
      values stay within ~1e-11 relative of this closed form (its own
      ``_get_closed_form_lr``) over many periods, so no drift needs matching.
    - ``"cosine_restarts"`` (SGDR): η = lr_min + (lr − lr_min)·
      (1 + cos(π·T_cur/T_i))/2, where cycle i lasts T_i = period·t_mult^i
      steps and T_cur counts steps since the cycle began; equal to
      ``CosineAnnealingWarmRestarts(T_0=period, T_mult=t_mult, eta_min=lr_min)``
      stepped once per iteration. η jumps back to lr at each restart.

    ``period`` (field ``lr_period``) must be an integer >= 1 and ``t_mult``
    (``lr_t_mult``) an integer >= 1, for every kind.
    """
    _check_lr_args(kind, period, t_mult)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step!r}")
    if kind == "constant":
        return float(lr)
    if kind == "cosine_periodic":
        return _cosine(lr, lr_min, step, period)
    return _cosine(lr, lr_min, *_cycle(step, period, t_mult))


def restart_steps(kind: str, period: int, t_mult: int, total_steps: int) -> list[int]:
    """Steps in [1, total_steps) that mark a cycle of the schedule.

    - ``"cosine_restarts"``: the steps where a new cycle begins and η jumps
      back to lr: period, period·(1 + m), period·(1 + m + m²), ... (m = t_mult).
      Step 0 is not included.
    - ``"cosine_periodic"``: the steps where η reaches its minimum lr_min:
      period, 3·period, 5·period, ...
    - ``"constant"``: [].
    """
    _check_lr_args(kind, period, t_mult)
    if kind == "constant":
        return []
    if kind == "cosine_periodic":
        return list(range(period, total_steps, 2 * period))
    steps, start, length = [], period, period
    while start < total_steps:
        steps.append(start)
        length *= t_mult
        start += length
    return steps


def lr_curve(
    total_steps: int, lr: float, kind: str, period: int, t_mult: int = 1, lr_min: float = 0.0
) -> list[float]:
    """[lr_at(s, lr, kind, period, t_mult, lr_min) for s in 0 .. total_steps − 1]."""
    _check_lr_args(kind, period, t_mult)
    return [lr_at(s, lr, kind, period, t_mult, lr_min) for s in range(total_steps)]


def sparsity_weight_at(progress: float, weight: float, kind: str) -> float:
    """Weight λ of the sparsity term after a fraction ``progress`` of training.

    ``progress`` p is clamped to [0, 1].
    - ``"constant"``: λ = w.
    - ``"linear"``: λ = w·p.
    - ``"anneal_20_60"`` (P4): λ = w·clamp((p − 0.2)/(0.6 − 0.2), 0, 1): 0
      before 20 % of training, a linear ramp to w at 60 %, then w.
    - ``"geometric"``: λ = w·(1e-3)^(1 − p), growing geometrically from w/1000
      to w. P5 calls its schedule simulated-annealing-inspired but does not
      publish it: this form is this project's assumption.
    """
    if kind not in SPARSITY_SCHEDULES:
        raise ValueError(f"sparsity_schedule must be one of {SPARSITY_SCHEDULES}, got {kind!r}")
    p = min(1.0, max(0.0, float(progress)))
    if kind == "constant":
        return float(weight)
    if kind == "linear":
        return weight * p
    if kind == "anneal_20_60":
        return weight * min(1.0, max(0.0, (p - 0.2) / (0.6 - 0.2)))
    return weight * 1e-3 ** (1.0 - p)
