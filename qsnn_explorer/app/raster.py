"""The canvas spike raster: ``js/raster.js`` wrapped as a Panel ``JSComponent``.

Spikes cross the wire as one packed frame (``payload``), bit-packed along time, layers stacked,
with an optional 8-bit membrane for the hover read-out. It travels as base64 text inside the
JSON patch (:func:`wire_text`), not as a Bokeh binary buffer: each buffer costs a message two
more websocket frames, and every frame wakes chromium's network, browser and renderer threads.
With the explorer's 8 canvases that was ~90 frames a second more; on a machine that also trains,
each wake-up preempts a training thread while its partner waits at the next barrier. Inline (a
third more bytes), chromium used ~0.04 of a core less and training ran 6-10% faster. The byte
layout is documented at the top of ``js/raster.js`` and written by :func:`pack_payload`. The
browser redraws at most once per animation frame, however many payloads arrive. A click on a
cell sets ``selected`` to ``[layer, neuron]`` in Python.

The module file is found in an installed wheel (``qsnn_explorer/js/raster.js``, force-included by
pyproject) or, in a source checkout, in the repository's ``js/``.
"""
from __future__ import annotations

import base64
import pathlib
import struct

import numpy as np
import panel as pn
import param
from panel.custom import JSComponent

from ..trainer import Probe

MAGIC = b"QSR1"
FLAG_MEMBRANE = 1
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf"]


def js_path(name: str = "raster.js") -> pathlib.Path:
    """The shipped JS file: inside the package (wheel), else the checkout's ``js/``."""
    here = pathlib.Path(__file__).resolve().parent.parent  # qsnn_explorer/
    for candidate in (here / "js" / name, here.parent / "js" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name} is neither in {here / 'js'} (wheel) nor in {here.parent / 'js'} (checkout)")


def wire_text(packed: bytes) -> str:
    """A packed frame as the base64 text a canvas component's ``payload`` carries (module doc)."""
    return base64.b64encode(packed).decode("ascii")


def page_theme() -> str:
    """The canvas components' theme for the current page: Panel's dark theme, else light."""
    return "dark" if pn.config.theme == "dark" else "light"


class CanvasComponent(JSComponent):
    """What the canvas components (this raster, ``live_chart.LiveChart``) share: one packed frame
    in ``payload`` as base64 text (module doc), the page's theme, the full width, and a count of
    the frames sent (``_seq``, which each frame carries)."""

    payload = param.String(default=None, allow_None=True, doc="The last packed frame, base64 (wire_text)")
    theme = param.Selector(default="light", objects=["light", "dark"])
    _default_height = 220

    def __init__(self, **params):
        params.setdefault("theme", page_theme())
        params.setdefault("height", self._default_height)
        params.setdefault("sizing_mode", "stretch_width")
        super().__init__(**params)
        self._seq = 0

    def _send(self, packed: bytes):
        self.payload = wire_text(packed)


def pack_payload(spikes: list[np.ndarray], *, totals: list[int] | None = None,
                 mem: list[np.ndarray] | None = None, thresholds: list[float] | None = None,
                 names: list[str] | None = None, seq: int = 0) -> bytes:
    """One frame as bytes. ``spikes[l]``: [N_l, T] (neuron-major) of 0/1 or bool for layer ``l``;
    ``mem[l]``: [N_l, T] float membrane or None. ``totals``: each layer's size before any cap.
    ``names`` travel in the frame, so labels always match the layers they label."""
    T = spikes[0].shape[1] if spikes else 0
    if any(s.ndim != 2 or s.shape[1] != T for s in spikes):
        raise ValueError(f"every layer needs shape [N, T={T}]; got {[s.shape for s in spikes]}")
    totals = totals or [s.shape[0] for s in spikes]
    thresholds = thresholds or [1.0] * len(spikes)
    has_mem = mem is not None
    head = [MAGIC, struct.pack("<HHII", len(spikes), FLAG_MEMBRANE if has_mem else 0, T, seq & 0xFFFFFFFF)]
    ranges = []
    for i, s in enumerate(spikes):
        lo, hi = 0.0, 1.0
        finite = np.asarray(mem[i], dtype=np.float32)[np.isfinite(mem[i])] if has_mem else ()
        if len(finite):  # a diverged run has inf/nan membranes: they clip to the range's ends
            lo, hi = float(finite.min()), float(finite.max())
            hi = hi if hi > lo else lo + 1.0
        ranges.append((lo, hi))
        head.append(struct.pack("<IIfff", s.shape[0], totals[i], lo, hi, thresholds[i]))
    for i in range(len(spikes)):
        name = (names[i] if names else f"layer {i + 1}").encode("utf-8")[:1000]
        head.append(struct.pack("<H", len(name)) + name)
    body = [np.packbits(np.asarray(s, dtype=bool), axis=1, bitorder="little").tobytes() for s in spikes]
    if has_mem:
        for m, (lo, hi) in zip(mem, ranges):
            m = np.nan_to_num(np.asarray(m, dtype=np.float32), nan=lo, posinf=hi, neginf=lo)
            q = np.rint((m - lo) * (255.0 / (hi - lo)))
            body.append(np.clip(q, 0, 255).astype(np.uint8).tobytes())
    return b"".join(head + body)


class SpikeRaster(CanvasComponent):
    """Spike raster of stacked layers on a canvas; hover reads out layer, neuron, t and membrane,
    a click selects a neuron (``selected``), margins show firing rates per neuron and per step.
    ``payload``: a :func:`pack_payload` frame."""

    layer_names = param.List(default=[], item_type=str, doc="Names in the last frame (they travel in it)")
    layer_colors = param.List(default=list(COLORS), item_type=str)
    selected = param.List(default=[], doc="[layer, neuron] last clicked in the browser; [] for none")
    max_neurons = param.Integer(default=2000, bounds=(1, None), precedence=-1,
                                doc="Neurons shown per layer (the first ones); the label says 'n of N'")
    send_membrane = param.Boolean(default=True, precedence=-1,
                                  doc="Send the membrane (u8, T x N bytes) for the hover read-out")

    _esm = js_path()
    _rename = {"max_neurons": None, "send_membrane": None, "layer_names": None}  # Python side only
    _default_height = 360

    def update(self, probe: Probe):
        """Show a probe's layers (its first ``max_neurons`` neurons each)."""
        spikes, mem, totals, thresholds = [], [], [], []
        for layer in probe.layers:
            n = min(self.max_neurons, layer.spikes.shape[1])
            spikes.append(layer.spikes[:, :n].numpy().T)
            mem.append(layer.mem[:, :n].numpy().T)
            totals.append(int(layer.spikes.shape[1]))
            thresholds.append(float(layer.threshold))
        self.show(spikes, totals=totals, mem=mem if self.send_membrane else None, thresholds=thresholds,
                  names=[layer.name for layer in probe.layers])

    def show(self, spikes: list[np.ndarray], *, names: list[str] | None = None, **kw):
        """Show arrays directly (``spikes[l]``: [N_l, T]); ``kw`` as for :func:`pack_payload`."""
        self._seq += 1
        names = list(names) if names is not None else [f"layer {i + 1}" for i in range(len(spikes))]
        self.layer_names = names
        self._send(pack_payload(spikes, seq=self._seq, names=names, **kw))

    @property
    def seq(self) -> int:
        """Sequence number of the last frame sent (the browser records which ones it drew)."""
        return self._seq
