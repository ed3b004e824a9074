// Node's built-in test runner: `node --test js/test/` (tests/test_js.py runs it under pytest).
// The pure half of js/raster.js: payload decoding, layout and the pixel <-> cell mapping, rates,
// and the spike bitmap. No DOM is needed: importing the module must not touch one.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  bitmapSize, cellToPixel, computeLayout, decodePayload, encodePayload, firingRates, membraneAt,
  niceTicks, packRGBA, paintSpikes, parseColor, pixelToCell, readout, spikeAt, HEADER_BYTES, LAYER_BYTES,
} from "../raster.js";

// Layer 0: 3 neurons, layer 1: 2 neurons, T = 11 (not a multiple of 8: the last byte is partial).
const T = 11;
const PATTERN = [
  [[0, 0], [0, 10], [1, 3], [2, 7], [2, 8]],   // layer 0: (neuron, t)
  [[0, 5], [1, 0], [1, 1], [1, 2]],            // layer 1
];
const SIZES = [3, 2];

function cells(n, spikes) {
  const c = new Uint8Array(n * T);
  for (const [i, t] of spikes) c[i * T + t] = 1;
  return c;
}

function sample({ mem = false, seq = 7 } = {}) {
  return encodePayload({
    T, seq, layers: SIZES.map((n, l) => ({
      n, total: n * 10, threshold: 1 + l, cells: cells(n, PATTERN[l]), name: ["hidden 1", "output"][l],
      mem: mem ? Float32Array.from({ length: n * T }, (_, k) => -1 + 2 * k / (n * T - 1)) : undefined,
    })),
  });
}

test("a hand-built payload decodes to its header, layers and bits", () => {
  // Built byte by byte here (not by encodePayload), as Python's pack_payload writes it.
  const buf = new ArrayBuffer(HEADER_BYTES + LAYER_BYTES + 2 + 3 + 2 * 1);
  const v = new DataView(buf), b = new Uint8Array(buf);
  b.set([81, 83, 82, 49]);                 // "QSR1"
  v.setUint16(4, 1, true); v.setUint16(6, 0, true); v.setUint32(8, 5, true); v.setUint32(12, 42, true);
  v.setUint32(16, 2, true); v.setUint32(20, 900, true);
  v.setFloat32(24, -0.5, true); v.setFloat32(28, 1.5, true); v.setFloat32(32, 1.0, true);
  v.setUint16(36, 3, true); b.set([0x68, 0xc3, 0xa9], 38);  // name "hé": 3 UTF-8 bytes
  b[41] = 0b00010001;                      // neuron 0 fires at t 0 and 4
  b[42] = 0b00000010;                      // neuron 1 at t 1
  const d = decodePayload(buf);
  assert.equal(d.seq, 42);
  assert.equal(d.T, 5);
  assert.equal(d.rows, 2);
  assert.equal(d.mem, null);
  assert.deepEqual(d.layers.map(l => [l.n, l.total, l.memLo, l.memHi, l.threshold, l.rowStart, l.name]),
                   [[2, 900, -0.5, 1.5, 1, 0, "hé"]]);
  const on = [];
  for (let r = 0; r < 2; r++) for (let t = 0; t < 5; t++) if (spikeAt(d, r, t)) on.push([r, t]);
  assert.deepEqual(on, [[0, 0], [0, 4], [1, 1]]);
});

test("encode then decode gives back exactly the pattern, layers stacked", () => {
  const d = decodePayload(sample());
  assert.equal(d.rows, 5);
  assert.equal(d.bytesPerRow, 2);
  assert.deepEqual(d.layers.map(l => l.rowStart), [0, 3]);
  assert.deepEqual(d.layers.map(l => l.total), [30, 20]);
  assert.deepEqual(d.layers.map(l => l.name), ["hidden 1", "output"]);
  for (let l = 0; l < 2; l++) {
    const want = new Set(PATTERN[l].map(([n, t]) => `${n},${t}`));
    for (let n = 0; n < SIZES[l]; n++) {
      for (let t = 0; t < T; t++) {
        assert.equal(spikeAt(d, d.layers[l].rowStart + n, t), want.has(`${n},${t}`) ? 1 : 0, `layer ${l} n ${n} t ${t}`);
      }
    }
  }
});

test("a decoded payload accepts the forms Bokeh may hand over (ArrayBuffer, view, base64)", () => {
  const bytes = sample();
  const copy = new Uint8Array(bytes.length + 3);
  copy.set(bytes, 3);
  const views = [bytes.buffer, new DataView(copy.buffer, 3), copy.subarray(3), Buffer.from(bytes).toString("base64")];
  for (const v of views) assert.equal(decodePayload(v).seq, 7);
});

test("a malformed payload is refused, not drawn", () => {
  const bytes = sample();
  assert.throws(() => decodePayload(bytes.subarray(0, bytes.length - 1)), /bytes, header says/);
  const bad = bytes.slice();
  bad[0] = 88;
  assert.throws(() => decodePayload(bad), /bad magic/);
  assert.throws(() => decodePayload(new Uint8Array(4)), /too short/);
  assert.throws(() => decodePayload(bytes.subarray(0, HEADER_BYTES + 2 * LAYER_BYTES + 3)), /names cut short/);
});

