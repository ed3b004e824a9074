"""Bokeh views of a run. Each owns its figure and ColumnDataSources and updates them in place
(``.data = ...`` or ``.stream(..., rollover=N)``); nothing is rebuilt while training. Large
columns are numpy arrays, which Bokeh sends as binary buffers instead of JSON lists: the less
the event loop works, the less it holds the GIL the training thread needs."""
from __future__ import annotations

import numpy as np
import torch
from bokeh.models import ColumnDataSource, HoverTool, Range1d, Span
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from bokeh.transform import linear_cmap

from ..schedules import lr_curve, restart_steps
from ..trainer import EvalResult, Frame, Probe, surrogate_for

ROLLOVER = 5000
GHOSTS = 3
COLORS = Category10_10


def _figure(title: str, **kw):
    fig = figure(title=title, height=kw.pop("height", 220), sizing_mode="stretch_width",
                 toolbar_location=kw.pop("toolbar_location", None), **kw)
    fig.title.text_font_size = "11pt"
    return fig


class CurvesView:
    """Train (per step) and validation (per epoch) loss and accuracy, with faded earlier runs."""

    def __init__(self):
        self.train = ColumnDataSource(dict(step=[], loss=[], accuracy=[]), name="curves_train")
        self.val = ColumnDataSource(dict(step=[], loss=[], accuracy=[]), name="curves_val")
        self.loss = _figure("loss", x_axis_label="step", y_axis_type="log", name="fig_loss")
        self.accuracy = _figure("accuracy", x_axis_label="step", y_range=(0, 1), name="fig_accuracy")
        self.ghosts = [ColumnDataSource(dict(step=[], loss=[], accuracy=[])) for _ in range(GHOSTS)]
        self.labels = [""] * GHOSTS
        for i, ghost in enumerate(self.ghosts):
            for fig, y in ((self.loss, "loss"), (self.accuracy, "accuracy")):
                fig.line("step", y, source=ghost, color="gray", alpha=0.45 - 0.1 * i, line_width=2,
                         legend_label=f"earlier run {i + 1}")
        for fig, y in ((self.loss, "loss"), (self.accuracy, "accuracy")):
            fig.line("step", y, source=self.train, color=COLORS[0], legend_label="train")
            fig.scatter("step", y, source=self.val, color=COLORS[1], size=7, legend_label="validation")
            fig.line("step", y, source=self.val, color=COLORS[1])
            fig.legend.location = "bottom_right" if y == "accuracy" else "top_right"
            for item in fig.legend[0].items[:GHOSTS]:
                item.visible = False
            fig.legend.background_fill_alpha = 0.5
            fig.legend.label_text_font_size = "8pt"

    def add(self, frames: list[Frame], evals: list[EvalResult]):
        if frames:
            self.train.stream(dict(step=[f.step for f in frames], loss=[max(f.loss, 1e-6) for f in frames],
                                   accuracy=[f.accuracy for f in frames]), rollover=ROLLOVER)
        if evals:
            self.val.stream(dict(step=[e.step for e in evals], loss=[max(e.loss, 1e-6) for e in evals],
                                 accuracy=[e.accuracy for e in evals]), rollover=ROLLOVER)

    def new_run(self, label: str):
        """Keep the finished run as the newest faded ghost, labelled by what changed."""
        if len(self.train.data["step"]):
            for newer, older in zip(self.ghosts[-2::-1], self.ghosts[:0:-1]):
                older.data = dict(newer.data)
            data = self.val.data if len(self.val.data["step"]) else self.train.data
            self.ghosts[0].data = dict(step=list(data["step"]), loss=list(data["loss"]),
                                       accuracy=list(data["accuracy"]))
            self.labels = [f"before: {label}"] + self.labels[:-1]
            for fig in (self.loss, self.accuracy):
                items = [item for item in fig.legend[0].items if item.label.value.startswith(("earlier", "before"))]
                for item, text in zip(items, self.labels):
                    item.label = text or "earlier run"
                    item.visible = bool(text)
        self.train.data = dict(step=[], loss=[], accuracy=[])
        self.val.data = dict(step=[], loss=[], accuracy=[])


