// qsnn_explorer live chart: a dependency-free ES module, no build step.
//
// The explorer's streaming views (loss and accuracy curves, activity, LR position, membrane
// traces, weight histogram) change 5 times a second while training. As Bokeh figures each
// change re-laid-out and repainted the whole figure (styles read back from the DOM for every
// visual property, axis labels measured anew): ~0.6 of a core in the page on a 2-core laptop,
// taken from training. This draws the same plots on one canvas, at most once per animation
// frame. As in js/raster.js, the pure part (payload decoding, ranges, ticks, scales, nearest
// point) is exported and touches no DOM, so Node's test runner imports this same file
// (js/test/chart_core.test.mjs). Only `render` touches the DOM.
//
// Payload (little-endian, base64 on the wire), built by qsnn_explorer/app/live_chart.py:pack_chart:
//   "QSC1", u32 H, H bytes of UTF-8 JSON (the header, space-padded to a multiple of 4),
//   then for each header.series[i] in order: f32 x[nx], f32 y[ny].
// Header: { title, x_label, y_label, y_log, x_min, x_max, y_min, y_max (null: from the data),
//           legend ("top_right" | "bottom_right" | "none"), seq,
//           hlines: [{ y, color, dash }],
//           series: [{ label, kind, color, alpha, width, dash, marker, size, nx, ny }] }
// kinds: "line" (NaN breaks it), "points" (marker: circle | diamond | triangle), "bars"
// (nx = ny + 1 edges, filled from 0), "vlines" (full-height lines at x; ny = 0).

export const MAGIC = "QSC1";
export const MARGINS = { left: 58, right: 12, top: 26, bottom: 40 };
export const THEMES = {
  light: { bg: "#ffffff", fg: "#222222", muted: "#777777", grid: "#e9e9ee", legend: "rgba(255,255,255,0.75)" },
  dark: { bg: "#1b1d21", fg: "#e4e4e4", muted: "#9a9a9a", grid: "#2c2f35", legend: "rgba(27,29,33,0.75)" },
};

// asBytes and render's size() repeat js/raster.js's on purpose: Panel loads each component's
// module alone, from a blob URL, where a relative import cannot resolve.

/** Bytes of an ArrayBuffer, typed array, DataView, or base64 string (how the explorer sends
 * them), as a Uint8Array. */
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
  throw new TypeError(`cannot read chart payload of type ${Object.prototype.toString.call(value)}`);
}

