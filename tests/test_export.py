"""to_snntorch(): the exported snn.Leaky network reproduces the engine's outputs."""
import pytest
import snntorch as snn
import torch

from qsnn_explorer import Trainer
from qsnn_explorer.encoders import encode


@pytest.mark.parametrize("overrides", [
    dict(),
    dict(weight_bits=4, readout="spikes", loss="count_mse", surrogate="triangular", surrogate_sharpness=1.0),
    dict(readout="current", loss="tet", hidden=(24, 16), reset="zero"),
    dict(model="recurrent", encoder="rows", readout="current", loss="tet", learn_beta=True),
])
def test_export_matches_engine(digits, small_cfg, overrides):
    trainer = Trainer(small_cfg.replace(**overrides), digits)
    trainer.run(evaluate_every_epoch=False)
    net = trainer.to_snntorch()
    assert any(isinstance(m, (snn.Leaky, snn.RLeaky)) for m in net.modules())
    x = encode(digits.test.x[:50], trainer.cfg.num_steps, trainer.cfg.encoder)
    trainer.model.eval()
    with torch.no_grad():
        rec = trainer.model(x)
        spk, mem = net(x)
    if trainer.cfg.readout == "current":
        assert spk is None
        torch.testing.assert_close(mem, rec.out, atol=1e-5, rtol=1e-5)
    else:
        assert torch.equal(spk, rec.spikes[-1])
        torch.testing.assert_close(mem, rec.mems[-1], atol=1e-5, rtol=1e-5)


def test_export_conv_in_eval_mode():
    from qsnn_explorer import TrainConfig
    cfg = TrainConfig(model="conv", hidden=(4, 8), num_steps=4, batch_size=32, readout="spikes",
                      loss="count_mse", device="cpu", weight_bits=4)
    trainer = Trainer(cfg)
    trainer.step()
    net = trainer.to_snntorch()
    x = encode(trainer.data.test.x[:8], 4, "direct")
    trainer.model.eval()
    with torch.no_grad():
        rec = trainer.model(x)
        spk, mem = net(x)
    assert torch.equal(spk, rec.spikes[-1])
    torch.testing.assert_close(mem, rec.mems[-1], atol=1e-5, rtol=1e-5)
