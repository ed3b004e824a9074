"""Views of a run. The live ones (curves, activity, LR position, membrane, weights) draw on
canvas ``LiveChart``s (live_chart.py): each update sends one packed payload and the page redraws
one canvas, instead of a Bokeh figure's full re-layout and repaint. The surrogate shape (which
changes only when its sliders move) and the static-export raster stay Bokeh figures, updated in
place through their ColumnDataSources."""
from __future__ import annotations

import numpy as np
import torch
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from bokeh.transform import linear_cmap

from ..schedules import lr_at, restart_steps
from ..trainer import EvalResult, Frame, Probe, surrogate_for
from .live_chart import LiveChart, Series

ROLLOVER = 5000
GHOSTS = 3
COLORS = Category10_10


def _figure(title: str, **kw):
    fig = figure(title=title, height=kw.pop("height", 220), sizing_mode="stretch_width",
                 toolbar_location=kw.pop("toolbar_location", None), **kw)
    fig.title.text_font_size = "11pt"
    return fig


class Columns:
    """Equal-length numpy columns that grow by ``stream`` and keep the last ``rollover`` rows
    (a ColumnDataSource's interface, kept on the server)."""

    def __init__(self, *names: str):
        self.names = names
        self.clear()

    def clear(self):
        self.data = {n: np.zeros(0) for n in self.names}

    def stream(self, rows: dict, rollover: int = ROLLOVER):
        self.data = {n: np.concatenate([self.data[n], np.asarray(rows[n], dtype=float)])[-rollover:]
                     for n in self.names}

    def __len__(self):
        return len(self.data[self.names[0]])


class CurvesView:
    """Train (per step) and validation (per epoch) loss and accuracy, with faded earlier runs."""

    def __init__(self):
        self.train, self.val = Columns("step", "loss", "accuracy"), Columns("step", "loss", "accuracy")
        self.loss = LiveChart(chart_name="loss", title="loss", x_label="step", y_log=True)
        self.accuracy = LiveChart(chart_name="accuracy", title="accuracy", x_label="step", y_range=(0, 1),
                                  legend="bottom_right")
        self.ghosts = [Columns("step", "loss", "accuracy") for _ in range(GHOSTS)]
        self.labels = [""] * GHOSTS
        self.draw()

    def add(self, frames: list[Frame], evals: list[EvalResult]):
        if frames:
            self.train.stream(dict(step=[f.step for f in frames], loss=[max(f.loss, 1e-6) for f in frames],
                                   accuracy=[f.accuracy for f in frames]))
        if evals:
            self.val.stream(dict(step=[e.step for e in evals], loss=[max(e.loss, 1e-6) for e in evals],
                                 accuracy=[e.accuracy for e in evals]))
        if frames or evals:
            self.draw()

    def draw(self):
        for chart, y in ((self.loss, "loss"), (self.accuracy, "accuracy")):
            series = [Series(g.data["step"], g.data[y], label=text, color="gray", alpha=0.45 - 0.1 * i, width=2)
                      for i, (g, text) in enumerate(zip(self.ghosts, self.labels)) if len(g)]
            series += [Series(self.train.data["step"], self.train.data[y], label="train", color=COLORS[0]),
                       Series(self.val.data["step"], self.val.data[y], color=COLORS[1]),
                       Series(self.val.data["step"], self.val.data[y], label="validation", kind="points",
                              color=COLORS[1], size=7)]
            chart.show(series)

    def new_run(self, label: str):
        """Keep the finished run as the newest faded ghost, labelled by what changed."""
        if len(self.train):
            for newer, older in zip(self.ghosts[-2::-1], self.ghosts[:0:-1]):
                older.data = dict(newer.data)
            self.ghosts[0].data = dict((self.val if len(self.val) else self.train).data)
            self.labels = [f"before: {label}"] + self.labels[:-1]
        self.train.clear()
        self.val.clear()
        self.draw()


