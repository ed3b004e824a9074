// qsnn_explorer spike raster: a dependency-free ES module, no build step.
//
// Panel's JSComponent loads this file as one module (from a blob URL, so it cannot import a
// sibling file). The pure part (payload decoding, layout, pixel <-> cell mapping, rates, the
// pixel buffer) is exported and uses no DOM, so Node's test runner imports this same file
// (js/test/raster_core.test.mjs). Only `render` touches the DOM.
//
// Payload (little-endian, base64 on the wire), built by qsnn_explorer/app/raster.py:pack_payload:
//   header  16 B: "QSR1", u16 n_layers, u16 flags (bit 0: membrane follows), u32 T, u32 seq
//   layers  20 B each: u32 n_shown, u32 n_total, f32 mem_lo, f32 mem_hi, f32 threshold
//   names   per layer: u16 byte length, UTF-8 name (names travel with the frame they label)
//   spikes  for every shown neuron (layers stacked): ceil(T / 8) bytes, bit t % 8 of byte t >> 3
//   membrane (flag 0) u8 [rows, T]: u = lo + q / 255 * (hi - lo), lo/hi of the neuron's layer

export const MAGIC = "QSR1";
export const HEADER_BYTES = 16;
export const LAYER_BYTES = 20;
export const FLAG_MEMBRANE = 1;

export const THEMES = {
  light: { bg: "#ffffff", plot: "#fafafa", band: "#f0f0f3", fg: "#222222", muted: "#777777",
           hover: "rgba(0,0,0,0.55)", select: "#d62728" },
  dark: { bg: "#1b1d21", plot: "#121316", band: "#1f2126", fg: "#e4e4e4", muted: "#9a9a9a",
          hover: "rgba(255,255,255,0.6)", select: "#ff6b6b" },
};
export const DEFAULT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                               "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
// CSS pixels around the plot: layer labels left, neuron-rate margin right, time axis and
// per-step-rate margin below.
export const MARGINS = { left: 92, right: 56, top: 8, bottom: 62, rateW: 44, rateH: 30 };

const POPCOUNT = new Uint8Array(256);
for (let i = 1; i < 256; i++) POPCOUNT[i] = (i & 1) + POPCOUNT[i >> 1];

/** Bytes of an ArrayBuffer, typed array, DataView, or base64 string, as a Uint8Array view. */
export function asBytes(value) {
  if (value == null) return null;
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === "string") {
    if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(value);  // native: Chromium 140+
    const bin = atob(value);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  throw new TypeError(`cannot read raster payload of type ${Object.prototype.toString.call(value)}`);
}

/** Decode a payload into views on its bytes (nothing is copied). Throws on a malformed one. */
export function decodePayload(value) {
  const bytes = asBytes(value);
  if (bytes == null || bytes.byteLength < HEADER_BYTES) throw new Error("raster payload too short");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== MAGIC) throw new Error(`raster payload: bad magic ${JSON.stringify(magic)}`);
  const nLayers = view.getUint16(4, true), flags = view.getUint16(6, true);
  const T = view.getUint32(8, true), seq = view.getUint32(12, true);
  const bytesPerRow = (T + 7) >> 3;
  const layers = [];
  let rows = 0, off = HEADER_BYTES;
  if (bytes.byteLength < off + nLayers * LAYER_BYTES) throw new Error("raster payload: layer table cut short");
  for (let i = 0; i < nLayers; i++, off += LAYER_BYTES) {
    const n = view.getUint32(off, true);
    layers.push({ index: i, n, total: view.getUint32(off + 4, true), memLo: view.getFloat32(off + 8, true),
                  memHi: view.getFloat32(off + 12, true), threshold: view.getFloat32(off + 16, true),
                  rowStart: rows, name: "" });
    rows += n;
  }
  const utf8 = new TextDecoder();
  for (const l of layers) {
    if (off + 2 > bytes.byteLength) throw new Error("raster payload: names cut short");
    const len = view.getUint16(off, true);
    if (off + 2 + len > bytes.byteLength) throw new Error("raster payload: names cut short");
    l.name = utf8.decode(bytes.subarray(off + 2, off + 2 + len)) || `layer ${l.index + 1}`;
    off += 2 + len;
  }
  const spikeBytes = rows * bytesPerRow;
  const hasMem = (flags & FLAG_MEMBRANE) !== 0;
  const need = off + spikeBytes + (hasMem ? rows * T : 0);
  if (bytes.byteLength !== need) {
    throw new Error(`raster payload: ${bytes.byteLength} bytes, header says ${need}`);
  }
  const bits = bytes.subarray(off, off + spikeBytes);
  const mem = hasMem ? bytes.subarray(off + spikeBytes, need) : null;
  return { seq, T, flags, layers, rows, bytesPerRow, bits, mem };
}

