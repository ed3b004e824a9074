"""The canvas spike raster (``js/raster.js`` via ``SpikeRaster``) in Debian's chromium.

Served app: ``tests/browser/_raster_app.py`` (a known two-layer pattern). The canvas is read
back with ``getImageData`` at every cell's centre, so the test sees what a person sees; the
cell geometry comes from the component's own layout (``el.qsnnRaster.layout()``), which the
Node tests check against the pixel mapping.
"""
from __future__ import annotations

import base64
import math
import re
import sys

import pytest
from playwright.sync_api import Page, expect

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _raster_app import PATTERN, SIZES, T  # noqa: E402  (plain constants; the app is not served here)

pytestmark = pytest.mark.browser

APP = "tests/browser/_raster_app.py"
LOAD_S = 30
COLORS = {0: (0x1F, 0x77, 0xB4), 1: (0xFF, 0x7F, 0x0E)}
NAMES_BYTES = 2 + len("hidden") + 2 + len("output")
PAYLOAD_BYTES = 16 + 20 * len(SIZES) + NAMES_BYTES + sum(SIZES) * math.ceil(T / 8) + sum(SIZES) * T

# The colour at every cell centre of the base canvas, as [layer, neuron, t, r, g, b].
_CELLS_JS = """el => {
  const c = el.qsnnRaster, L = c.layout(), d = c.decoded(), dpr = window.devicePixelRatio || 1;
  const ctx = el.querySelector("canvas.qsnn-raster-base").getContext("2d");
  const out = [];
  d.layers.forEach((l, i) => {
    for (let n = 0; n < l.n; n++) for (let t = 0; t < d.T; t++) {
      const x = L.x0 + (t + 0.5) * L.cellW, y = L.y0 + (L.layerTop[i] + n + 0.5) * L.cellH;
      const p = ctx.getImageData(Math.floor(x * dpr), Math.floor(y * dpr), 1, 1).data;
      out.push([i, n, t, p[0], p[1], p[2]]);
    }
  });
  return out;
}"""


@pytest.fixture
def raster_app(serve_command):
    return serve_command([sys.executable, "-m", "panel", "serve", APP, "--port", "{port}",
                          "--address", "127.0.0.1", "--allow-websocket-origin", "127.0.0.1:{port}"]) + "_raster_app"


def open_raster(page: Page, url: str, min_seq: int = 1):
    page.goto(url)
    el = page.locator(".qsnn-raster")
    expect(el).to_be_attached(timeout=LOAD_S * 1000)
    page.wait_for_function("el => el.qsnnRaster.stats.seq >= %d" % min_seq, arg=el.element_handle(),
                           timeout=LOAD_S * 1000)
    return el


def lit_cells(el) -> dict[tuple[int, int, int], tuple[int, int, int]]:
    """Cells whose centre pixel has a layer colour → that colour."""
    cells = el.evaluate(_CELLS_JS)
    assert len(cells) == sum(SIZES) * T
    return {(l, n, t): (r, g, b) for l, n, t, r, g, b in cells if (r, g, b) in COLORS.values()}


def expected(shift: int = 0) -> dict[tuple[int, int, int], tuple[int, int, int]]:
    return {(l, n, (t + shift) % T): COLORS[l] for l, cells in PATTERN.items() for n, t in cells}


def cell_center(page: Page, el, layer: int, neuron: int, t: int) -> tuple[float, float]:
    L = el.evaluate("el => el.qsnnRaster.layout()")
    box = el.locator("canvas.qsnn-raster-overlay").bounding_box()
    return (box["x"] + L["x0"] + (t + 0.5) * L["cellW"],
            box["y"] + L["y0"] + (L["layerTop"][layer] + neuron + 0.5) * L["cellH"])


def test_known_pattern_lights_exactly_its_cells(raster_app, page, console_errors, offsite_requests):
    el = open_raster(page, raster_app)
    assert lit_cells(el) == expected()
    stats = el.evaluate("el => el.qsnnRaster.stats")
    assert stats["errors"] == 0 and stats["spikesDrawn"] == sum(len(c) for c in PATTERN.values())
    # the background is the light theme's, not a layer colour
    assert el.evaluate("el => Array.from(el.querySelector('canvas.qsnn-raster-base')"
                       ".getContext('2d').getImageData(2, 2, 1, 1).data.slice(0, 3))") == [255, 255, 255]
    assert console_errors == [] and offsite_requests == []


