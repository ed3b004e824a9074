"""Browser benchmark: the canvas spike raster (js/raster.js, SpikeRaster) against the Bokeh raster
(RasterView), in headless Debian chromium, one run.

Rasters of one layer, N neurons x T steps, spike probability 0.1: 100 x 100, 1,000 x 100, 1,000 x 500.

1. Pure redraw (in the page, no transfer): the page makes 8 random frames itself and swaps them
   in as fast as the renderer lets it, one frame per redraw.
   - canvas: ``setPayload(buffer)`` (decode + rates, timed) then the rAF redraw (timed inside
     draw()): time per redraw = decode + draw.
   - Bokeh: ``source.data = {t, y, layer, neuron}`` as Int32Arrays (what RasterView sends), the
     synchronous part timed (glyph data mapping and spatial index), then the plot's next paint,
     timed by wrapping that PlotView's ``paint`` method: time per redraw = set + paint.
   Redraws/s = redraws completed ÷ wall time of the loop (next frame only after the last one was
   painted), so it is capped by the display rate (60 Hz) when a redraw costs less than a frame.
2. End to end (Python → websocket → browser): the server pushes a new frame every 16 ms from a
   periodic callback (SpikeRaster.update / RasterView.update of a Probe, as the explorer does);
   the page counts the distinct frames actually drawn per second; bytes per frame = all bytes the
   page's websocket received in the window ÷ the PATCH-DOC messages among them (one per frame
   pushed; Bokeh's protocol: JSON header/metadata/content frames + binary buffer frames).
   The canvas is measured with and without the 8-bit membrane (the explorer sends it, for hover).

    python benchmarks/bench_raster.py [--seconds 5] [--out benchmarks/RESULTS_RASTER.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

from _report import publish  # benchmarks/ is on sys.path when run as a script
from _servers import CHROMIUM_ARGS, free_port, start_and_wait

SIZES = [(100, 100), (1000, 100), (1000, 500)]
P_SPIKE = 0.1
PUSH_MS = 16
WIDTH, HEIGHT = 900, 420


# ------------------------------------------------------------------------------ the served page
def _probe(n: int, T: int, seed: int):
    import torch

    from qsnn_explorer.trainer import LayerProbe, Probe
    g = torch.Generator().manual_seed(seed)
    spikes = (torch.rand(T, n, generator=g) < P_SPIKE).to(torch.uint8)
    layer = LayerProbe("hidden", spikes, torch.randn(T, n, generator=g), 1.0)
    return Probe(label=0, prediction=0, image=torch.zeros(1), inputs=torch.zeros(T, 1), layers=(layer,),
                 output=torch.zeros(T, 10))


def app():
    """One session: ?kind=canvas|canvas_mem|bokeh&n=N&T=T. Pushes nothing until the page calls
    ``push`` (a button), then a frame every PUSH_MS until ``stop``."""
    import panel as pn

    from qsnn_explorer.app.raster import SpikeRaster
    from qsnn_explorer.app.views import RasterView

    args = {k: v[0].decode() for k, v in pn.state.session_args.items()}
    kind, n, T = args.get("kind", "canvas"), int(args.get("n", 100)), int(args.get("T", 100))
    probes = [_probe(n, T, seed) for seed in range(8)]
    if kind == "bokeh":
        view = RasterView(max_neurons=n)
        view.fig.width, view.fig.height, view.fig.sizing_mode = WIDTH, HEIGHT, "fixed"
        pane = view.fig
    else:
        view = SpikeRaster(max_neurons=n, send_membrane=kind == "canvas_mem", width=WIDTH, height=HEIGHT,
                           sizing_mode="fixed")
        pane = view
    view.update(probes[0])
    state = {"i": 0, "cb": None}

    def push():
        state["i"] += 1
        view.update(probes[state["i"] % len(probes)])

    start = pn.widgets.Button(label="push")
    stop = pn.widgets.Button(label="stop")

    def on_start(event):
        if state["cb"] is None:
            state["cb"] = pn.state.add_periodic_callback(push, period=PUSH_MS)

    def on_stop(event):
        if state["cb"] is not None:
            state["cb"].stop()
            state["cb"] = None

    start.on_click(on_start)
    stop.on_click(on_stop)
    pn.state.on_session_destroyed(lambda ctx: on_stop(None))  # no pushing into a closed page
    return pn.Column(pane, pn.Row(start, stop))


def serve_main(port: int) -> None:
    os.environ.setdefault("BOKEH_RESOURCES", "server")
    import panel as pn
    pn.serve({"/": app}, port=port, address="127.0.0.1", websocket_origin=[f"127.0.0.1:{port}"], show=False,
             title="raster bench")


# ------------------------------------------------------------------------------ in-page JS
# Random payload bytes in the page (the format of js/raster.js: header, one layer, bit-packed rows).
CANVAS_PURE_JS = """async ([n, T, p, seconds]) => {
  const root = window.__raster;
  const c = root.qsnnRaster;
  const bpr = (T + 7) >> 3, head = 16 + 20 + 2;  // header, one layer, an empty name (u16 0)
  const frames = [];
  for (let f = 0; f < 8; f++) {
    const b = new Uint8Array(head + n * bpr), v = new DataView(b.buffer);
    b.set([81, 83, 82, 49]); v.setUint16(4, 1, true); v.setUint16(6, 0, true);
    v.setUint32(8, T, true); v.setUint32(12, 1000000 + f, true);
    v.setUint32(16, n, true); v.setUint32(20, n, true); v.setFloat32(28, 1, true); v.setFloat32(32, 1, true);
    for (let r = 0; r < n; r++) for (let t = 0; t < T; t++) if (Math.random() < p) b[head + r * bpr + (t >> 3)] |= 1 << (t & 7);
    frames.push(b.buffer);
  }
  const costs = [];
  let done = null;
  c.onDraw(s => { if (done) { const d = done; done = null; d(s); } });
  const t0 = performance.now();
  let k = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const drawn = new Promise(res => { done = res; });
    c.setPayload(frames[k++ % frames.length]);
    const s = await drawn;
    costs.push(s.lastPayloadMs + s.lastDrawMs);
  }
  const wall = performance.now() - t0;
  return {redraws: costs.length, wall_ms: wall, costs};
}"""

# The Bokeh raster's source and its PlotView (pv): the view is found by walking Bokeh's view tree.
BOKEH_RASTER_VIEW_JS = """  const doc = Bokeh.documents[0];
  const source = doc.get_model_by_name("raster_source"), fig = doc.get_model_by_name("fig_raster");
  const views = [];
  const walk = v => { if (!v || views.includes(v)) return; views.push(v);
    for (const c of (v.child_views || [])) walk(c); if (v.views) for (const c of v.views) walk(c); };
  for (const v of Bokeh.index) walk(v);
  const pv = views.find(v => v.model === fig);
