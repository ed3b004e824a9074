"""The Sweep tab: two parameters × their values × seeds, run on Dask, two heatmaps filling in live.

The sweep runs in a background thread (never on the event loop). Each finished row goes into a
deque; served, the thread asks the document to drain it at the next tick
(``doc.add_next_tick_callback``, the only document call that is safe from another thread);
elsewhere (a notebook) a periodic callback drains it. Only ``drain`` touches the figures, and
it patches their ``ColumnDataSource`` in place. The Dask cluster (a LocalCluster of worker
processes, unless a client or scheduler address is given) is started on the first run, kept for
the next ones and closed by ``stop``.
"""
from __future__ import annotations

import math
import threading
from collections import deque

import panel as pn
from bokeh.models import ColumnDataSource, FactorRange, LinearColorMapper
from bokeh.palettes import Viridis256
from bokeh.plotting import figure
from panel.viewable import Viewer

from ..cli import parse_grid
from ..config import TrainConfig
from ..presets import preset
from ..sweep import expand_grid, local_cluster, sweep
from .live_text import LiveText

DRAIN_MS = 250
MAX_CELLS = 400  # bound on the heatmap (and on the runs one click can start, with MAX_RUNS)
MAX_RUNS = 2000


def sweepable_fields() -> list[str]:
    """Fields a grid can vary: those with bounds or choices, except the seed (it has its own input)."""
    return [n for n, f in TrainConfig.fields().items()
            if n != "seed" and (f.metadata["bounds"] is not None or f.metadata["choices"] is not None)]


def default_values(cfg: TrainConfig, name: str) -> str:
    """A starting text for the values box: a few choices, or the current value ×⅓, ×1, ×3 within bounds."""
    meta, value = TrainConfig.fields()[name].metadata, getattr(cfg, name)
    if meta["choices"] is not None:
        others = [c for c in meta["choices"] if c != value]
        return ", ".join(str(c) for c in [value, *others[:2]])
    if isinstance(value, tuple):
        return f"[{','.join(map(str, value))}]"
    lo, hi = meta["bounds"]
    values = [value / 3, value, value * 3] if isinstance(value, float) and value > 0 else [value]
    return ", ".join(f"{v:.3g}" for v in values if lo <= v <= hi)


def heatmap(title: str, mapper: LinearColorMapper, source: ColumnDataSource, field: str, label: str):
    """Cells of (x, y) factors coloured by ``field`` through ``mapper``, with ``label`` written in each."""
    fig = figure(title=title, x_range=FactorRange(), y_range=FactorRange(), width=460, height=340,
                 toolbar_location=None, tools="hover",
                 tooltips=[("cell", "@x, @y"), (title, f"@{label}"), ("runs", "@n"), ("errors", "@errors")])
    fig.rect("x", "y", 1, 1, source=source, fill_color={"field": field, "transform": mapper}, line_color="white")
    fig.text("x", "y", text=label, source=source, text_align="center", text_baseline="middle",
             text_font_size="9pt", text_color="black")
    fig.grid.grid_line_color = None
    return fig