/** Inverse of decodePayload, for tests and in-page benchmarks. ``layers``: [{n, total?, cells:
 * Uint8Array(n*T) neuron-major 0/1, mem?: Float32Array(n*T), threshold?, name?}] */
export function encodePayload({ T, seq = 0, layers }) {
  const hasMem = layers.length > 0 && layers.every(l => l.mem != null);
  const bytesPerRow = (T + 7) >> 3;
  const rows = layers.reduce((s, l) => s + l.n, 0);
  const names = layers.map(l => new TextEncoder().encode(l.name ?? ""));
  const head = HEADER_BYTES + LAYER_BYTES * layers.length + names.reduce((s, b) => s + 2 + b.length, 0);
  const out = new Uint8Array(head + rows * bytesPerRow + (hasMem ? rows * T : 0));
  const view = new DataView(out.buffer);
  out.set([...MAGIC].map(c => c.charCodeAt(0)), 0);
  view.setUint16(4, layers.length, true);
  view.setUint16(6, hasMem ? FLAG_MEMBRANE : 0, true);
  view.setUint32(8, T, true);
  view.setUint32(12, seq, true);
  let at = HEADER_BYTES + LAYER_BYTES * layers.length;
  for (const b of names) { view.setUint16(at, b.length, true); out.set(b, at + 2); at += 2 + b.length; }
  let row = 0;
  layers.forEach((l, i) => {
    const o = HEADER_BYTES + i * LAYER_BYTES;
    let lo = 0, hi = 1;
    if (hasMem) {
      lo = Infinity; hi = -Infinity;
      for (const u of l.mem) { if (u < lo) lo = u; if (u > hi) hi = u; }
      if (!(hi > lo)) hi = lo + 1;
    }
    view.setUint32(o, l.n, true);
    view.setUint32(o + 4, l.total ?? l.n, true);
    view.setFloat32(o + 8, lo, true);
    view.setFloat32(o + 12, hi, true);
    view.setFloat32(o + 16, l.threshold ?? 1, true);
    for (let n = 0; n < l.n; n++, row++) {
      for (let t = 0; t < T; t++) {
        if (l.cells[n * T + t]) out[head + row * bytesPerRow + (t >> 3)] |= 1 << (t & 7);
        if (hasMem) {
          const q = Math.round((l.mem[n * T + t] - lo) / (hi - lo) * 255);
          out[head + rows * bytesPerRow + row * T + t] = q;
        }
      }
    }
  });
  return out;
}

/** 1 if the neuron in stacked row ``row`` spiked at step ``t``. */
export function spikeAt(d, row, t) {
  return (d.bits[row * d.bytesPerRow + (t >> 3)] >> (t & 7)) & 1;
}

/** Membrane of stacked row ``row`` at step ``t`` (dequantized), or null when none was sent. */
export function membraneAt(d, row, t) {
  if (d.mem == null) return null;
  const layer = layerOfRow(d, row);
  return layer.memLo + d.mem[row * d.T + t] / 255 * (layer.memHi - layer.memLo);
}

export function layerOfRow(d, row) {
  for (const l of d.layers) if (row < l.rowStart + l.n) return l;
  return null;
}

/** Firing rates: ``perNeuron[row]`` = spikes / T; ``perStep[layer][t]`` = spiking fraction of the layer. */
export function firingRates(d) {
  const perNeuron = new Float32Array(d.rows);
  const perStep = d.layers.map(() => new Float32Array(d.T));
  const { bits, bytesPerRow, T } = d;
  for (const l of d.layers) {
    const counts = perStep[l.index];
    for (let row = l.rowStart; row < l.rowStart + l.n; row++) {
      let c = 0;
      const base = row * bytesPerRow;
      for (let b = 0; b < bytesPerRow; b++) {
        let byte = bits[base + b];
        if (byte === 0) continue;
        c += POPCOUNT[byte];
        const t0 = b << 3;
        while (byte) {
          const k = 31 - Math.clz32(byte & -byte);
          counts[t0 + k] += 1;
          byte &= byte - 1;
        }
      }
      perNeuron[row] = T ? c / T : 0;
    }
    if (l.n) for (let t = 0; t < T; t++) counts[t] /= l.n;
  }
  return { perNeuron, perStep };
}

