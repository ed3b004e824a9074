"""The canvas live chart: ``js/chart.js`` wrapped as a Panel ``JSComponent``.

A chart is redrawn whole from one packed ``payload``: a small JSON header (title, axes, the
series' styles) and the series' numbers as float32, laid out as documented at the top of
``js/chart.js`` and written by :func:`pack_chart`, sent as base64 text (``raster.wire_text``;
the raster module says why not as a binary buffer). Long lines are thinned to at most
``MAX_POINTS`` points (each bucket keeps its minimum and maximum, so spikes in a loss curve stay
visible). The browser redraws at most once per animation frame, however many payloads arrive.
"""
from __future__ import annotations

import dataclasses
import json
import struct

import numpy as np
import param

from .raster import CanvasComponent, js_path

MAGIC = b"QSC1"
# per line: 100 buckets (first, min, max), ~6 px each in the explorer's 2-column grid; fewer
# points to pack, send and stroke (chromium took ~0.03 of a core more at 500 than at 100)
MAX_POINTS = 300
KINDS = ("line", "points", "bars", "vlines")


@dataclasses.dataclass
class Series:
    """One drawn series. ``line``: x ascending, NaN breaks it; ``points``: markers; ``bars``:
    ``x`` the len(y) + 1 bin edges; ``vlines``: full-height lines at ``x`` (no ``y``)."""

    x: np.ndarray
    y: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    label: str = ""          # shown in the legend and the hover read-out; "" for neither
    kind: str = "line"
    color: str = "#1f77b4"
    alpha: float = 1.0
    width: float = 1.5
    dash: bool = False
    marker: str = "circle"   # points: circle | diamond | triangle
    size: float = 6.0        # points: diameter in CSS pixels

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        self.x, self.y = np.asarray(self.x, dtype=np.float32), np.asarray(self.y, dtype=np.float32)
        want = {"bars": len(self.y) + 1, "vlines": len(self.x)}.get(self.kind, len(self.y))
        if len(self.x) != want or (self.kind == "vlines" and len(self.y)):
            raise ValueError(f"a {self.kind} series needs {want} x values, got {len(self.x)} (y: {len(self.y)})")


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of an x-ascending series: equal-count buckets keep their
    first point, minimum and maximum (in x order), and the last point is kept, so the curve's
    envelope survives."""
    n = len(x)
    if n <= max_points:
        return x, y
    k = -(-n // max(1, (max_points - 1) // 3))  # points per bucket
    m = -(-n // k)
    rows = np.concatenate([y, np.full(m * k - n, np.nan, y.dtype)]).reshape(m, k)
    finite = np.isfinite(rows)
    start = np.arange(m) * k
    keep = np.concatenate([start, start + np.argmin(np.where(finite, rows, np.inf), axis=1),
                           start + np.argmax(np.where(finite, rows, -np.inf), axis=1), [n - 1]])
    keep = np.unique(keep[keep < n])
    return x[keep], y[keep]


def pack_chart(header: dict, series: list[Series]) -> bytes:
    """One chart as bytes: "QSC1", the header's length, the header (JSON, padded to 4 bytes),
    then each series' x and y as little-endian float32."""
    meta = []
    for s in series:
        style = {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.name not in ("x", "y")}
        meta.append(dict(style, nx=len(s.x), ny=len(s.y)))
    text = json.dumps(dict(header, series=meta), allow_nan=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 4)
    body = [np.ascontiguousarray(a, dtype="<f4").tobytes() for s in series for a in (s.x, s.y)]
    return b"".join([MAGIC, struct.pack("<I", len(text)), text, *body])


class LiveChart(CanvasComponent):
    """A line / points / bars chart on a canvas, redrawn from ``show``; the hover line reads out
    each labelled series at the nearest x. ``payload``: a :func:`pack_chart` chart."""

    chart_name = param.String(default="", doc="data-chart attribute of the element (tests find it by it)")
    title = param.String(default="", precedence=-1)
    x_label = param.String(default="", precedence=-1)
    y_log = param.Boolean(default=False, precedence=-1, doc="log10 y axis (non-positive values are not drawn)")
    y_range = param.Tuple(default=(None, None), length=2, precedence=-1, doc="fixed y ends; None: from the data")
    legend = param.Selector(default="top_right", objects=["top_right", "bottom_right", "none"], precedence=-1)

    _esm = js_path("chart.js")
    _rename = {"title": None, "x_label": None, "y_log": None, "y_range": None, "legend": None}  # Python side only

    def __init__(self, **params):
        super().__init__(**params)
        self.series: list[Series] = []   # what was last shown, thinned (for tests and export)
        self.hlines: list[dict] = []

    def show(self, series: list[Series], hlines: tuple[dict, ...] = (), title: str | None = None):
        """Draw ``series`` (lines thinned to ``MAX_POINTS``) and horizontal lines ``{y, color, dash}``."""
        if title is not None:
            self.title = title
        shown = [dataclasses.replace(s, **dict(zip("xy", thin(s.x, s.y)))) if s.kind == "line" else s
                 for s in series]
        self._seq += 1
        lo, hi = self.y_range
        header = dict(title=self.title, x_label=self.x_label, y_log=self.y_log, y_min=lo, y_max=hi,
                      legend=self.legend, seq=self._seq,
                      hlines=[dict(h, y=float(h["y"])) for h in hlines if np.isfinite(h["y"])])
        self.series, self.hlines = shown, header["hlines"]
        self._send(pack_chart(header, shown))