class ActivityView:
    """Firing rate per layer, hidden spikes and synaptic operations per sample, over steps."""

    def __init__(self, n_layers: int = 4):
        self.source = ColumnDataSource(self._empty(n_layers))
        self.rates = _figure("firing rate per layer", x_axis_label="step")
        self.cost = _figure("spikes & SynOps per sample", x_axis_label="step")
        self.n_layers = n_layers
        for i in range(n_layers):
            self.rates.line("step", f"rate{i}", source=self.source, color=COLORS[i % 10],
                            legend_label="output" if i == n_layers - 1 else f"layer {i + 1}")
        self.rates.legend.label_text_font_size = "8pt"
        self.cost.line("step", "spikes", source=self.source, color=COLORS[3], legend_label="hidden spikes")
        self.cost.line("step", "synops_k", source=self.source, color=COLORS[4], legend_label="SynOps / 1000")
        self.cost.legend.label_text_font_size = "8pt"

    def show_layers(self, n_lif: int):
        """Legend entries only for the layers this network has (the last slot is the output)."""
        items = self.rates.legend[0].items
        for i, item in enumerate(items):
            item.visible = i == len(items) - 1 or i < n_lif - 1

    @staticmethod
    def _empty(n):
        return dict(step=[], spikes=[], synops_k=[], **{f"rate{i}": [] for i in range(n)})

    def reset(self):
        self.source.data = self._empty(self.n_layers)

    def add(self, frames: list[Frame]):
        if not frames:
            return
        data = dict(step=[f.step for f in frames], spikes=[f.spikes_per_sample for f in frames],
                    synops_k=[f.synops_per_sample / 1000 for f in frames])
        for i in range(self.n_layers):  # pad: the last column is always the output layer
            data[f"rate{i}"] = [_layer_rate(f.firing_rates, i, self.n_layers) for f in frames]
        self.source.stream(data, rollover=ROLLOVER)


def _layer_rate(rates: tuple, i: int, n: int) -> float:
    if i == n - 1:
        return rates[-1] if rates else float("nan")
    return rates[i] if i < len(rates) - 1 else float("nan")


class RasterView:
    """Spike raster of every LIF layer for the probe sample: neurons stacked, time on x.

    The explorer draws its raster with the canvas ``SpikeRaster`` (raster.py); this Bokeh view is
    the fallback for static export (``Explorer(raster="bokeh")``) and the benchmark's baseline."""

    def __init__(self, max_neurons: int = 400):
        self.max_neurons = max_neurons
        empty = np.zeros(0, dtype=np.int32)
        self.source = ColumnDataSource(dict(t=empty, y=empty, layer=empty, neuron=empty), name="raster_source")
        self.fig = _figure("spike raster (probe sample)", height=320, x_axis_label="time step",
                           y_axis_label="neuron (layers stacked)", name="fig_raster")
        self.fig.scatter("t", "y", source=self.source, size=3, marker="square",
                         color=linear_cmap("layer", list(COLORS), 0, len(COLORS) - 1))
        self.fig.add_tools(HoverTool(tooltips=[("layer", "@layer"), ("neuron", "@neuron"), ("t", "@t")]))

    def update(self, probe: Probe):
        columns, offset = [], 0
        for i, layer in enumerate(probe.layers):
            spikes = layer.spikes[:, : self.max_neurons]
            t, n = torch.nonzero(spikes, as_tuple=True)
            columns.append((t.numpy(), (n + offset).numpy(), np.full(len(t), i), n.numpy()))
            offset += spikes.shape[1] + 5
        t, y, layer, neuron = (np.concatenate(c).astype(np.int32) for c in zip(*columns))
        self.source.data = dict(t=t, y=y, layer=layer, neuron=neuron)


class MembraneView:
    """Membrane traces of chosen neurons of one layer, with the threshold and spike marks."""

    def __init__(self, n_traces: int = 3):
        self.sources = [ColumnDataSource(dict(t=[], u=[])) for _ in range(n_traces)]
        self.marks = ColumnDataSource(dict(t=[], u=[], color=[]))
        self.fig = _figure("membrane u(t) (probe sample)", x_axis_label="time step", name="fig_membrane")
        self.threshold = Span(location=1.0, dimension="width", line_dash="dashed", line_color="black")
        self.fig.add_layout(self.threshold)
        for i, src in enumerate(self.sources):
            self.fig.line("t", "u", source=src, color=COLORS[i], line_width=2)
        self.fig.scatter("t", "u", source=self.marks, color="color", size=8, marker="triangle")

    def update(self, probe: Probe, layer_index: int, neurons: list[int]):
        layer = probe.layers[min(layer_index, len(probe.layers) - 1)]
        self.threshold.location = layer.threshold
        self.fig.title.text = f"membrane u(t) of {layer.name}, neurons {neurons} (probe sample)"
        marks = dict(t=[], u=[], color=[])
        for i, src in enumerate(self.sources):
            if i >= len(neurons) or neurons[i] >= layer.mem.shape[1]:
                src.data = dict(t=[], u=[])
                continue
            u = layer.mem[:, neurons[i]]
            src.data = dict(t=np.arange(len(u)), u=u.numpy())
            fired = torch.nonzero(layer.spikes[:, neurons[i]]).flatten().tolist()
            marks["t"] += fired
            marks["u"] += [float(u[t]) for t in fired]
            marks["color"] += [COLORS[i]] * len(fired)
        self.marks.data = marks