test("membrane is dequantized from u8 within a layer's range", () => {
  const d = decodePayload(sample({ mem: true }));
  assert.ok(d.mem);
  assert.equal(d.mem.length, 5 * T);
  // layer 0 spans -1..1 linearly over its 33 cells; 8-bit quantization: error ≤ (hi-lo)/510
  const l0 = d.layers[0];
  assert.ok(Math.abs(l0.memLo + 1) < 1e-6 && Math.abs(l0.memHi - 1) < 1e-6);
  for (const k of [0, 5, 17, 32]) {
    const want = -1 + 2 * k / 32;
    assert.ok(Math.abs(membraneAt(d, Math.floor(k / T), k % T) - want) <= 2 / 510 + 1e-6, `cell ${k}`);
  }
});

test("firing rates per neuron and per step match counting by hand", () => {
  const d = decodePayload(sample());
  const { perNeuron, perStep } = firingRates(d);
  assert.deepEqual(Array.from(perNeuron, x => Math.round(x * T)), [2, 1, 2, 1, 3]);
  const counts = perStep.map((a, l) => Array.from(a, x => Math.round(x * SIZES[l])));
  assert.deepEqual(counts[0], [1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1]);
  assert.deepEqual(counts[1], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0]);
});

test("layout stacks layers with a gap and maps every cell centre back to itself", () => {
  const d = decodePayload(sample());
  const L = computeLayout(d, 500, 300, { left: 50, right: 30, top: 10, bottom: 40, rateW: 20, rateH: 20 });
  assert.equal(L.gapRows, 1);
  assert.deepEqual(L.layerTop, [0, 4]);
  assert.equal(L.vrows, 6);
  assert.equal(L.w, 420);
  assert.equal(L.h, 250);
  for (let l = 0; l < 2; l++) {
    for (let n = 0; n < SIZES[l]; n++) {
      for (let t = 0; t < T; t++) {
        const c = cellToPixel(L, l, n, t);
        const hit = pixelToCell(d, L, c.cx, c.cy);
        assert.deepEqual(hit, { layer: l, neuron: n, t, row: d.layers[l].rowStart + n });
      }
    }
  }
  // the gap row between the layers, and outside the plot, are no cell
  assert.equal(pixelToCell(d, L, 100, L.y0 + 3.5 * L.cellH), null);
  assert.equal(pixelToCell(d, L, 10, 50), null);
  assert.equal(pixelToCell(d, L, 100, 299), null);
  assert.equal(pixelToCell(d, L, L.x0 + L.w + 1, 50), null);
});

test("the bitmap lights exactly the pattern's cells, in each layer's colour", () => {
  const d = decodePayload(sample());
  const L = computeLayout(d, 500, 300);
  const { bw, bh } = bitmapSize(L, 1);
  assert.deepEqual([bw, bh], [T, L.vrows]);   // enough pixels: one per cell
  const colors = [packRGBA(parseColor("#1f77b4")), packRGBA(parseColor("#ff7f0e"))];
  const pixels = new Uint32Array(bw * bh).fill(123);
  assert.equal(paintSpikes(d, L, pixels, bw, bh, colors), 9);
  const lit = [];
  pixels.forEach((p, k) => { if (p) lit.push([Math.floor(k / bw), k % bw, p]); });
  const want = [];
  PATTERN.forEach((sp, l) => sp.forEach(([n, t]) => want.push([L.layerTop[l] + n, t, colors[l]])));
  const key = a => a.map(x => x.join(",")).sort();
  assert.deepEqual(key(lit), key(want));
});

test("a raster larger than the plot pools cells: a pixel lights if any of its cells spiked", () => {
  const n = 1000, TT = 100;
  const c = new Uint8Array(n * TT);
  c[999 * TT + 99] = 1;   // the last cell only
  c[0] = 1;
  const d = decodePayload(encodePayload({ T: TT, layers: [{ n, cells: c }] }));
  const L = computeLayout(d, 200, 300);
  const { bw, bh } = bitmapSize(L, 1);
  assert.ok(bh < n && bw < TT, `${bw}x${bh}`);
  const px = new Uint32Array(bw * bh);
  assert.equal(paintSpikes(d, L, px, bw, bh, [1]), 2);
  assert.equal(px[0], 1);
  assert.equal(px[bw * bh - 1], 1);
  assert.equal(px.reduce((s, p) => s + p, 0), 2);
});

test("hover read-out names layer, neuron, step, spike and membrane", () => {
  const d = decodePayload(sample({ mem: true }));
  const text = readout(d, { layer: 1, neuron: 1, t: 2, row: 4 });
  assert.match(text, /^output · neuron 1 · t 2 · spike · u -?\d\.\d{3} \(θ 2\.00\)$/);
  assert.match(readout(decodePayload(sample()), { layer: 0, neuron: 0, t: 1, row: 0 }), /^hidden 1 · neuron 0 · t 1 · no spike$/);
  const unnamed = decodePayload(encodePayload({ T: 2, layers: [{ n: 1, cells: new Uint8Array(2) }] }));
  assert.equal(unnamed.layers[0].name, "layer 1");
  assert.equal(readout(d, null), "");
});

test("time ticks are round numbers inside the axis", () => {
  assert.deepEqual(niceTicks(100), [0, 20, 40, 60, 80]);
  assert.deepEqual(niceTicks(11), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(1), [0]);
});
