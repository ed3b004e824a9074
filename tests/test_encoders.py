"""Encoders: shapes and the rate code's statistics and reproducibility."""
import pytest
import torch

from qsnn_explorer.encoders import encode


def test_rate_code_is_bernoulli_of_the_intensity_and_reproducible():
    x = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).repeat(200, 1)          # [B=200, 5]
    spikes = encode(x, 100, "rate", torch.Generator().manual_seed(3))   # [T, B, 5]
    assert spikes.shape == (100, 200, 5) and spikes.dtype == torch.float32
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    rate = spikes.mean(dim=(0, 1))
    assert rate[0] == 0 and rate[-1] == 1
    # 20,000 draws per column: the standard error is ≤ 0.0036, so 0.015 is > 4 SE
    torch.testing.assert_close(rate, x[0], atol=0.015, rtol=0)
    again = encode(x, 100, "rate", torch.Generator().manual_seed(3))
    other = encode(x, 100, "rate", torch.Generator().manual_seed(4))
    assert torch.equal(spikes, again) and not torch.equal(spikes, other)
    assert not torch.equal(spikes[0], spikes[1])  # independent over time


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rate_code_keeps_the_input_dtype(dtype):
    assert encode(torch.full((2, 3), 0.5, dtype=dtype), 4, "rate").dtype == dtype


@pytest.mark.parametrize("encoder", ["rate", "latency"])
def test_bool_spikes_are_the_same_spikes(encoder):
    x = torch.rand(6, 1, 8, 8)
    want = encode(x, 7, encoder, torch.Generator().manual_seed(5))
    got = encode(x, 7, encoder, torch.Generator().manual_seed(5), spike_dtype=torch.bool)
    assert got.dtype == torch.bool and torch.equal(got, want.bool()) and want.sum() > 0


def test_direct_latency_rows_shapes():
    x = torch.rand(3, 1, 8, 8)
    assert encode(x, 5, "direct").shape == (5, 3, 1, 8, 8)
    lat = encode(x, 5, "latency")
    assert lat.shape == (5, 3, 1, 8, 8) and lat.sum(0).max() <= 1
    assert encode(x, 4, "rows").shape == (4, 3, 1, 1, 8)
    with pytest.raises(ValueError, match="encoder='bogus'"):
        encode(x, 4, "bogus")