class LRView:
    """The LR schedule drawn before training, with restarts and the current position."""

    def __init__(self):
        self.curve = ColumnDataSource(dict(step=[], lr=[]))
        self.now = ColumnDataSource(dict(step=[0], lr=[0.0]))
        self.restarts = ColumnDataSource(dict(step=[], lr=[]))
        self.fig = _figure("learning rate schedule", x_axis_label="step", y_range=Range1d(0, 1), name="fig_lr")
        self.fig.line("step", "lr", source=self.curve, color=COLORS[2], line_width=2)
        self.fig.scatter("step", "lr", source=self.restarts, color="gray", size=6, marker="diamond")
        self.fig.scatter("step", "lr", source=self.now, color="red", size=10)

    def draw(self, cfg, total_steps: int):
        args = (cfg.lr, cfg.lr_schedule, cfg.lr_period, cfg.lr_t_mult, cfg.lr_min)
        stride = max(1, total_steps // 1000)
        steps = list(range(0, total_steps, stride))
        curve = lr_curve(total_steps, *args)
        self.curve.data = dict(step=np.array(steps), lr=np.array(curve[::stride]))
        marks = restart_steps(cfg.lr_schedule, cfg.lr_period, cfg.lr_t_mult, total_steps)
        self.restarts.data = dict(step=marks, lr=[curve[s] for s in marks])
        self.fig.y_range.end = 1.1 * max(curve, default=cfg.lr)
        self.fig.title.text = f"learning rate: {cfg.lr_schedule}, peak {cfg.lr:g}"

    def move(self, step: int, lr: float):
        self.now.data = dict(step=[step], lr=[lr])


class SurrogateView:
    """σ'(u − θ) of the current surrogate; the previous shape stays as a ghost."""

    def __init__(self):
        self.current = ColumnDataSource(dict(v=[], g=[]), name="surrogate_current")
        self.ghost = ColumnDataSource(dict(v=[], g=[]), name="surrogate_ghost")
        self.fig = _figure("surrogate gradient ∂s/∂u", x_axis_label="u − θ", name="fig_surrogate")
        self.fig.line("v", "g", source=self.ghost, color="gray", alpha=0.5, line_width=2, line_dash="dashed")
        self.fig.line("v", "g", source=self.current, color=COLORS[3], line_width=3)
        self.redraws = 0

    def draw(self, cfg):
        if len(self.current.data["v"]):
            self.ghost.data = dict(self.current.data)
        v = torch.linspace(-2.5, 2.5, 501, dtype=torch.float64)
        g = surrogate_for(cfg).grad(v)
        self.current.data = dict(v=v.numpy(), g=g.numpy())
        self.fig.title.text = f"surrogate gradient ∂s/∂u: {surrogate_for(cfg)!r}"
        self.redraws += 1


class HistogramView:
    """Weight histogram of one layer with the quantization levels of the current bit-width."""

    def __init__(self):
        self.bars = ColumnDataSource(dict(left=[], right=[], top=[]), name="weights_bars")
        self.levels = ColumnDataSource(dict(x0=[], x1=[], y0=[], y1=[]), name="weights_levels")
        self.fig = _figure("weights", x_axis_label="weight", name="fig_weights")
        self.fig.quad(left="left", right="right", top="top", bottom=0, source=self.bars, color=COLORS[0], alpha=0.6)
        self.fig.segment("x0", "y0", "x1", "y1", source=self.levels, color="red", alpha=0.6)
        self.n_levels = 0

    def update(self, hist, bits: int):
        top = float(hist.counts.max()) if hist.counts.size else 1.0
        self.bars.data = dict(left=hist.edges[:-1], right=hist.edges[1:], top=hist.counts)
        levels = hist.levels
        self.levels.data = dict(x0=levels, x1=levels, y0=np.zeros(len(levels)), y1=np.full(len(levels), top))
        self.n_levels = len(levels)
        kind = "float" if bits == 32 else f"{bits}-bit: {len(levels)} levels"
        self.fig.title.text = f"weights of {hist.layer} ({kind})"

