"""The Sweep tab headless: bad inputs say why and start nothing; a run fills both heatmaps."""
import math

import pytest

from qsnn_explorer import TrainConfig
from qsnn_explorer.app.sweep_tab import SweepPanel, default_values, sweepable_fields

CFG = TrainConfig(dataset="digits8x8", hidden=(16,), num_steps=4, batch_size=64, lr=5e-3, readout="membrane",
                  loss="sum_ce", epochs=1, device="cpu")


def test_parameter_choices_and_default_values():
    names = sweepable_fields()
    assert "surrogate" in names and "lr" in names and "hidden" in names
    assert "seed" not in names and "learn_beta" not in names  # seeds have their own input; no bounds/choices
    assert default_values(CFG, "lr") == "0.00167, 0.005, 0.015"
    assert default_values(CFG, "surrogate") == "fast_sigmoid, atan, triangular"
    assert default_values(CFG, "hidden") == "[16]"


@pytest.mark.parametrize("x, xv, y, yv, message", [
    ("lr", "1e-3", "lr", "3e-3", "choose two different parameters"),
    ("surrogate", "fast_sigmoid, spiky", "lr", "1e-3", "surrogate='spiky' is not allowed"),
    ("surrogate", "triangular", "lr", "1e-3, 7", "lr=7.0 is out of range"),
])
def test_bad_inputs_say_why_and_start_nothing(x, xv, y, yv, message):
    panel = SweepPanel(CFG)
    panel.x_name.value, panel.y_name.value = x, y
    panel.x_values.value, panel.y_values.value = xv, yv
    assert panel.run() is False
    assert message in panel.message.text and panel.message.visible
    assert panel._thread is None and panel._own_client is None
    assert panel.stop()


def test_a_run_fills_both_heatmaps(wait_for):
    panel = SweepPanel(CFG, workers=2)
    panel.x_name.value, panel.y_name.value = "surrogate", "lr"
    panel.x_values.value, panel.y_values.value = "fast_sigmoid, triangular", "1e-3, 3e-3"
    panel.seeds.value, panel.epochs.value = 1, 1
    try:
        assert panel.run()
        src = panel.source
        assert src.data["x"] == ["fast_sigmoid", "triangular"] * 2 and src.data["y"] == ["0.001"] * 2 + ["0.003"] * 2
        assert all(math.isnan(v) for v in src.data["acc"])  # the empty grid is laid out at once
        assert panel.run_button.disabled and panel.run() is False  # one sweep at a time

        def filled():
            panel.drain()
            return panel.run_button.disabled is False
        assert wait_for(filled, timeout=120)
        assert "4 / 4 runs finished, 0 with errors" in panel.progress.text
        assert all(0 < v <= 1 for v in src.data["acc"]) and all(v > 0 for v in src.data["spikes"])
        assert src.data["n"] == [1, 1, 1, 1] and all(lbl.endswith("% (1/1)") for lbl in src.data["acc_label"])
        assert panel.acc_fig.x_range.factors == ["fast_sigmoid", "triangular"]
        assert panel.spike_mapper.low == min(src.data["spikes"]) and panel.spike_mapper.high == max(src.data["spikes"])
        assert panel.dashboard.link.startswith("http") and panel.dashboard.link in panel.dashboard.text
    finally:
        assert panel.stop()
    assert panel._cluster is None