/** Where everything goes, in CSS pixels, for a canvas of ``width`` x ``height``. Layers are
 * stacked top to bottom, separated by ``gapRows`` empty rows (in cell units). */
export function computeLayout(d, width, height, margins = MARGINS) {
  const gapRows = d.layers.length > 1 ? Math.max(1, Math.round(d.rows * 0.03)) : 0;
  const vrows = Math.max(1, d.rows + gapRows * Math.max(0, d.layers.length - 1));
  const x0 = margins.left, y0 = margins.top;
  const w = Math.max(1, width - margins.left - margins.right);
  const h = Math.max(1, height - margins.top - margins.bottom);
  const layerTop = [];
  let v = 0;
  for (const l of d.layers) { layerTop.push(v); v += l.n + gapRows; }
  return { x0, y0, w, h, T: Math.max(1, d.T), vrows, gapRows, layerTop, cellW: w / Math.max(1, d.T),
           cellH: h / vrows, rateX: x0 + w + 6, rateW: margins.rateW, stepY: y0 + h + 4, stepH: margins.rateH };
}

/** Virtual row (gaps counted) of a neuron of a layer. */
export function vrowOf(layout, layer, neuron) { return layout.layerTop[layer] + neuron; }

/** The cell rectangle of (layer, neuron, t) in CSS pixels. */
export function cellToPixel(layout, layer, neuron, t) {
  const v = vrowOf(layout, layer, neuron);
  return { x: layout.x0 + t * layout.cellW, y: layout.y0 + v * layout.cellH, w: layout.cellW, h: layout.cellH,
           cx: layout.x0 + (t + 0.5) * layout.cellW, cy: layout.y0 + (v + 0.5) * layout.cellH };
}

/** (layer, neuron, t, row) under CSS pixel (x, y), or null outside the cells (gaps included). */
export function pixelToCell(d, layout, x, y) {
  const t = Math.floor((x - layout.x0) / layout.cellW);
  const v = Math.floor((y - layout.y0) / layout.cellH);
  if (t < 0 || t >= d.T || v < 0 || v >= layout.vrows) return null;
  for (const l of d.layers) {
    const top = layout.layerTop[l.index];
    if (v >= top && v < top + l.n) return { layer: l.index, neuron: v - top, t, row: l.rowStart + v - top };
  }
  return null;
}

/** Size of the spike bitmap: one pixel per cell, unless the plot has fewer device pixels than
 * cells; then cells share pixels (a pixel is lit if any of its cells spiked). */
export function bitmapSize(layout, dpr = 1) {
  return { bw: Math.max(1, Math.min(layout.T, Math.round(layout.w * dpr))),
           bh: Math.max(1, Math.min(layout.vrows, Math.round(layout.h * dpr))) };
}