def test_hover_reads_out_layer_neuron_t_and_membrane(raster_app, page, console_errors):
    el = open_raster(page, raster_app)
    readout = el.locator(".qsnn-raster-readout")
    page.mouse.move(*cell_center(page, el, 1, 2, 7))
    # output layer, neuron 2 spiked at t 7; membrane there is 2 + 7/100 (8-bit over 0..3.11)
    expect(readout).to_have_text(re.compile(r"^output · neuron 2 · t 7 · spike · u 2\.0[6-8]\d \(θ 0\.50\)$"))
    page.mouse.move(*cell_center(page, el, 0, 4, 0))
    # hidden neuron 4 at t 0: membrane 4.00, 8-bit over 0..5.11 (steps of 0.02)
    expect(readout).to_have_text(re.compile(r"^hidden · neuron 4 · t 0 · no spike · u (3\.99\d|4\.0[01]\d) \(θ 1\.00\)$"))
    page.mouse.move(1, 1)  # outside the cells: the read-out clears
    expect(readout).to_have_text("")
    assert console_errors == []


def test_click_selects_the_neuron_in_python(raster_app, page, console_errors):
    el = open_raster(page, raster_app)
    status = page.get_by_text(re.compile(r"^selected: "))
    expect(status).to_have_text("selected: none")
    page.mouse.click(*cell_center(page, el, 0, 5, 3))
    expect(status).to_have_text("selected: [0, 5]", timeout=10_000)
    page.mouse.click(*cell_center(page, el, 1, 3, 0))
    expect(status).to_have_text("selected: [1, 3]", timeout=10_000)
    assert console_errors == []


def test_a_new_frame_arrives_inline_as_base64_and_redraws(raster_app, page, console_errors):
    """One websocket message with no binary buffers (each would add two frames, raster.py says
    why that matters), the frame as base64 text, never a JSON list of spikes."""
    frames: list[tuple[str, str]] = []

    def on_ws(ws):
        ws.on("framereceived", lambda payload: frames.append(
            ("bin", "") if isinstance(payload, bytes) else ("text", payload)))

    page.on("websocket", on_ws)
    el = open_raster(page, raster_app)
    frames.clear()
    page.get_by_role("button", name="Shift right").click()
    page.wait_for_function("el => el.qsnnRaster.stats.seq >= 2", arg=el.element_handle(), timeout=10_000)
    assert lit_cells(el) == expected(shift=1)
    assert [kind for kind, _ in frames].count("bin") == 0, frames
    encoded = re.compile(r'"payload","new":"([A-Za-z0-9+/=]+)"')
    sent = [base64.b64decode(m.group(1)) for _, text in frames for m in encoded.finditer(text)]
    assert [len(b) for b in sent] == [PAYLOAD_BYTES] and sent[0][:4] == b"QSR1", frames
    assert console_errors == []


def test_dark_theme(raster_app, page, console_errors):
    el = open_raster(page, raster_app + "?theme=dark")
    bg = el.evaluate("el => Array.from(el.querySelector('canvas.qsnn-raster-base')"
                     ".getContext('2d').getImageData(2, 2, 1, 1).data.slice(0, 3))")
    assert max(bg) < 60, bg
    assert lit_cells(el) == expected()
    assert console_errors == []


def test_payloads_arriving_in_one_task_are_drawn_once(raster_app, page, console_errors):
    # rAF coalescing: five frames set synchronously give one redraw, showing the last one.
    el = open_raster(page, raster_app)
    result = el.evaluate("""async el => {
      const c = el.qsnnRaster, T = 4, n = 2;
      const frame = seq => {
        const b = new Uint8Array(16 + 20 + 2 + n), v = new DataView(b.buffer);  // unnamed layer: u16 0
        b.set([81, 83, 82, 49]); v.setUint16(4, 1, true); v.setUint32(8, T, true); v.setUint32(12, seq, true);
        v.setUint32(16, n, true); v.setUint32(20, n, true); v.setFloat32(28, 1, true);
        b[38] = 1 << (seq % T); b[39] = 0b1001;
        return b.buffer;
      };
      const frame2 = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
      await frame2();
      const before = c.stats.draws;
      for (let seq = 101; seq <= 105; seq++) c.setPayload(frame(seq));
      await frame2();
      return {draws: c.stats.draws - before, seq: c.stats.seq, payloads: c.stats.payloads, spikes: c.stats.spikesDrawn};
    }""")
    assert result["draws"] == 1, result
    assert result["seq"] == 105 and result["spikes"] == 3, result
    assert console_errors == []
