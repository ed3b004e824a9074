"""The live explorer: a Panel Viewer that trains while you drag sliders.

Hot parameters go to the runner and apply at the next step; a cold change resets the run
(the finished run stays as a faded overlay, labelled by what changed). Once the page has drawn
the app (``PageReady``), a periodic callback drains the runner's buffers on the event loop 5
times a second; only it touches the views.
"""
from __future__ import annotations

import io
import threading

import panel as pn
import param
from bokeh.models import UIElement
from panel.custom import JSComponent
from panel.io.notebook import patch_inline_stylesheets
from panel.io.resources import get_dist_path, patch_model_css
from panel.viewable import Viewer

from ..config import TrainConfig
from ..presets import PRESETS, preset
from .live_text import LiveText
from .raster import SpikeRaster
from .process_runner import ProcessRunner
from .runner import Runner
from .state import make_state, state_values, to_config, uses_log_input
from .sweep_tab import SweepPanel
from .views import (ActivityView, CurvesView, HistogramView, LRView, MembraneView, RasterView,
                    SurrogateView)

IDLE_COUNTER = "step 0 · epoch 0.00 · – samples/s"
DRAIN_MS = 180  # ~5.5 redraws a second: a margin over the 5 promised (a busy loop drops a tick)
GROUP_TITLES = {"surrogate": "Surrogate gradient", "quantization": "Quantization", "loss": "Loss & dropout",
                "sparsity": "Sparsity loss", "optimizer": "Optimizer & LR schedule", "network": "Network",
                "data": "Data & encoding", "neuron": "Neuron", "run": "Run"}


def _widget_spec(name: str, hot: bool) -> dict:
    """Widget per field: typed input for decade-spanning numbers; cold sliders fire on release."""
    p = TrainConfig.fields()[name]
    default = p.default
    if isinstance(default, bool) or p.metadata["choices"] is not None or isinstance(default, tuple):
        return {}
    if uses_log_input(name):
        return {"type": pn.widgets.FloatInput if isinstance(default, float) else pn.widgets.IntInput}
    slider = pn.widgets.EditableFloatSlider if isinstance(default, float) else pn.widgets.EditableIntSlider
    return {"type": slider, "throttled": not hot}


class PageReady(JSComponent):
    """An invisible component whose ``ready`` the page sets once it has drawn the app.

    Inline in a notebook, Panel opens its kernel → page channel with the first update it
    pushes, and the page can only accept it once it has drawn the output. An update pushed
    earlier (the first drain, while JupyterLab is still drawing a large output) opened the
    channel too soon, and that output's views never updated again: the intermittent inline
    freeze. So the explorer starts draining only when this is ready (served, the same holds
    and costs nothing).
    """

    ready = param.Boolean(default=False, doc="Set by the page when it has drawn the app")
    _esm = """
export function render({ model }) {
  model.ready = true
  const span = document.createElement("span")
  span.style.display = "none"
  return span
}
"""


def _own_stylesheets(viewable, root) -> None:
    """Render hook: Panel's stylesheets come from where the page can always reach them.

    Panel 1.9 creates them as links to cdn.holoviz.org and rewrites them on some routes only,
    so an offline page (a workshop room) lost its styles:
    - served, the page handler points them at this server's copy, but a session whose models
      are built outside that handler kept the CDN links (seen in ~1 of 8 page loads);
    - inline in a notebook (``pn.extension(inline=True)``), Panel's own route puts the CSS text
      in; its ipywidgets route (jupyter_bokeh) did not.
    """
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        patch_model_css(root, dist_url=get_dist_path(cdn=False))
    elif pn.config.inline:
        for model in root.select({"type": UIElement}):
            patch_inline_stylesheets(model)