export function parseColor(css) {
  const m = /^#([0-9a-f]{6})$/i.exec(String(css).trim());
  if (!m) return [128, 128, 128];
  const v = parseInt(m[1], 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** RGBA packed for a Uint32Array over ImageData bytes (little-endian: R is the low byte). */
export function packRGBA([r, g, b], a = 255) { return ((a << 24) | (b << 16) | (g << 8) | r) >>> 0; }

/** Write the spikes into ``pixels`` (Uint32Array of bw*bh, cleared to 0 first): the cell of
 * layer l lights in ``colors[l]`` (packed RGBA). Returns the number of spikes drawn. */
export function paintSpikes(d, layout, pixels, bw, bh, colors) {
  pixels.fill(0);
  const { bits, bytesPerRow, T } = d;
  const xs = new Int32Array(T);
  for (let t = 0; t < T; t++) xs[t] = Math.floor(t * bw / T);
  let drawn = 0;
  for (const l of d.layers) {
    const color = colors[l.index % colors.length];
    const top = layout.layerTop[l.index];
    for (let n = 0; n < l.n; n++) {
      const y = Math.floor((top + n) * bh / layout.vrows);
      const rowPix = y * bw;
      const base = (l.rowStart + n) * bytesPerRow;
      for (let b = 0; b < bytesPerRow; b++) {
        let byte = bits[base + b];
        if (byte === 0) continue;
        const t0 = b << 3;
        while (byte) {
          const k = 31 - Math.clz32(byte & -byte);
          pixels[rowPix + xs[t0 + k]] = color;
          drawn++;
          byte &= byte - 1;
        }
      }
    }
  }
  return drawn;
}

/** Tick positions for an axis from 0 to ``n`` (exclusive) with about ``target`` ticks. */
export function niceTicks(n, target = 6) {
  if (n <= 1) return [0];
  const raw = (n - 1) / target, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map(f => f * mag).find(s => s >= raw) || 10 * mag;
  const ticks = [];
  for (let v = 0; v < n; v += step) ticks.push(Math.round(v));
  return ticks;
}

/** The hover read-out for a hit (see pixelToCell). */
export function readout(d, hit) {
  if (hit == null) return "";
  const l = d.layers[hit.layer];
  let text = `${l.name} · neuron ${hit.neuron} · t ${hit.t} · ${spikeAt(d, hit.row, hit.t) ? "spike" : "no spike"}`;
  const u = membraneAt(d, hit.row, hit.t);
  if (u != null) text += ` · u ${u.toFixed(3)} (θ ${l.threshold.toFixed(2)})`;
  return text;
}

// ------------------------------------------------------------------------------ rendering
export function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "qsnn-raster";
  root.style.cssText = "position:relative;width:100%;height:100%;font:11px sans-serif;";
  const base = document.createElement("canvas");
  const over = document.createElement("canvas");
  base.className = "qsnn-raster-base";
  over.className = "qsnn-raster-overlay";
  for (const c of [base, over]) c.style.cssText = "position:absolute;left:0;top:0;";
  over.style.cursor = "crosshair";
  const info = document.createElement("div");
  info.className = "qsnn-raster-readout";
  info.style.cssText = "position:absolute;left:4px;bottom:2px;right:4px;white-space:nowrap;overflow:hidden;";
  root.append(base, over, info);
  const bitmap = document.createElement("canvas");  // the spikes, one pixel per cell (or fewer)

  let decoded = null, rates = null, layout = null, error = null;
  let hover = null, pending = 0, overlayPending = 0, cssW = 0, cssH = 0, overlayInk = false;
  // what tests and benchmarks read: draws done, ms spent decoding (lastPayloadMs) and drawing
  const stats = { draws: 0, lastDrawMs: 0, totalDrawMs: 0, lastPayloadMs: 0, seq: -1, payloads: 0,
                  errors: 0, spikesDrawn: 0, drawnSeq: [] };
  const drawListeners = [];

  const theme = () => THEMES[model.theme] || THEMES.light;
  const colors = () => (model.layer_colors && model.layer_colors.length ? model.layer_colors : DEFAULT_COLORS);

  function setPayload(value) {
    const t0 = performance.now();
    stats.payloads++;
    try {
      decoded = value == null ? null : decodePayload(value);
      rates = decoded && firingRates(decoded);
      error = null;
    } catch (e) {
      decoded = rates = null;
      error = String(e.message || e);
      stats.errors++;
    }
    stats.lastPayloadMs = performance.now() - t0;
    schedule();
  }

  function schedule() {  // coalesce: at most one redraw per animation frame
    if (!pending) pending = requestAnimationFrame(() => { pending = 0; draw(); });
  }
  function scheduleOverlay() {
    if (!overlayPending) overlayPending = requestAnimationFrame(() => { overlayPending = 0; drawOverlay(); });
  }

  function size() {
    const w = Math.max(50, Math.floor(root.clientWidth || el.clientWidth || 600));
    const h = Math.max(50, Math.floor(root.clientHeight || model.height || 360));
    const dpr = window.devicePixelRatio || 1;
    if (w !== cssW || h !== cssH || base.width !== Math.round(w * dpr)) {
      cssW = w; cssH = h;
      for (const c of [base, over]) {
        c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
        c.style.width = `${w}px`; c.style.height = `${h}px`;
      }
    }
    return dpr;
  }

  function draw() {
    const t0 = performance.now();
    const dpr = size();
    const th = theme();
    const ctx = base.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = th.bg;
    ctx.fillRect(0, 0, cssW, cssH);
    if (decoded == null || decoded.rows === 0 || decoded.T === 0) {
      layout = null;
      ctx.fillStyle = th.muted;
      ctx.fillText(error ? `raster: ${error}` : "no spikes yet (waiting for the probe sample)", 10, 20);
      finish(t0);
      return;
    }
    const d = decoded;
    layout = computeLayout(d, cssW, cssH - 16);  // the read-out line is below
    const L = layout;
    const cols = colors();
    ctx.fillStyle = th.plot;
    ctx.fillRect(L.x0, L.y0, L.w, L.h);
    ctx.fillStyle = th.band;
    d.layers.forEach((l, i) => { if (i % 2) ctx.fillRect(L.x0, L.y0 + L.layerTop[i] * L.cellH, L.w, l.n * L.cellH); });
    // spikes: an ImageData at (at most) one pixel per cell, scaled up without smoothing
    const { bw, bh } = bitmapSize(L, dpr);
    if (bitmap.width !== bw || bitmap.height !== bh) { bitmap.width = bw; bitmap.height = bh; }
    const bctx = bitmap.getContext("2d");
    const image = bctx.createImageData(bw, bh);
    const pixels = new Uint32Array(image.data.buffer);
    stats.spikesDrawn = paintSpikes(d, L, pixels, bw, bh, d.layers.map((l, i) => packRGBA(parseColor(cols[i % cols.length]))));
    bctx.putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(bitmap, 0, 0, bw, bh, L.x0, L.y0, L.w, L.h);
    // layer labels
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    d.layers.forEach((l, i) => {
      const mid = L.y0 + (L.layerTop[i] + l.n / 2) * L.cellH;
      ctx.fillStyle = cols[i % cols.length];
      ctx.fillRect(4, L.y0 + L.layerTop[i] * L.cellH, 4, Math.max(1, l.n * L.cellH));
      ctx.fillStyle = th.fg;
      ctx.fillText(l.name, L.x0 - 6, mid - 6, L.x0 - 14);
      ctx.fillStyle = th.muted;
      ctx.fillText(l.n < l.total ? `${l.n} of ${l.total}` : `${l.n} neurons`, L.x0 - 6, mid + 7, L.x0 - 14);
    });
    // per-neuron rate margin (right): one bar per neuron row, filled per layer
    const maxN = Math.max(1e-9, ...d.layers.map(l => { let m = 0; for (let r = l.rowStart; r < l.rowStart + l.n; r++) m = Math.max(m, rates.perNeuron[r]); return m; }));
    d.layers.forEach((l, i) => {
      ctx.fillStyle = cols[i % cols.length];
      ctx.beginPath();
      const top = L.y0 + L.layerTop[i] * L.cellH;
      ctx.moveTo(L.rateX, top);
      for (let n = 0; n < l.n; n++) {
        const x = L.rateX + rates.perNeuron[l.rowStart + n] / maxN * L.rateW;
        ctx.lineTo(x, top + n * L.cellH);
        ctx.lineTo(x, top + (n + 1) * L.cellH);
      }
      ctx.lineTo(L.rateX, top + l.n * L.cellH);
      ctx.closePath();
      ctx.fill();
    });
    ctx.fillStyle = th.muted;
    ctx.textAlign = "left";
    ctx.fillText(`rate ≤${maxN.toFixed(2)}`, L.rateX - 4, L.y0 + L.h + 10);
    // per-step rate margin (below): one line per layer
    const maxT = Math.max(1e-9, ...rates.perStep.map(a => a.reduce((m, v) => Math.max(m, v), 0)));
    ctx.strokeStyle = th.muted;
    ctx.strokeRect(L.x0, L.stepY, L.w, L.stepH);
    d.layers.forEach((l, i) => {
      ctx.strokeStyle = cols[i % cols.length];
      ctx.beginPath();
      const a = rates.perStep[i];
      for (let t = 0; t < d.T; t++) {
        const x = L.x0 + (t + 0.5) * L.cellW, y = L.stepY + L.stepH - a[t] / maxT * L.stepH;
        if (t) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      }
      ctx.stroke();
    });
    ctx.fillStyle = th.muted;
    ctx.textAlign = "right";
    ctx.fillText(`≤${maxT.toFixed(2)}`, L.x0 - 6, L.stepY + 6);
    ctx.fillText("rate/step", L.x0 - 6, L.stepY + L.stepH - 6);
    // time axis
    ctx.fillStyle = th.fg;
    ctx.textAlign = "center";
    const axisY = L.stepY + L.stepH + 10;
    for (const t of niceTicks(d.T)) ctx.fillText(String(t), L.x0 + (t + 0.5) * L.cellW, axisY);
    ctx.textAlign = "left";
    ctx.fillText("time step", L.x0 + L.w + 6, axisY);
    if (overlayInUse()) drawOverlay();
    stats.seq = d.seq;
    stats.drawnSeq.push(d.seq);
    if (stats.drawnSeq.length > 1000) stats.drawnSeq.splice(0, 500);
    finish(t0);
  }

  function finish(t0) {
    stats.draws++;
    stats.lastDrawMs = performance.now() - t0;
    stats.totalDrawMs += stats.lastDrawMs;
    for (const fn of drawListeners) fn(stats);
  }

  // The overlay (selection, hover cell, read-out) is redrawn only when it has or gets something
  // on it: touching a canvas or the read-out's text makes the browser composite / lay out again.
  function overlayInUse() {
    return overlayInk || hover != null || (model.selected || []).length === 2;
  }

  function setInfo(text) {
    if (info.textContent !== text) info.textContent = text;
  }

  function drawOverlay() {
    const dpr = window.devicePixelRatio || 1;
    const ctx = over.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    overlayInk = false;
    const th = theme();
    if (layout == null || decoded == null) { setInfo(""); return; }
    const sel = model.selected || [];
    if (sel.length === 2 && sel[0] < decoded.layers.length && sel[1] < decoded.layers[sel[0]].n) {
      overlayInk = true;
      const c = cellToPixel(layout, sel[0], sel[1], 0);
      ctx.strokeStyle = th.select;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(layout.x0 - 1, c.y - 1, layout.w + 2, Math.max(1, c.h) + 2);
    }
    if (hover && hover.layer < decoded.layers.length && hover.neuron < decoded.layers[hover.layer].n && hover.t < decoded.T) {
      const c = cellToPixel(layout, hover.layer, hover.neuron, hover.t);
      ctx.strokeStyle = th.hover;
      ctx.lineWidth = 1;
      ctx.strokeRect(c.x - 0.5, c.y - 0.5, Math.max(1, c.w) + 1, Math.max(1, c.h) + 1);
      overlayInk = true;
      hover.row = decoded.layers[hover.layer].rowStart + hover.neuron;
      setInfo(readout(decoded, hover));
    } else {
      setInfo("");
    }
    info.style.color = th.fg;
  }

  function hitAt(event) {
    if (layout == null || decoded == null) return null;
    const r = over.getBoundingClientRect();
    return pixelToCell(decoded, layout, event.clientX - r.left, event.clientY - r.top);
  }

  over.addEventListener("mousemove", e => { hover = hitAt(e); scheduleOverlay(); });
  over.addEventListener("mouseleave", () => { hover = null; scheduleOverlay(); });
  over.addEventListener("click", e => {
    const hit = hitAt(e);
    if (hit) { model.selected = [hit.layer, hit.neuron]; scheduleOverlay(); }
  });

  model.on("payload", () => setPayload(model.payload));
  model.on(["theme", "layer_colors"], schedule);
  model.on("selected", scheduleOverlay);
  model.on("resize", schedule);
  model.on("after_layout", schedule);
  const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(schedule);
  if (observer) observer.observe(root);
  model.on("remove", () => { if (observer) observer.disconnect(); if (pending) cancelAnimationFrame(pending); });

  // test and benchmark hook: the element carries its controller (found through shadow DOM by locators)
  root.qsnnRaster = { stats, setPayload, layout: () => layout, decoded: () => decoded, redraw: schedule,
                      onDraw: fn => drawListeners.push(fn),
                      meta: () => ({ colors: colors(), theme: model.theme, selected: model.selected }) };
  setPayload(model.payload);
  return root;
}