class ActivityView:
    """Firing rate per layer, hidden spikes and synaptic operations per sample, over steps."""

    def __init__(self, n_layers: int = 4):
        self.n_layers = n_layers
        self.columns = Columns("step", "spikes", "synops_k", *(f"rate{i}" for i in range(n_layers)))
        self.rates = LiveChart(chart_name="rates", title="firing rate per layer", x_label="step")
        self.cost = LiveChart(chart_name="cost", title="spikes & SynOps per sample", x_label="step")
        self.n_lif = n_layers
        self.draw()

    def show_layers(self, n_lif: int):
        """Lines only for the layers this network has (the last slot is the output)."""
        self.n_lif = n_lif
        self.draw()

    def reset(self):
        self.columns.clear()
        self.draw()

    def add(self, frames: list[Frame]):
        if not frames:
            return
        data = dict(step=[f.step for f in frames], spikes=[f.spikes_per_sample for f in frames],
                    synops_k=[f.synops_per_sample / 1000 for f in frames])
        for i in range(self.n_layers):  # pad: the last column is always the output layer
            data[f"rate{i}"] = [_layer_rate(f.firing_rates, i, self.n_layers) for f in frames]
        self.columns.stream(data)
        self.draw()

    def draw(self):
        d, last = self.columns.data, self.n_layers - 1
        shown = [i for i in range(self.n_layers) if i == last or i < self.n_lif - 1]
        self.rates.show([Series(d["step"], d[f"rate{i}"], color=COLORS[i % 10],
                                label="output" if i == last else f"layer {i + 1}") for i in shown])
        self.cost.show([Series(d["step"], d["spikes"], label="hidden spikes", color=COLORS[3]),
                        Series(d["step"], d["synops_k"], label="SynOps / 1000", color=COLORS[4])])


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
        self.n_traces = n_traces
        self.chart = LiveChart(chart_name="membrane", title="membrane u(t) (probe sample)", x_label="time step",
                               legend="none")

    def update(self, probe: Probe, layer_index: int, neurons: list[int]):
        layer = probe.layers[min(layer_index, len(probe.layers) - 1)]
        traces, marks = [], []
        for i, n in enumerate(neurons[: self.n_traces]):
            if n >= layer.mem.shape[1]:
                continue
            u = layer.mem[:, n].numpy()
            fired = torch.nonzero(layer.spikes[:, n]).flatten().numpy()
            traces.append(Series(np.arange(len(u)), u, label=f"neuron {n}", color=COLORS[i], width=2))
            marks.append(Series(fired, u[fired], kind="points", marker="triangle", size=8, color=COLORS[i]))
        self.chart.show(traces + marks, hlines=[dict(y=layer.threshold, color="black", dash=True)],
                        title=f"membrane u(t) of {layer.name}, neurons {neurons} (probe sample)")


class LRView:
    """The LR schedule drawn before training, with restarts and the current position; a run
    trained past the planned steps gets its schedule drawn on, twice as far each time."""

    def __init__(self):
        self.chart = LiveChart(chart_name="lr", title="learning rate schedule", x_label="step", legend="none")
        self.curve = Series(np.zeros(0), np.zeros(0), label="lr", color=COLORS[2], width=2)
        self.restarts = Series(np.zeros(0), np.zeros(0), kind="points", marker="diamond", color="gray")
        self.now = Series(np.zeros(0), np.zeros(0), label="now", kind="points", color="red", size=10)
        self.cfg, self.total_steps = None, 0

    def draw(self, cfg, total_steps: int):
        total_steps = max(1, total_steps)
        self.cfg, self.total_steps = cfg, total_steps
        args = (cfg.lr, cfg.lr_schedule, cfg.lr_period, cfg.lr_t_mult, cfg.lr_min)
        steps = range(0, total_steps, max(1, total_steps // 1000))  # at most ~1000 points, however long
        curve = [lr_at(s, *args) for s in steps]
        self.curve = Series(np.asarray(steps), np.asarray(curve), label="lr", color=COLORS[2], width=2)
        marks = restart_steps(cfg.lr_schedule, cfg.lr_period, cfg.lr_t_mult, total_steps)
        self.restarts = Series(marks, [lr_at(s, *args) for s in marks], kind="points", marker="diamond",
                               color="gray")
        self.chart.y_range = (0, 1.1 * max(curve, default=cfg.lr))
        self.chart.title = f"learning rate: {cfg.lr_schedule}, peak {cfg.lr:g}"
        self._show()

    def move(self, step: int, lr: float):
        self.now = Series([step], [lr], label="now", kind="points", color="red", size=10)
        if self.cfg is not None and step >= self.total_steps:
            total = self.total_steps
            while total <= step:
                total *= 2
            self.draw(self.cfg, total)  # shows self.now too
        else:
            self._show()

    def _show(self):
        self.chart.show([self.curve, self.restarts, self.now])


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
        self.chart = LiveChart(chart_name="weights", title="weights", x_label="weight", legend="none")
        self.n_levels = 0

    def update(self, hist, bits: int):
        levels = hist.levels
        self.n_levels = len(levels)
        kind = "float" if bits == 32 else f"{bits}-bit: {len(levels)} levels"
        self.chart.show([Series(hist.edges, hist.counts, kind="bars", color=COLORS[0], alpha=0.6),
                         Series(levels, kind="vlines", color="red", alpha=0.6, width=1)],
                        title=f"weights of {hist.layer} ({kind})")
