"""SpikeRaster without a browser: what ``update`` packs, where the JS file is found, and the
explorer's wiring from a clicked neuron to the membrane traces."""
import base64
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from qsnn_explorer.app import Explorer
from qsnn_explorer.app.raster import SpikeRaster, js_path, pack_payload
from qsnn_explorer.trainer import LayerProbe, Probe



def _probe(sizes=(1500, 10), T=7):
    g = torch.Generator().manual_seed(0)
    layers = tuple(LayerProbe(f"layer {i}", (torch.rand(T, n, generator=g) < 0.2).to(torch.uint8),
                              torch.randn(T, n, generator=g), 1.0) for i, n in enumerate(sizes))
    return Probe(label=0, prediction=0, image=torch.zeros(1), inputs=torch.zeros(T, 1), layers=layers,
                 output=torch.zeros(T, 10))


def _header(payload):
    magic, (n_layers, flags, T, seq) = payload[:4], struct.unpack_from("<HHII", payload, 4)
    layers = [struct.unpack_from("<IIfff", payload, 16 + 20 * i) for i in range(n_layers)]
    return magic, n_layers, flags, T, seq, layers


def test_update_caps_neurons_per_layer_and_keeps_the_true_size():
    raster = SpikeRaster(max_neurons=1000)
    probe = _probe()
    raster.update(probe)
    payload = base64.b64decode(raster.payload)  # sent as base64 text (raster.wire_text)
    magic, n_layers, flags, T, seq, layers = _header(payload)
    assert (magic, n_layers, flags, T, seq) == (b"QSR1", 2, 1, 7, 1)
    assert [(n, total) for n, total, *_ in layers] == [(1000, 1500), (10, 10)]
    assert raster.layer_names == ["layer 0", "layer 1"]
    rows, bpr = 1010, 1  # ceil(7 / 8) bytes per neuron
    names = 2 * (2 + len("layer 0"))  # u16 length + UTF-8, per layer
    assert payload[56:56 + names] == b"\x07\x00layer 0\x07\x00layer 1"
    assert len(payload) == 16 + 40 + names + rows * bpr + rows * T
    bits = np.frombuffer(payload, np.uint8, rows * bpr, 56 + names).reshape(rows, bpr)
    spikes = np.unpackbits(bits, axis=1, bitorder="little")[:, :T]
    want = np.concatenate([probe.layers[0].spikes[:, :1000].T.numpy(), probe.layers[1].spikes.T.numpy()])
    np.testing.assert_array_equal(spikes, want)
    raster.send_membrane = False
    raster.update(probe)
    payload = base64.b64decode(raster.payload)
    assert _header(payload)[2] == 0 and len(payload) == 16 + 40 + names + rows * bpr
    assert raster.seq == 2


def test_pack_clips_a_diverged_membrane_to_the_finite_range():
    mem = np.array([[0.0, 2.0, np.nan, np.inf, -np.inf]], dtype=np.float32)
    payload = pack_payload([np.zeros((1, 5))], mem=[mem])
    lo, hi = _header(payload)[5][0][2:4]
    assert (lo, hi) == (0.0, 2.0)
    assert list(payload[-5:]) == [0, 255, 0, 255, 0]


def test_pack_refuses_layers_of_different_lengths():
    with pytest.raises(ValueError, match="shape"):
        pack_payload([np.zeros((3, 5)), np.zeros((2, 6))])


def test_the_js_module_is_found_and_is_what_the_component_loads():
    path = js_path()
    assert path.name == "raster.js" and "export function render" in path.read_text()
    assert SpikeRaster._esm == path


def test_the_wheel_carries_the_js_where_js_path_looks_first():
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[2]
    with open(root / "pyproject.toml", "rb") as fh:
        include = tomllib.load(fh)["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include["js/raster.js"] == "qsnn_explorer/js/raster.js"
    assert (root / "js" / "raster.js").is_file()


def test_selected_python_side_params_are_not_sent_to_the_browser():
    raster = SpikeRaster()
    model = raster.get_root()
    assert "max_neurons" not in model.data.properties_with_values()
    assert "payload" in model.data.properties_with_values()


def test_a_clicked_neuron_becomes_the_first_membrane_trace(explorer, settle):
    explorer.runner.step()  # wait for the step's snapshot: a stop mid-step would outlast stop()'s 1 s
    assert settle(explorer, lambda: explorer.raster.payload is not None and explorer._shown.step == 1)
    assert explorer.raster.layer_names[0] == explorer._shown.probe.layers[0].name
    explorer.raster.selected = [0, 17]  # what a click in the browser sends
    assert explorer.trace_layer.value == 0
    assert explorer.trace_neurons.value == "17, 0, 1"
    assert "neurons [17, 0, 1]" in explorer.membrane.chart.title
    u = explorer._shown.probe.layers[0].mem[:, 17].numpy()
    np.testing.assert_allclose(explorer.membrane.chart.series[0].y, u)
    explorer.raster.selected = [1, 3]  # another layer: its neuron alone
    assert (explorer.trace_layer.value, explorer.trace_neurons.value) == (1, "3")
    assert "neurons [3]" in explorer.membrane.chart.title


def test_the_bokeh_raster_stays_available_for_static_export(app_cfg, wait_for, settle):
    ex = Explorer(app_cfg, raster="bokeh", runner="thread")
    try:
        assert wait_for(lambda: ex.runner.trainer is not None)
        ex.runner.step()
        assert settle(ex, lambda: len(ex.raster.source.data["t"]) > 0 and ex._shown.step == 1)
        assert ex._raster_pane() is ex.raster.fig
    finally:
        assert ex.stop()
    with pytest.raises(ValueError, match="canvas"):
        Explorer(app_cfg, raster="svg")
