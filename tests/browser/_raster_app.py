"""Served only by ``test_raster_browser.py``: the canvas raster with a known spike pattern.

Two layers ("hidden", 6 neurons; "output", 4 neurons), T = 12. The spikes are the cells in
``PATTERN``; the membrane of a cell is ``neuron + t / 100`` (so the read-out can be checked).
A click in the raster sets ``SpikeRaster.selected`` in Python; a watcher writes it into the
Markdown pane ``selected: [layer, neuron]``, which the test reads. The button "Shift right"
sends the pattern again with every spike one step later (t + 1 mod T). ``?theme=dark``
starts in the dark theme.
"""
import numpy as np
import panel as pn

from qsnn_explorer.app.raster import SpikeRaster

T = 12
SIZES = (6, 4)
PATTERN = {0: [(0, 0), (0, 11), (1, 1), (2, 5), (3, 5), (5, 2), (5, 3), (5, 4)],
           1: [(0, 6), (1, 0), (3, 11), (2, 7)]}


def arrays():
    spikes, mem = [], []
    for layer, n in enumerate(SIZES):
        s = np.zeros((n, T), dtype=np.uint8)
        for neuron, t in PATTERN[layer]:
            s[neuron, t] = 1
        spikes.append(s)
        mem.append(np.arange(n)[:, None] + np.arange(T)[None, :] / 100.0)
    return spikes, mem


raster = SpikeRaster(height=360, width=700, sizing_mode="fixed",
                     theme=pn.state.session_args.get("theme", [b"light"])[0].decode())
spikes, mem = arrays()
raster.show(spikes, mem=mem, names=["hidden", "output"], totals=[60, 4], thresholds=[1.0, 0.5])
selected = pn.pane.Markdown("selected: none", name="selected")
raster.param.watch(lambda e: setattr(selected, "object", f"selected: {e.new}"), "selected")
shift = pn.widgets.Button(label="Shift right")  # every spike one step later (t + 1 mod T)


def _shift(event):
    global spikes
    spikes = [np.roll(s, 1, axis=1) for s in spikes]
    raster.show(spikes, mem=mem, names=["hidden", "output"], totals=[60, 4], thresholds=[1.0, 0.5])


shift.on_click(_shift)
pn.Column(raster, selected, shift).servable(title="qsnn raster test")