/** Decode a payload: the header, each series with its x and y as Float32Arrays. */
export function decodeChart(value) {
  const bytes = asBytes(value);
  if (bytes == null || bytes.byteLength < 8) throw new Error("chart payload too short");
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== MAGIC) throw new Error(`chart payload: bad magic ${JSON.stringify(magic)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const H = view.getUint32(4, true);
  if (8 + H > bytes.byteLength) throw new Error("chart payload: header cut short");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + H)));
  // copy the numbers out (the payload's offset in its buffer need not be 4-aligned); not with
  // .slice(), which on a Node Buffer is a view of a shared pool
  const rest = new Uint8Array(bytes.byteLength - 8 - H);
  rest.set(bytes.subarray(8 + H));
  if (rest.byteLength % 4) throw new Error("chart payload: numbers cut short");
  const floats = new Float32Array(rest.buffer);
  let off = 0;
  const series = (header.series || []).map(s => {
    const need = s.nx + s.ny;
    if (off + need > floats.length) throw new Error(`chart payload: series ${JSON.stringify(s.label)} cut short`);
    const out = { ...s, x: floats.subarray(off, off + s.nx), y: floats.subarray(off + s.nx, off + need) };
    off += need;
    return out;
  });
  return { ...header, series, hlines: header.hlines || [] };
}

/** Encode a chart (the inverse of decodeChart; the tests' fixture maker). */
export function encodeChart(header, series) {
  const meta = series.map(s => ({ ...s, x: undefined, y: undefined, nx: s.x.length, ny: s.y.length }));
  let json = JSON.stringify({ ...header, series: meta });
  while ((8 + new TextEncoder().encode(json).length) % 4) json += " ";
  const head = new TextEncoder().encode(json);
  const n = series.reduce((a, s) => a + s.x.length + s.y.length, 0);
  const out = new Uint8Array(8 + head.length + 4 * n);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(4, head.length, true);
  out.set(head, 8);
  const floats = new Float32Array(out.buffer, 8 + head.length, n);
  let off = 0;
  for (const s of series) { floats.set(s.x, off); off += s.x.length; floats.set(s.y, off); off += s.y.length; }
  return out;
}

/** [lo, hi] of the finite values (positive ones on a log axis); null when there are none. */
export function extent(arrays, log = false) {
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) for (const v of a) if (Number.isFinite(v) && (!log || v > 0)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return lo <= hi ? [lo, hi] : null;
}

/** The axis range: fixed ends where given, else the data's, padded by 5% (a decade-aligned
 *  pad on a log axis); a flat or empty range is widened so it still has ticks. */
export function axisRange(dataRange, fixedLo, fixedHi, log = false) {
  let [lo, hi] = dataRange || (log ? [0.1, 1] : [0, 1]);
  if (log) {
    lo = Math.log10(lo); hi = Math.log10(hi);
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    const pad = 0.05 * (hi - lo);
    lo = fixedLo != null && fixedLo > 0 ? Math.log10(fixedLo) : lo - pad;
    hi = fixedHi != null && fixedHi > 0 ? Math.log10(fixedHi) : hi + pad;
    return [10 ** lo, 10 ** hi];
  }
  if (hi - lo < 1e-12) { const d = Math.abs(lo) * 0.1 || 0.5; lo -= d; hi += d; }
  const pad = 0.05 * (hi - lo);
  return [fixedLo != null ? fixedLo : lo - pad, fixedHi != null ? fixedHi : hi + pad];
}

/** About `count` round tick values in [lo, hi] (steps of 1, 2 or 5 × 10^k). */
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}

/** Powers of ten in [lo, hi] (every other one when there are many); two nice ticks when the
 *  range spans less than a decade. */
export function logTicks(lo, hi) {
  const a = Math.ceil(Math.log10(lo) - 1e-9), b = Math.floor(Math.log10(hi) + 1e-9);
  if (b < a) return niceTicks(lo, hi, 2);
  const every = Math.max(1, Math.ceil((b - a + 1) / 6));
  const ticks = [];
  for (let k = a; k <= b; k += every) ticks.push(10 ** k);
  return ticks;
}

/** Short tick label: plain for |v| in [1e-3, 1e5), else exponent form. */
export function formatTick(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(4)));
  return v.toExponential(0).replace("e+", "e");
}

/** A value → pixel map over [lo, hi] → [p0, p1] (log10 on a log axis); `invert` goes back. */
export function makeScale(lo, hi, p0, p1, log = false) {
  const f = log ? Math.log10 : v => v;
  const a = f(lo), b = f(hi), k = (p1 - p0) / (b - a || 1);
  const map = v => p0 + (f(v) - a) * k;
  map.invert = p => { const u = a + (p - p0) / k; return log ? 10 ** u : u; };
  return map;
}

/** Index of the value in the ascending `xs` nearest to `x` (-1 when `xs` is empty). */
export function nearestIndex(xs, x) {
  if (!xs.length) return -1;
  let lo = 0, hi = xs.length - 1;
  while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (xs[mid] < x) lo = mid; else hi = mid; }
  return Math.abs(xs[lo] - x) <= Math.abs(xs[hi] - x) ? lo : hi;
}

/** Plot-area geometry and the two scales of a decoded chart drawn at w × h CSS pixels. */
export function computeLayout(chart, w, h) {
  const x0 = MARGINS.left, y0 = MARGINS.top;
  const pw = Math.max(10, w - MARGINS.left - MARGINS.right), ph = Math.max(10, h - MARGINS.top - MARGINS.bottom);
  const xs = [], ys = [];
  for (const s of chart.series) {
    xs.push(s.x);
    if (s.kind === "bars") ys.push(s.y, [0]);
    else if (s.kind !== "vlines") ys.push(s.y);
  }
  for (const l of chart.hlines) ys.push([l.y]);
  const xr = axisRange(extent(xs), chart.x_min, chart.x_max);
  const yr = axisRange(extent(ys, chart.y_log), chart.y_min, chart.y_max, chart.y_log);
  return { x0, y0, w: pw, h: ph, xr, yr, sx: makeScale(xr[0], xr[1], x0, x0 + pw), sy: makeScale(yr[0], yr[1], y0 + ph, y0, chart.y_log) };
}

/** The hover read-out at data x: each labelled line/points series at its point nearest to x,
 *  after the x of the first one's (the x under the mouse when there is none). */
export function readoutAt(chart, x) {
  const parts = [];
  let at = x;
  for (const s of chart.series) {
    if (!s.label || (s.kind !== "line" && s.kind !== "points")) continue;
    const i = nearestIndex(s.x, x);
    if (i < 0) continue;
    if (!parts.length) at = s.x[i];
    parts.push(`${s.label} ${formatTick(s.y[i])}`);
  }
  return [`${chart.x_label || "x"} ${formatTick(at)}`, ...parts].join(" · ");
}

function marker(ctx, kind, x, y, r) {
  ctx.beginPath();
  if (kind === "diamond") { ctx.moveTo(x, y - r); ctx.lineTo(x + r, y); ctx.lineTo(x, y + r); ctx.lineTo(x - r, y); ctx.closePath(); }
  else if (kind === "triangle") { ctx.moveTo(x, y - r); ctx.lineTo(x + r, y + r * 0.8); ctx.lineTo(x - r, y + r * 0.8); ctx.closePath(); }
  else ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.fill();
}

/**
 * Stroke width (CSS px) of a series: its own, except that a dense line (on average under 4 px of
 * plot width per point, e.g. a thinned per-step loss) is drawn one device pixel wide. Skia draws
 * that as a hairline; a wider stroke of a noisy min/max zig-zag goes through its path stroker,
 * ~10x the cost (software canvas, 300 points in 680 px: 1.6 ms vs 0.14 ms a draw), which on a
 * machine that also trains is time taken from training.
 */
export function lineWidthFor(s, plotWidth, dpr = 1) {
  const width = s.width || 1.5;
  const dense = s.kind === "line" && s.x.length * 4 > plotWidth;
  return dense ? Math.min(width, 1 / dpr) : width;
}

function drawSeries(ctx, s, L) {
  ctx.globalAlpha = s.alpha == null ? 1 : s.alpha;
  ctx.strokeStyle = ctx.fillStyle = s.color;
  ctx.lineWidth = lineWidthFor(s, L.w, ctx.getTransform().a || 1);
  ctx.setLineDash(s.dash ? [5, 4] : []);
  const { sx, sy } = L, bottom = L.y0 + L.h;
  if (s.kind === "line") {
    ctx.beginPath();
    let open = false;
    for (let i = 0; i < s.x.length; i++) {
      const px = sx(s.x[i]), py = sy(s.y[i]);
      if (!Number.isFinite(px) || !Number.isFinite(py)) { open = false; continue; }
      if (open) ctx.lineTo(px, py); else { ctx.moveTo(px, py); open = true; }
    }
    ctx.stroke();
  } else if (s.kind === "points") {
    for (let i = 0; i < s.x.length; i++) {
      const px = sx(s.x[i]), py = sy(s.y[i]);
      if (Number.isFinite(px) && Number.isFinite(py)) marker(ctx, s.marker, px, py, (s.size || 6) / 2);
    }
  } else if (s.kind === "bars") {
    const base = Math.min(bottom, sy(L.yr[0] > 0 ? L.yr[0] : 0));
    for (let i = 0; i < s.y.length; i++) {
      const a = sx(s.x[i]), b = sx(s.x[i + 1]), top = sy(s.y[i]);
      if (Number.isFinite(top)) ctx.fillRect(a, top, Math.max(1, b - a - 0.5), base - top);
    }
  } else if (s.kind === "vlines") {
    ctx.beginPath();
    for (const v of s.x) { const px = sx(v); ctx.moveTo(px, L.y0); ctx.lineTo(px, bottom); }
    ctx.stroke();
  }
  ctx.globalAlpha = 1;
  ctx.setLineDash([]);
}

export function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "qsnn-chart";
  root.dataset.chart = model.chart_name || "";
  root.style.cssText = "position:relative;width:100%;height:100%;font:11px sans-serif;";
  const base = document.createElement("canvas"), over = document.createElement("canvas");
  for (const c of [base, over]) c.style.cssText = "position:absolute;left:0;top:0;";
  over.style.cursor = "crosshair";
  root.append(base, over);

  let chart = null, layout = null, error = null, hoverX = null, pending = 0, cssW = 0, cssH = 0, overlayInk = false;
  const stats = { draws: 0, payloads: 0, errors: 0, lastDrawMs: 0, totalDrawMs: 0, seq: -1 };
  const theme = () => THEMES[model.theme] || THEMES.light;

  function setPayload(value) {
    stats.payloads++;
    try { chart = value == null ? null : decodeChart(value); error = null; }
    catch (e) { chart = null; error = String(e.message || e); stats.errors++; }
    schedule();
  }
  function schedule() { if (!pending) pending = requestAnimationFrame(() => { pending = 0; draw(); }); }

  function size() {
    const w = Math.max(50, Math.floor(root.clientWidth || el.clientWidth || 400));
    const h = Math.max(50, Math.floor(root.clientHeight || model.height || 220));
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
    const dpr = size(), th = theme(), ctx = base.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = th.bg;
    ctx.fillRect(0, 0, cssW, cssH);
    ctx.font = "11px sans-serif";
    if (chart == null) {
      layout = null;
      ctx.fillStyle = th.muted;
      ctx.fillText(error ? `chart: ${error}` : "waiting for data", 10, 20);
      return finish(t0);
    }
    const L = layout = computeLayout(chart, cssW, cssH);
    ctx.fillStyle = th.fg;
    ctx.font = "bold 13px sans-serif";
    ctx.textBaseline = "alphabetic";
    ctx.textAlign = "left";
    ctx.fillText(chart.title || "", 6, 16, cssW - 12);
    ctx.font = "11px sans-serif";
    // grid and tick labels
    const xt = niceTicks(L.xr[0], L.xr[1], Math.max(2, Math.floor(L.w / 80)));
    const yt = chart.y_log ? logTicks(L.yr[0], L.yr[1]) : niceTicks(L.yr[0], L.yr[1], Math.max(2, Math.floor(L.h / 40)));
    ctx.strokeStyle = th.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const v of xt) { const p = Math.round(L.sx(v)) + 0.5; ctx.moveTo(p, L.y0); ctx.lineTo(p, L.y0 + L.h); }
    for (const v of yt) { const p = Math.round(L.sy(v)) + 0.5; ctx.moveTo(L.x0, p); ctx.lineTo(L.x0 + L.w, p); }
    ctx.stroke();
    ctx.fillStyle = th.fg;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of xt) ctx.fillText(formatTick(v), L.sx(v), L.y0 + L.h + 4);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of yt) ctx.fillText(formatTick(v), L.x0 - 5, L.sy(v));
    ctx.fillStyle = th.muted;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillText(chart.x_label || "", L.x0 + L.w / 2, L.y0 + L.h + 18);
    // the data, clipped to the plot area
    ctx.save();
    ctx.beginPath();
    ctx.rect(L.x0, L.y0, L.w, L.h);
    ctx.clip();
    for (const s of chart.series) drawSeries(ctx, s, L);
    for (const l of chart.hlines) {
      drawSeries(ctx, { kind: "line", x: [L.xr[0], L.xr[1]], y: [l.y, l.y], color: l.color || th.fg, dash: l.dash, width: 1 }, L);
    }
    ctx.restore();
    ctx.strokeStyle = th.muted;
    ctx.strokeRect(L.x0 + 0.5, L.y0 + 0.5, L.w, L.h);
    drawLegend(ctx, th, L);
    // an untouched canvas costs the browser nothing to composite: the overlay is redrawn only
    // when it has or gets the hover line
    if (overlayInk || hoverX != null) drawOverlay();
    stats.seq = chart.seq == null ? -1 : chart.seq;
    finish(t0);
  }

  function drawLegend(ctx, th, L) {
    const items = chart.series.filter(s => s.label);
    if (!items.length || chart.legend === "none") return;
    ctx.font = "10px sans-serif";
    const w = 22 + Math.max(...items.map(s => ctx.measureText(s.label).width)), h = 13 * items.length + 6;
    const x = L.x0 + L.w - w - 6, y = chart.legend === "bottom_right" ? L.y0 + L.h - h - 6 : L.y0 + 6;
    ctx.fillStyle = th.legend;
    ctx.fillRect(x, y, w, h);
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    items.forEach((s, i) => {
      const cy = y + 9 + 13 * i;
      ctx.globalAlpha = s.alpha == null ? 1 : Math.max(0.35, s.alpha);
      ctx.fillStyle = s.color;
      ctx.fillRect(x + 4, cy - 2, 12, 4);
      ctx.globalAlpha = 1;
      ctx.fillStyle = th.fg;
      ctx.fillText(s.label, x + 19, cy);
    });
    ctx.font = "11px sans-serif";
  }

  function finish(t0) {
    stats.draws++;
    stats.lastDrawMs = performance.now() - t0;
    stats.totalDrawMs += stats.lastDrawMs;
  }

  function drawOverlay() {  // the hover line and read-out
    const dpr = window.devicePixelRatio || 1, ctx = over.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    overlayInk = false;
    if (layout == null || chart == null || hoverX == null) return;
    overlayInk = true;
    const th = theme(), px = layout.sx(hoverX);
    ctx.strokeStyle = th.muted;
    ctx.beginPath();
    ctx.moveTo(Math.round(px) + 0.5, layout.y0);
    ctx.lineTo(Math.round(px) + 0.5, layout.y0 + layout.h);
    ctx.stroke();
    ctx.font = "10px sans-serif";
    ctx.fillStyle = th.fg;
    ctx.textAlign = "right";
    ctx.textBaseline = "alphabetic";
    ctx.fillText(readoutAt(chart, hoverX), cssW - 6, cssH - 3, cssW - 12);
  }

  over.addEventListener("mousemove", e => {
    const r = over.getBoundingClientRect(), x = e.clientX - r.left;
    hoverX = layout && x >= layout.x0 && x <= layout.x0 + layout.w ? layout.sx.invert(x) : null;
    requestAnimationFrame(drawOverlay);
  });
  over.addEventListener("mouseleave", () => { hoverX = null; requestAnimationFrame(drawOverlay); });

  model.on("payload", () => setPayload(model.payload));
  model.on("theme", schedule);
  model.on("resize", schedule);
  model.on("after_layout", schedule);
  const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(schedule);
  if (observer) observer.observe(root);
  model.on("remove", () => { if (observer) observer.disconnect(); if (pending) cancelAnimationFrame(pending); });

  // test and benchmark hook: the element carries its controller (found through shadow DOM by locators)
  root.qsnnChart = { stats, chart: () => chart, layout: () => layout, redraw: schedule };
  setPayload(model.payload);
  return root;
}