"""

BOKEH_PURE_JS = """async ([n, T, p, seconds]) => {
""" + BOKEH_RASTER_VIEW_JS + """  if (!pv) throw new Error("no view of fig_raster");
  let done = null, paintMs = 0;
  const paint = pv.paint.bind(pv);
  pv.paint = () => { const t = performance.now(); paint(); paintMs = performance.now() - t;
                     if (done) { const d = done; done = null; d(); } };
  const frames = [];
  for (let f = 0; f < 8; f++) {
    const t = [], y = [];
    for (let r = 0; r < n; r++) for (let s = 0; s < T; s++) if (Math.random() < p) { t.push(s); y.push(r); }
    frames.push({t: Int32Array.from(t), y: Int32Array.from(y), layer: new Int32Array(t.length), neuron: Int32Array.from(y)});
  }
  const costs = [];
  const t0 = performance.now();
  let k = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const painted = new Promise(res => { done = res; });
    const ts = performance.now();
    source.data = frames[k++ % frames.length];
    const setMs = performance.now() - ts;
    await painted;
    costs.push(setMs + paintMs);
  }
  return {redraws: costs.length, wall_ms: performance.now() - t0, costs};
}"""

# Counting drawn frames during the end-to-end window.
CANVAS_E2E_JS = """async (seconds) => {
  const c = window.__raster.qsnnRaster, s = c.stats;
  const seqs = new Set(); const p0 = s.payloads;
  c.onDraw(st => { if (window.__counting) seqs.add(st.seq); });
  window.__counting = true;
  await new Promise(r => setTimeout(r, seconds * 1000));
  window.__counting = false;
  return {shown: seqs.size, received: s.payloads - p0};
}"""

BOKEH_E2E_JS = """async (seconds) => {
""" + BOKEH_RASTER_VIEW_JS + """  let received = 0, dirty = false, shown = 0;
  const onChange = () => { received++; dirty = true; };
  source.properties.data.change.connect(onChange);
  const paint = pv.paint.bind(pv);
  pv.paint = () => { paint(); if (dirty) { shown++; dirty = false; } };
  await new Promise(r => setTimeout(r, seconds * 1000));
  pv.paint = paint;
  return {shown, received};
}"""


# ------------------------------------------------------------------------------ driver


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "BOKEH_RESOURCES": "server", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    return start_and_wait([sys.executable, __file__, "--serve", str(port)], port, "bench server", env=env)


def open_page(browser, url: str, kind: str):
    page = browser.new_page(viewport={"width": 1100, "height": 700})
    ws_bytes = {"n": 0, "patches": 0, "on": False}

    def on_frame(payload):
        if not ws_bytes["on"]:
            return
        ws_bytes["n"] += len(payload)
        if isinstance(payload, str) and '"msgtype":"PATCH-DOC"' in payload.replace(" ", ""):
            ws_bytes["patches"] += 1  # one Bokeh message (header frame) per frame pushed

    def on_ws(ws):
        ws.on("framereceived", on_frame)

    page.on("websocket", on_ws)
    page.on("pageerror", lambda exc: print("pageerror:", exc, file=sys.stderr))
    page.goto(url)
    if kind == "bokeh":
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length && "
                               "Bokeh.documents[0].get_model_by_name('raster_source') && "
                               "Bokeh.documents[0].get_model_by_name('raster_source').get_length() > 0",
                               timeout=60_000)
    else:
        el = page.locator(".qsnn-raster")
        el.wait_for(state="attached", timeout=60_000)
        el.evaluate("el => { window.__raster = el; }")
        page.wait_for_function("() => window.__raster.qsnnRaster.stats.seq >= 1", timeout=60_000)
    page.wait_for_timeout(500)
    return page, ws_bytes


def measure(browser, base: str, kind: str, n: int, T: int, seconds: float) -> dict:
    out = {}
    page, ws = open_page(browser, f"{base}?kind={kind}&n={n}&T={T}", kind)
    if kind != "canvas_mem":
        js = BOKEH_PURE_JS if kind == "bokeh" else CANVAS_PURE_JS
        r = page.evaluate(js, [n, T, P_SPIKE, seconds])
        costs = sorted(r["costs"][2:] or r["costs"])  # the first two include warm-up
        out["pure_ms"] = statistics.median(costs)
        out["pure_p90_ms"] = costs[int(0.9 * (len(costs) - 1))]
        out["pure_per_s"] = r["redraws"] / (r["wall_ms"] / 1000)
        page.close()  # the pure loop patched the page; a fresh page for end to end
        page, ws = open_page(browser, f"{base}?kind={kind}&n={n}&T={T}", kind)
    page.get_by_role("button", name="push").click()
    page.wait_for_timeout(1000)  # warm-up
    ws["on"] = True
    r = page.evaluate(BOKEH_E2E_JS if kind == "bokeh" else CANVAS_E2E_JS, seconds)
    ws["on"] = False
    page.get_by_role("button", name="stop").click()
    page.wait_for_timeout(1000)  # let the stop reach the server before the page goes
    out["e2e_per_s"] = r["shown"] / seconds
    out["received_per_s"] = r["received"] / seconds
    out["bytes_per_frame"] = ws["n"] / max(1, ws["patches"])
    out["messages_per_s"] = ws["patches"] / seconds
    page.close()
    return out


def fmt_bytes(b: float) -> str:
    return f"{b / 1024:.1f} KiB" if b >= 1024 else f"{b:.0f} B"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured window")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "RESULTS_RASTER.md"))
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_main(args.serve)
        return 0
    from playwright.sync_api import sync_playwright
    load0 = os.getloadavg()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    port = free_port()
    proc = start_server(port)
    results: dict[tuple[str, int, int], dict] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for n, T in SIZES:
                for kind in ("canvas", "canvas_mem", "bokeh"):
                    results[(kind, n, T)] = r = measure(browser, f"http://127.0.0.1:{port}/", kind, n, T, args.seconds)
                    print(kind, n, T, {k: round(v, 2) for k, v in r.items()}, flush=True)
            version = browser.version
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    load1 = os.getloadavg()
    rows = []
    for n, T in SIZES:
        c, m, b = results[("canvas", n, T)], results[("canvas_mem", n, T)], results[("bokeh", n, T)]
        rows.append(f"| {n:,} × {T} | {c['pure_ms']:.2f} ms (p90 {c['pure_p90_ms']:.2f}) | {c['pure_per_s']:.0f} "
                    f"({1000 / c['pure_ms']:.0f}) "
                    f"| {b['pure_ms']:.1f} ms (p90 {b['pure_p90_ms']:.1f}) | {b['pure_per_s']:.1f} "
                    f"({1000 / b['pure_ms']:.0f}) "
                    f"| {b['pure_ms'] / c['pure_ms']:.0f}× |")
    e2e = []
    for n, T in SIZES:
        c, m, b = results[("canvas", n, T)], results[("canvas_mem", n, T)], results[("bokeh", n, T)]
        e2e.append(f"| {n:,} × {T} | {c['e2e_per_s']:.1f} ({c['received_per_s']:.1f}) | {fmt_bytes(c['bytes_per_frame'])} "
                   f"| {m['e2e_per_s']:.1f} ({m['received_per_s']:.1f}) | {fmt_bytes(m['bytes_per_frame'])} "
                   f"| {b['e2e_per_s']:.1f} ({b['received_per_s']:.1f}) | {fmt_bytes(b['bytes_per_frame'])} |")
    c, b = results[("canvas", 1000, 100)], results[("bokeh", 1000, 100)]
    floor_rate = c["pure_per_s"] >= 30
    floor_speed = b["pure_ms"] / c["pure_ms"] >= 5
    text = "\n".join([
        "# Canvas spike raster vs Bokeh raster (headless chromium)", "",
        f"- date: {date}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; load average (1 min, this benchmark's "
        f"server and browser included) {load0[0]:.2f} at start, {load1[0]:.2f} at end. Chromium {version}, "
        "headless, `--disable-gpu` (software canvas), same machine as the Panel server.",
        f"- command: `python benchmarks/bench_raster.py --seconds {args.seconds:g}`",
        f"- one layer of N neurons × T steps, spike probability {P_SPIKE}; plot {WIDTH} × {HEIGHT} CSS px.", "",
        "## Pure redraw (in the page, no transfer)", "",
        "Time per redraw = median over the loop (decode + draw for the canvas; `source.data` set + "
        "the PlotView's paint for Bokeh). Redraws/s: the loop swaps in the next frame only after the "
        "last one was painted, so it is capped by the display's ~60 frames/s; in brackets, "
        "1000 ms ÷ median time per redraw, what the renderer could do without that cap.", "",
        "| N × T | canvas time/redraw | canvas redraws/s | Bokeh time/redraw | Bokeh redraws/s | Bokeh ÷ canvas |",
        "|---|---|---|---|---|---|", *rows, "",
        "## End to end (Python pushes a frame every 16 ms, over the websocket)", "",
        "Frames drawn per second (frames received per second), and websocket bytes received per frame.",
        "", "| N × T | canvas, spikes only | bytes/frame | canvas + u8 membrane | bytes/frame | Bokeh | bytes/frame |",
        "|---|---|---|---|---|---|---|", *e2e, "",
        "## Floors (1,000 × 100)", "",
        f"- ≥ 30 redraws/s: canvas {c['pure_per_s']:.0f}/s — **{'met' if floor_rate else 'NOT met'}**",
        f"- ≥ 5× faster per frame than Bokeh: {b['pure_ms']:.1f} ms ÷ {c['pure_ms']:.2f} ms = "
        f"{b['pure_ms'] / c['pure_ms']:.0f}× — **{'met' if floor_speed else 'NOT met'}**", "",
    ])
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