class Explorer(Viewer):
    """One session's explorer: its own state, runner and views."""

    def __init__(self, config: TrainConfig | None = None, raster: str = "canvas", runner: str = "process",
                 **params):
        """``raster``: "canvas" (the live canvas raster, ``SpikeRaster``) or "bokeh" (the Bokeh
        ``RasterView``: slower on large layers, but a plain Bokeh figure for static export).
        ``runner``: "process" (train in a child process: the UI never slows training down) or
        "thread" (train in a thread of this process: starts faster, the trainer is inspectable
        as ``runner.trainer``)."""
        super().__init__(**params)
        if raster not in ("canvas", "bokeh"):
            raise ValueError(f"raster must be 'canvas' or 'bokeh', not {raster!r}")
        if runner not in ("process", "thread"):
            raise ValueError(f"runner must be 'process' or 'thread', not {runner!r}")
        self.raster_kind = raster
        cfg = config or preset("mnist5k-mlp")
        self.state = make_state(cfg)
        self.config = cfg
        self.runner = (ProcessRunner if runner == "process" else Runner)(cfg).start()
        self._steps_per_epoch = 0  # known once the runner has built its trainer
        self._views()
        self._controls()
        self._callback = None
        self.page_ready = PageReady(width=0, height=0, margin=0)
        self.page_ready.param.watch(self._start_drain, "ready")
        self.state.param.watch(self._on_change, list(TrainConfig.fields()))
        self._layout = self._build_layout()

    # ---- construction ----
    def _views(self):
        self.curves, self.activity = CurvesView(), ActivityView()
        if self.raster_kind == "canvas":
            self.raster = SpikeRaster(height=320, min_width=300)
            self.raster.param.watch(self._on_select, "selected")
        else:
            self.raster = RasterView()
        self.membrane = MembraneView()
        self.sweep = SweepPanel(self.config)  # grids of the current config on a Dask cluster
        self.lr, self.surrogate, self.histogram = LRView(), SurrogateView(), HistogramView()
        self.surrogate.draw(self.config)

    def _controls(self):
        self.play = pn.widgets.Button(label="Play", color="success", width=80)
        self.pause = pn.widgets.Button(label="Pause", color="warning", width=80)
        self.step_one = pn.widgets.Button(label="Step", width=70)
        self.step_epoch = pn.widgets.Button(label="Step epoch", width=100)
        self.reset = pn.widgets.Button(label="Reset", color="danger", width=80)
        self.play.on_click(lambda e: self.runner.play())
        self.pause.on_click(lambda e: self.runner.pause())
        self.step_one.on_click(lambda e: self.runner.step())
        self.step_epoch.on_click(lambda e: self.runner.step_epoch())
        self.reset.on_click(lambda e: self._restart("reset"))
        self.speed = pn.widgets.FloatSlider(label="pause between steps (s)", start=0, end=0.5, step=0.01, value=0)
        self.speed.param.watch(lambda e: self.runner.set_delay(e.new), "value")
        self.counter = LiveText(text=IDLE_COUNTER, sizing_mode="stretch_width")
        self.message = LiveText(kind="warning", visible=False, sizing_mode="stretch_width")
        self.probe_index = pn.widgets.IntInput(label="probe sample (validation index)", value=0, start=0)
        self.probe_index.param.watch(lambda e: self.runner.select_probe(e.new), "value")
        self.trace_layer = pn.widgets.IntInput(label="trace layer", value=0, start=0, width=110)
        self.trace_neurons = pn.widgets.TextInput(label="trace neurons", value="0, 1, 2", width=140)
        self.trace_layer.param.watch(lambda e: self._redraw_membrane(), "value")
        self.trace_neurons.param.watch(lambda e: self._redraw_membrane(), "value")
        self.hist_layer = pn.widgets.IntInput(label="histogram layer", value=0, start=0, width=120)
        self.presets = pn.widgets.Select(label="preset", options=["—"] + list(PRESETS), value="—")
        self.presets.param.watch(self._on_preset, "value")
        self.export = pn.widgets.FileDownload(callback=self._config_file, filename="qsnn_config.json",
                                              label="Export config", color="light")
        self.weights = pn.widgets.FileDownload(callback=self._weights_file, filename="qsnn_weights.pt",
                                               label="Download weights", color="light")
        self.importer = pn.widgets.FileInput(accept=".json", label="Import config")
        self.importer.param.watch(self._on_import, "value")

    def _param_panel(self, names: list[str], title: str) -> pn.viewable.Viewable:
        widgets = {n: _widget_spec(n, TrainConfig.fields()[n].metadata["hot"]) for n in names}
        return pn.Param(self.state, parameters=names, widgets={k: v for k, v in widgets.items() if v},
                        name=title, show_name=False, sizing_mode="stretch_width")

    def _build_layout(self):
        fields = TrainConfig.fields()
        groups: dict[tuple[bool, str], list[str]] = {}
        for name, f in fields.items():
            groups.setdefault((f.metadata["hot"], f.metadata["group"]), []).append(name)
        hot = [(GROUP_TITLES[g], self._param_panel(n, GROUP_TITLES[g])) for (h, g), n in groups.items() if h]
        cold = [(GROUP_TITLES[g], self._param_panel(n, GROUP_TITLES[g])) for (h, g), n in groups.items() if not h]
        sidebar = pn.Column(
            pn.pane.Markdown("### Live — applies at the next step"), pn.Accordion(*hot, active=[0, 1]),
            pn.pane.Markdown("### Run setup — a change resets the run"), pn.Accordion(*cold),
            self.presets, pn.Row(self.export, self.weights), self.importer,
            width=360, scroll=True, height=900)
        controls = pn.Row(self.play, self.pause, self.step_one, self.step_epoch, self.reset, self.speed)
        probe_row = pn.Row(self.probe_index, self.trace_layer, self.trace_neurons, self.hist_layer)
        plots = pn.GridBox(
            self.curves.loss, self.curves.accuracy, self._raster_pane(), self.membrane.chart,
            self.surrogate.fig, self.histogram.chart, self.lr.chart, self.activity.rates, self.activity.cost,
            ncols=2, sizing_mode="stretch_width")
        main = pn.Column(pn.pane.Markdown("## qsnn explorer: spiking networks, live"), controls,
                         self.counter, self.message, probe_row, plots, self.page_ready, sizing_mode="stretch_width")
        tabs = pn.Tabs(("Train", main), ("Sweep", self.sweep), sizing_mode="stretch_width")
        return pn.Row(sidebar, tabs, sizing_mode="stretch_width", hooks=[_own_stylesheets])

    def _raster_pane(self):
        return self.raster if self.raster_kind == "canvas" else self.raster.fig

    def __panel__(self):
        return self._layout

    def _start_drain(self, event):
        """The page has drawn the app (``PageReady``): move the runner's output into the views
        ~5 times a second from now on."""
        if event.new and self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.drain, period=DRAIN_MS)

    # ---- reactions to the user ----
    def _on_change(self, *events):
        """Served, a widget change may be applied outside the document lock (Panel flushes a
        pending change when a click arrives first); redraws then go through the next tick."""
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            doc.add_next_tick_callback(self._apply_state)
        else:
            self._apply_state()

    def _apply_state(self):
        try:
            new = to_config(self.state)
        except ValueError as exc:
            self._say(f"Not applied: {exc}")
            return
        changed = self.config.diff(new)
        if not changed:
            return
        cold = [n for n in changed if n in TrainConfig.cold_fields()]
        if cold:
            self._restart(", ".join(f"{n} {a}→{b}" for n, (a, b) in changed.items()), new)
            return
        self.config = new
        self.runner.set_hot(**{n: getattr(new, n) for n in changed})
        if any(n.startswith(("surrogate", "adali")) for n in changed):
            self.surrogate.draw(new)
        if any(n.startswith("lr") or n == "epochs" for n in changed) and self._steps_per_epoch:
            self.lr.draw(new, new.epochs * self._steps_per_epoch)

    def _restart(self, label: str, cfg: TrainConfig | None = None):
        cfg = cfg or self.config
        self.curves.new_run(label)
        self.activity.reset()
        self.config = cfg
        self.runner.reset(cfg)
        self._say(f"Run reset ({label})." if label != "reset" else "", kind="info")

    def _on_select(self, event):
        """A neuron clicked in the raster becomes the first membrane trace (of its layer)."""
        if len(event.new) != 2:
            return
        layer, neuron = (int(v) for v in event.new)
        others = [n for n in self._trace_neurons() if n != neuron] if layer == self.trace_layer.value else []
        self._selecting = True  # one membrane redraw for both widget changes
        try:
            self.trace_layer.value = layer
            self.trace_neurons.value = ", ".join(str(n) for n in [neuron, *others][:3])
        finally:
            self._selecting = False
        self._redraw_membrane()

    def _trace_neurons(self) -> list[int]:
        return [int(n) for n in self.trace_neurons.value.replace(" ", "").split(",") if n.isdigit()][:3]

    def _redraw_membrane(self):
        shown = getattr(self, "_shown", None)
        if shown is not None and not getattr(self, "_selecting", False):
            self.membrane.update(shown.probe, self.trace_layer.value, self._trace_neurons())

    def _on_preset(self, event):
        if event.new in PRESETS:
            self.apply_config(preset(event.new))

    def apply_config(self, cfg: TrainConfig):
        """Load a whole config into the controls (a cold difference resets the run)."""
        with param.parameterized.batch_call_watchers(self.state):
            self.state.param.update(**state_values(cfg))

    def _on_import(self, event):
        try:
            cfg = TrainConfig.from_json(event.new.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            self._say(f"Config not imported, nothing changed: {exc}")
            return
        self.apply_config(cfg)

    def _config_file(self):
        return io.StringIO(self.config.to_json())

    def _weights_file(self):
        return io.BytesIO(self.runner.weights())  # taken between two steps, also while training

    def _say(self, text: str, kind: str = "warning"):
        self.message.text, self.message.kind, self.message.visible = text, kind, bool(text)

    # ---- the drain: runs on the event loop ----
    def drain(self):
        """Move the runner's frames and latest snapshot into the views. Never raises: an error is
        shown in the app and the next drain tries again. (Inline in a notebook, Panel runs this
        as an asyncio task that ends for good on the first exception, freezing every view.)"""
        try:
            with pn.io.hold():  # served: one combined message per drain, one render pass in the page
                self._drain()
        except Exception as exc:  # noqa: BLE001 - the app must outlive any view bug
            self._say(f"A view could not be updated ({type(exc).__name__}: {exc}); training goes on.", "danger")

    def _drain(self):
        frames, evals = [], []
        while self.runner.frames:
            item = self.runner.frames.popleft()
            if isinstance(item, tuple):  # ("reset", run_id, RunInfo): a new trainer is in place
                frames, evals, info = [], [], item[2]
                self._steps_per_epoch = info.steps_per_epoch
                self.counter.text = IDLE_COUNTER
                self.lr.draw(self.config, self.config.epochs * self._steps_per_epoch)
                self.activity.show_layers(info.lif_layers)
            elif item.kind == "step":
                frames.append(item)
            else:
                evals.append(item)
        while self.runner.messages:
            self._say(self.runner.messages.popleft())
        if frames or evals:
            self.curves.add(frames, evals)
            self.activity.add(frames)
        if frames:
            last = frames[-1]
            self.lr.move(last.step - 1, last.lr)
            rate = sum(f.samples_per_s * f.step_time for f in frames) / sum(f.step_time for f in frames)
            self.counter.text = (f"step {last.step} · epoch {last.epoch:.2f} · "
                                 f"{rate:,.0f} samples/s · loss {last.loss:.4g} · "
                                 f"batch accuracy {last.accuracy:.3f}")
        snap = self.runner.snapshot
        if snap is not None and snap is not getattr(self, "_shown", None):
            self._shown = snap
            self.raster.update(snap.probe)
            self._redraw_membrane()
            hist = snap.histograms[min(self.hist_layer.value, len(snap.histograms) - 1)]
            self.histogram.update(hist, self.runner.cfg.weight_bits)

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop training and the periodic callback (session end, or notebook clean-up); True when
        the training thread ended within ``timeout`` s (a thread still building its first Trainer
        in a fresh process finishes that first). A sweep and its cluster are stopped in the
        background (closing a cluster takes seconds)."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        threading.Thread(target=self.sweep.stop, name="sweep-stop", daemon=True).start()
        return self.runner.stop(timeout)

    @property
    def config(self) -> TrainConfig:
        """The run's current configuration; the Sweep tab sweeps around it."""
        return self._config

    @config.setter
    def config(self, cfg: TrainConfig):
        self._config = cfg
        if getattr(self, "sweep", None) is not None:
            self.sweep.config = cfg


def explore(config: TrainConfig | None = None, raster: str = "canvas", runner: str = "process") -> Explorer:
    """The explorer for ``config`` (default: the mnist5k MLP), to display inline in JupyterLab.
    ``raster="bokeh"`` draws the spike raster with Bokeh instead (e.g. for a static HTML export);
    ``runner="thread"`` trains in the kernel's process instead of a child process."""
    pn.extension()
    return Explorer(config, raster=raster, runner=runner)


def create_app() -> pn.viewable.Viewable:
    """Per-session app for ``panel serve``: its own engine, URL-synced state, stopped on close."""
    explorer = Explorer()
    if pn.state.location is not None:
        pn.state.location.sync(explorer.state, {n: n for n in TrainConfig.fields()})
    pn.state.on_session_destroyed(lambda ctx: explorer.stop())
    return explorer.__panel__()
