"""LR and sparsity schedules: parity with torch schedulers and hand cases."""

import math

import pytest
import torch

from qsnn_explorer import schedules as S


def _torch_lrs(make_sched, lr, n):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=lr)
    sched = make_sched(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def _assert_close(ours, ref):
    assert len(ours) == len(ref)
    for s, (a, b) in enumerate(zip(ours, ref)):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-15), f"step {s}"


@pytest.mark.parametrize("period,lr_min", [(1, 0.0), (3, 1e-4), (10, 0.0), (37, 1e-5), (100, 2e-4)])
def test_cosine_periodic_matches_torch(period, lr_min):
    lr, n = 3e-3, max(5 * period, 60)
    ref = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=period, eta_min=lr_min), lr, n
    )
    _assert_close(S.lr_curve(n, lr, "cosine_periodic", period, lr_min=lr_min), ref)


def test_cosine_periodic_shape():
    lr = 1.0
    assert S.lr_at(0, lr, "cosine_periodic", 10) == 1.0
    assert S.lr_at(5, lr, "cosine_periodic", 10) == pytest.approx(0.5)
    assert S.lr_at(10, lr, "cosine_periodic", 10) == pytest.approx(0.0, abs=1e-15)
    assert S.lr_at(15, lr, "cosine_periodic", 10) == pytest.approx(0.5)
    assert S.lr_at(20, lr, "cosine_periodic", 10) == pytest.approx(1.0)
    assert S.lr_at(10, lr, "cosine_periodic", 10, lr_min=0.1) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "period,t_mult,lr_min",
    [(1, 1, 0.0), (5, 1, 0.0), (50, 1, 1e-4), (7, 2, 1e-4), (3, 2, 1e-5), (10, 3, 0.0)],
)
def test_cosine_restarts_matches_torch(period, t_mult, lr_min):
    lr, n = 5e-3, 400
    ref = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            o, T_0=period, T_mult=t_mult, eta_min=lr_min
        ),
        lr,
        n,
    )
    _assert_close(S.lr_curve(n, lr, "cosine_restarts", period, t_mult, lr_min), ref)


def test_constant():
    assert S.lr_curve(4, 2e-3, "constant", 1) == [2e-3] * 4


def test_restart_steps_hand():
    assert S.restart_steps("cosine_restarts", 3, 2, 30) == [3, 9, 21]
    assert S.restart_steps("cosine_restarts", 4, 1, 13) == [4, 8, 12]
    assert S.restart_steps("cosine_restarts", 4, 1, 12) == [4, 8]
    assert S.restart_steps("cosine_periodic", 4, 1, 20) == [4, 12]
    assert S.restart_steps("constant", 4, 1, 20) == []


@pytest.mark.parametrize("period,t_mult", [(3, 2), (5, 1), (4, 3)])
def test_restart_steps_agree_with_curve(period, t_mult):
    n, lr = 200, 1.0
    curve = S.lr_curve(n, lr, "cosine_restarts", period, t_mult)
    jumps = [s for s in range(1, n) if curve[s] > curve[s - 1]]
    assert S.restart_steps("cosine_restarts", period, t_mult, n) == jumps
    periodic = S.lr_curve(n, lr, "cosine_periodic", period)
    minima = [s for s in range(n) if periodic[s] < 1e-12]
    assert S.restart_steps("cosine_periodic", period, t_mult, n) == minima


def test_lr_errors_name_the_field():
    with pytest.raises(ValueError, match="lr_schedule.*cosine_restarts"):
        S.lr_at(0, 1e-3, "step", 10)
    with pytest.raises(ValueError, match="lr_period"):
        S.lr_at(0, 1e-3, "cosine_periodic", 0)
    with pytest.raises(ValueError, match="lr_period"):
        S.restart_steps("cosine_restarts", 0, 1, 10)
    with pytest.raises(ValueError, match="lr_t_mult"):
        S.lr_at(0, 1e-3, "cosine_restarts", 5, t_mult=0)
    with pytest.raises(ValueError, match="lr_schedule"):
        S.lr_curve(5, 1e-3, "cosine", 5)


PROGRESS = [0.0, 0.1, 0.2, 0.4, 0.6, 1.0]


@pytest.mark.parametrize(
    "kind,expected",
    [
        ("constant", [2.0] * 6),
        ("linear", [0.0, 0.2, 0.4, 0.8, 1.2, 2.0]),
        ("anneal_20_60", [0.0, 0.0, 0.0, 1.0, 2.0, 2.0]),
        ("geometric", [2 * 10**-3, 2 * 10**-2.7, 2 * 10**-2.4, 2 * 10**-1.8, 2 * 10**-1.2, 2.0]),
    ],
)
def test_sparsity_schedule_values(kind, expected):
    got = [S.sparsity_weight_at(p, 2.0, kind) for p in PROGRESS]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_sparsity_schedule_clamps_and_errors():
    assert S.SPARSITY_SCHEDULES == ("constant", "linear", "anneal_20_60", "geometric")
    for kind in S.SPARSITY_SCHEDULES:
        assert S.sparsity_weight_at(-0.5, 2.0, kind) == S.sparsity_weight_at(0.0, 2.0, kind)
        assert S.sparsity_weight_at(1.5, 2.0, kind) == S.sparsity_weight_at(1.0, 2.0, kind)
    assert S.sparsity_weight_at(0.3, 1.0, "anneal_20_60") == pytest.approx(0.25)
    with pytest.raises(ValueError, match="sparsity_schedule"):
        S.sparsity_weight_at(0.5, 1.0, "cosine")
    assert math.isclose(S.sparsity_weight_at(1.0, 3.0, "geometric"), 3.0)