class SweepPanel(Viewer):
    """Pick two parameters and their values, run the grid × seeds, watch accuracy and spikes fill in."""

    def __init__(self, config: TrainConfig | None = None, client=None, workers: int | None = None, **params):
        super().__init__(**params)
        self.config = config or preset("digits8x8-mlp")
        self.client, self.workers = client, workers
        self._own_client = self._cluster = None
        self._queue: deque = deque(maxlen=MAX_RUNS + 10)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._doc = None
        self._callback = None
        self._cells: dict[tuple[str, str], list[dict]] = {}
        self._index: dict[tuple[str, str], int] = {}
        self._build()

    # ---- construction ----
    def _build(self):
        names = sweepable_fields()
        self.x_name = pn.widgets.Select(label="parameter x", options=names, value="surrogate", width=170)
        self.y_name = pn.widgets.Select(label="parameter y", options=names, value="lr", width=170)
        self.x_values = pn.widgets.TextInput(label="x values (comma-separated)",
                                             value=default_values(self.config, "surrogate"), width=300)
        self.y_values = pn.widgets.TextInput(label="y values (comma-separated)",
                                             value=default_values(self.config, "lr"), width=300)
        self.x_name.param.watch(lambda e: setattr(self.x_values, "value", default_values(self.config, e.new)), "value")
        self.y_name.param.watch(lambda e: setattr(self.y_values, "value", default_values(self.config, e.new)), "value")
        self.seeds = pn.widgets.IntInput(label="seeds", value=2, start=1, end=50, width=80)
        self.epochs = pn.widgets.IntInput(label="epochs", value=self.config.epochs, start=1, end=10_000, width=90)
        self.run_button = pn.widgets.Button(label="Run sweep", color="success", width=110)
        self.stop_button = pn.widgets.Button(label="Stop", color="warning", width=80, disabled=True)
        self.run_button.on_click(lambda e: self.run())
        self.stop_button.on_click(lambda e: self._stop.set())
        self.progress = LiveText(text="Choose two parameters and their values, then press Run sweep.")
        self.dashboard = LiveText()
        self.message = LiveText(kind="warning", visible=False)
        self.source = ColumnDataSource(self._empty())
        self.acc_mapper = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0, nan_color="#e8e8e8")
        self.spike_mapper = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0, nan_color="#e8e8e8")
        self.acc_fig = heatmap("final validation accuracy (mean over seeds)", self.acc_mapper, self.source,
                               "acc", "acc_label")
        self.spike_fig = heatmap("hidden spikes per sample (mean over seeds)", self.spike_mapper, self.source,
                                 "spikes", "spikes_label")
        self._layout = pn.Column(
            pn.pane.Markdown("## Sweep: a grid of configurations on a Dask cluster"),
            pn.Row(self.x_name, self.x_values), pn.Row(self.y_name, self.y_values),
            pn.Row(self.seeds, self.epochs, self.run_button, self.stop_button),
            self.progress, self.dashboard, self.message, pn.Row(self.acc_fig, self.spike_fig))

    @staticmethod
    def _empty() -> dict:
        return {k: [] for k in ("x", "y", "acc", "acc_label", "spikes", "spikes_label", "n", "errors")}

    def __panel__(self):
        doc = pn.state.curdoc
        if self._callback is None and (doc is None or doc.session_context is None):
            self._callback = pn.state.add_periodic_callback(self.drain, period=DRAIN_MS)  # notebook
        return self._layout

    # ---- the run (event loop: validate, lay out the empty grid, start the thread) ----
    def run(self) -> bool:
        """Start a sweep from the widgets; False (with a message) when the inputs are not valid or one runs."""
        if self._thread is not None and self._thread.is_alive():
            self._say("A sweep is running: stop it first.")
            return False
        x, y = self.x_name.value, self.y_name.value
        try:
            if x == y:
                raise ValueError("choose two different parameters")
            grid = parse_grid([f"{x}={self.x_values.value}", f"{y}={self.y_values.value}"])
            base = self.config.replace(epochs=self.epochs.value)
            seeds = list(range(self.seeds.value))
            runs = expand_grid(base, grid, seeds)  # every name and value checked here, before anything runs
        except ValueError as exc:
            self._say(f"Not started: {exc}")
            return False
        xs = list(dict.fromkeys(str(p[x]) for p, _ in runs))
        ys = list(dict.fromkeys(str(p[y]) for p, _ in runs))
        if len(xs) * len(ys) > MAX_CELLS or len(runs) > MAX_RUNS:
            self._say(f"Not started: {len(xs)}×{len(ys)} cells × {len(seeds)} seeds is too many for the tab "
                      f"(≤ {MAX_CELLS} cells, ≤ {MAX_RUNS} runs); use `qsnn-explorer sweep`.")
            return False
        self._say("")
        self._start_grid(x, y, xs, ys, len(runs))
        self._stop.clear()
        self._doc = pn.state.curdoc  # a ContextVar: captured here, on the event loop
        self._thread = threading.Thread(target=self._work, args=(base, grid, seeds), name="qsnn-sweep",
                                        daemon=True)
        self.run_button.disabled, self.stop_button.disabled = True, False
        self._thread.start()
        return True

    def _start_grid(self, x, y, xs, ys, total):
        self._x, self._y, self._total, self._done, self._errors = x, y, total, 0, 0
        self._n_seeds = total // (len(xs) * len(ys))
        cells = [(cx, cy) for cy in ys for cx in xs]
        self._cells = {c: [] for c in cells}
        self._index = {c: i for i, c in enumerate(cells)}
        nan = [math.nan] * len(cells)
        for fig in (self.acc_fig, self.spike_fig):
            fig.x_range.factors, fig.y_range.factors = xs, ys
            fig.xaxis.axis_label, fig.yaxis.axis_label = x, y
        self.source.data = {"x": [c[0] for c in cells], "y": [c[1] for c in cells], "acc": nan, "spikes": list(nan),
                            "acc_label": [""] * len(cells), "spikes_label": [""] * len(cells),
                            "n": [0] * len(cells), "errors": [0] * len(cells)}
        self.progress.text = f"0 / {total} runs finished"

    # ---- the thread ----
    def _work(self, base, grid, seeds):
        try:
            client = self._ensure_client()
            self._post(("dashboard", getattr(client, "dashboard_link", None)))
            sweep(base, grid, seeds, client=client, progress=False,
                  on_result=lambda row: self._post(("row", row)) and not self._stop.is_set())
            self._post(("done", "stopped" if self._stop.is_set() else "finished"))
        except Exception as exc:  # the app survives anything a sweep can do
            self._post(("done", f"failed: {type(exc).__name__}: {exc}"))

    def _ensure_client(self):
        if self.client is not None and not isinstance(self.client, str):
            return self.client
        if self._own_client is None:
            from distributed import Client

            if isinstance(self.client, str):
                self._own_client = Client(self.client)
            else:
                self._cluster = local_cluster(self.workers, dashboard_address=":0")
                self._own_client = Client(self._cluster)
        return self._own_client

    def _post(self, item) -> bool:
        self._queue.append(item)
        doc = self._doc
        if doc is not None and doc.session_context is not None:
            doc.add_next_tick_callback(self.drain)
        return True

    # ---- the drain: on the event loop ----
    def drain(self):
        while self._queue:
            kind, value = self._queue.popleft()
            if kind == "row":
                self._add_row(value)
            elif kind == "dashboard":
                self.dashboard.param.update(text=f"Dask dashboard: {value}" if value else "", link=value or "")
            elif kind == "done":
                self.run_button.disabled, self.stop_button.disabled = False, True
                self.progress.text = f"{self._done} / {self._total} runs {value}, {self._errors} with errors"
                if value.startswith("failed"):
                    self._say(f"Sweep {value}")

    def _add_row(self, row: dict):
        cell = (str(row[self._x]), str(row[self._y]))
        if cell not in self._index:
            return
        self._done += 1
        self._cells[cell].append(row)
        rows = self._cells[cell]
        good = [r for r in rows if r["error"] is None]
        errors = len(rows) - len(good)
        self._errors += row["error"] is not None
        if row["error"] is not None:
            self._say(f"{self._x}={cell[0]}, {self._y}={cell[1]}, seed {row['seed']}: {row['error']}")
        acc = sum(r["final_val_accuracy"] for r in good) / len(good) if good else math.nan
        spikes = sum(r["spikes_per_sample"] for r in good) / len(good) if good else math.nan
        mark = f" ({len(rows)}/{self._n_seeds}{', ' + str(errors) + ' err' if errors else ''})"
        i = self._index[cell]
        self.source.patch({"acc": [(i, acc)], "spikes": [(i, spikes)], "n": [(i, len(rows))],
                           "errors": [(i, errors)],
                           "acc_label": [(i, ("–" if not good else f"{acc * 100:.1f}%") + mark)],
                           "spikes_label": [(i, ("–" if not good else f"{spikes:.1f}") + mark)]})
        finite = [v for v in self.source.data["spikes"] if not math.isnan(v)]
        if finite:
            self.spike_mapper.low, self.spike_mapper.high = min(finite), max(max(finite), min(finite) + 1e-9)
        self.progress.text = f"{self._done} / {self._total} runs finished, {self._errors} with errors"

    def _say(self, text: str):
        self.message.text, self.message.visible = text, bool(text)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the sweep (after the task in hand) and close the cluster this panel started."""
        self._stop.set()
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        if self._thread is not None:
            self._thread.join(timeout)
        alive = self._thread is not None and self._thread.is_alive()
        if self._own_client is not None:
            self._own_client.close()
            self._own_client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        return not alive
