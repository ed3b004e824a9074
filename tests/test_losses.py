"""Losses, prediction and sparsity terms: hand-computed cases and snntorch parity."""

import math

import pytest
import torch

from qsnn_explorer import losses as L

LN2, LN3, LN5 = math.log(2), math.log(3), math.log(5)


@pytest.fixture
def hand():
    """T=2, B=2, C=3 logits whose softmax values are easy fractions."""
    out = torch.tensor(
        [
            [[LN2, 0.0, 0.0], [0.0, 0.0, 0.0]],
            [[0.0, 0.0, 0.0], [0.0, LN3, 0.0]],
        ],
        dtype=torch.float64,
    )
    y = torch.tensor([0, 1])
    return out, y


# Per-step CE: t=0: b0 p=2/4 -> ln2, b1 p=1/3 -> ln3; t=1: b0 ln3, b1 p=3/5 -> ln(5/3).
# Mean over b and t: (ln2 + ln3 + ln3 + ln5 - ln3)/4 = ln30/4.
RATE_CE = math.log(30) / 4


def test_rate_ce_hand(hand):
    assert L.rate_ce(*hand).item() == pytest.approx(RATE_CE, rel=1e-12)


def test_sum_ce_is_T_times_rate_ce(hand):
    assert L.sum_ce(*hand).item() == pytest.approx(2 * RATE_CE, rel=1e-12)
    out = torch.randn(7, 4, 5)
    y = torch.tensor([0, 4, 2, 2])
    assert L.sum_ce(out, y).item() == pytest.approx(7 * L.rate_ce(out, y).item(), rel=1e-5)


def test_sdt_hand(hand):
    # mean_t: b0 = [ln2/2, 0, 0] -> CE = ln(1 + sqrt2); b1 = [0, ln3/2, 0] -> CE = ln(1 + 2/sqrt3)
    expected = (math.log(1 + math.sqrt(2)) + math.log(1 + 2 / math.sqrt(3))) / 2
    assert L.sdt(*hand).item() == pytest.approx(expected, rel=1e-12)


def test_tet_hand(hand):
    # (out - 1)^2 over 12 entries: ten zeros give 1 each, plus (ln2 - 1)^2 and (ln3 - 1)^2.
    mse = (10 + (LN2 - 1) ** 2 + (LN3 - 1) ** 2) / 12
    assert L.tet(*hand).item() == pytest.approx(RATE_CE, rel=1e-12)
    assert L.tet(*hand, lam=0.0).item() == pytest.approx(L.rate_ce(*hand).item(), rel=1e-12)
    assert L.tet(*hand, lam=1.0).item() == pytest.approx(mse, rel=1e-12)
    assert L.tet(*hand, lam=0.25).item() == pytest.approx(0.75 * RATE_CE + 0.25 * mse, rel=1e-12)
    # phi = 0: mean of squares = (ln2^2 + ln3^2)/12
    assert L.tet(*hand, lam=1.0, phi=0.0).item() == pytest.approx((LN2**2 + LN3**2) / 12, rel=1e-12)


def test_count_mse_hand():
    # T=5: targets int(5*0.8)=4 for the true class, int(5*0.2)=1 for others.
    counts = [[5, 1, 0], [2, 2, 3]]
    out = torch.zeros(5, 2, 3)
    for b, row in enumerate(counts):
        for c, n in enumerate(row):
            out[:n, b, c] = 1.0
    y = torch.tensor([0, 2])
    # squared errors: b0 (1, 0, 1), b1 (1, 1, 1) -> mean 5/6, divided by T=5 -> 1/6
    assert L.count_mse(out, y).item() == pytest.approx(1 / 6, rel=1e-6)
    # correct=1, incorrect=0: targets 5 and 0 -> squared errors b0 (0, 1, 0), b1 (4, 4, 4)
    # -> mean 13/6, divided by T=5 -> 13/30
    assert L.count_mse(out, y, correct=1.0, incorrect=0.0).item() == pytest.approx(13 / 30, rel=1e-6)


@pytest.mark.parametrize("T", [2, 3, 10, 25])
def test_count_mse_equals_snntorch(T):
    sf = pytest.importorskip("snntorch.functional")
    g = torch.Generator().manual_seed(T)
    spk = (torch.rand(T, 6, 4, generator=g) < 0.4).float()
    y = torch.randint(0, 4, (6,), generator=g)
    ref = sf.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)(spk, y)
    assert L.count_mse(spk, y).item() == pytest.approx(ref.item(), rel=1e-6)


def test_count_mse_has_gradient():
    out = torch.rand(4, 3, 5, requires_grad=True)
    L.count_mse(out, torch.tensor([0, 1, 4])).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0


def test_rate_ce_equals_snntorch():
    sf = pytest.importorskip("snntorch.functional")
    g = torch.Generator().manual_seed(0)
    out = torch.randn(9, 5, 10, generator=g)
    y = torch.randint(0, 10, (5,), generator=g)
    ref = sf.ce_rate_loss()(out, y)
    assert L.rate_ce(out, y).item() == pytest.approx(ref.item(), rel=1e-6)


def test_losses_are_scalars_and_registry():
    assert L.loss_names() == ("rate_ce", "count_mse", "sdt", "tet", "sum_ce")
    out, y = torch.randn(3, 2, 4), torch.tensor([1, 3])
    for name in L.loss_names():
        assert L.LOSSES[name](out, y).shape == ()


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\[T, B, C\]"):
        L.rate_ce(torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="y must"):
        L.sdt(torch.zeros(2, 3, 4), torch.tensor([0, 1]))


def test_predict_hand():
    out = torch.tensor(
        [
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]],
            [[0.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]],
            [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]],
        ]
    )
    # counts: b0 [1, 2, 0] -> 1; b1 [0, 2, 2] -> tie, lowest index 1; b2 [0, 0, 1] -> 2
    assert L.predict(out).tolist() == [1, 1, 2]


@pytest.fixture
def spikes():
    a = torch.zeros(2, 1, 2)
    a[0, 0, 1] = 1.0  # rate 1/4
    b = torch.zeros(2, 1, 3)
    b[1, 0, :] = 1.0  # rate 3/6
    return [a, b]


def test_spike_rate_penalty_hand(spikes):
    assert L.spike_rate_penalty(spikes).item() == pytest.approx(0.375)
    assert L.SPARSITY_TERMS["rate"](spikes, 0.9).item() == pytest.approx(0.375)


def test_rate_target_penalty_hand(spikes):
    # (0.25 - 0.1)^2 + (0.5 - 0.1)^2
    assert L.rate_target_penalty(spikes, 0.1).item() == pytest.approx(0.0225 + 0.16)
    assert L.SPARSITY_TERMS["target"](spikes, 0.25).item() == pytest.approx(0.0625)
    assert L.rate_target_penalty([], 0.1).item() == 0.0
