// Node's built-in test runner (tests/test_js.py runs it under pytest): the pure half of
// js/chart.js. Importing the module must not touch a DOM.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  axisRange, computeLayout, decodeChart, encodeChart, extent, formatTick, lineWidthFor, logTicks, makeScale,
  nearestIndex, niceTicks, readoutAt, MARGINS,
} from "../chart.js";

const f32 = a => Float32Array.from(a);

function sample(extra = {}) {
  return encodeChart({ title: "loss", x_label: "step", y_log: false, seq: 4, hlines: [{ y: 1, dash: true }], ...extra }, [
    { label: "train", kind: "line", color: "#1f77b4", x: f32([1, 2, 3, 4]), y: f32([0.5, 0.25, NaN, 0.125]) },
    { label: "", kind: "bars", color: "#ff0000", x: f32([-1, 0, 1]), y: f32([3, 5]) },
    { label: "", kind: "vlines", color: "red", x: f32([0.5]), y: f32([]) },
  ]);
}

test("encode → decode round trip, with an unaligned payload", () => {
  const bytes = sample();
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  for (const payload of [bytes, shifted.subarray(1), bytes.buffer]) {
    const c = decodeChart(payload);
    assert.equal(c.title, "loss");
    assert.equal(c.seq, 4);
    assert.deepEqual(c.hlines, [{ y: 1, dash: true }]);
    assert.deepEqual(c.series.map(s => [s.label, s.kind, s.x.length, s.y.length]),
                     [["train", "line", 4, 4], ["", "bars", 3, 2], ["", "vlines", 1, 0]]);
    assert.deepEqual(Array.from(c.series[0].x), [1, 2, 3, 4]);
    assert.ok(Number.isNaN(c.series[0].y[2]));
    assert.deepEqual(Array.from(c.series[1].y), [3, 5]);
  }
});

test("a malformed payload throws a message naming the problem", () => {
  assert.throws(() => decodeChart(new Uint8Array(3)), /too short/);
  const bad = sample();
  bad[0] = 88;
  assert.throws(() => decodeChart(bad), /bad magic/);
  assert.throws(() => decodeChart(sample().subarray(0, sample().length - 8)), /cut short/);
});

test("extent ignores NaN and ±inf, and non-positive values on a log axis", () => {
  assert.deepEqual(extent([[3, NaN, -2, Infinity], [7]]), [-2, 7]);
  assert.deepEqual(extent([[0, -1, 0.01, 5]], true), [0.01, 5]);
  assert.equal(extent([[NaN], []]), null);
});

test("axisRange pads the data, keeps fixed ends, widens a flat range", () => {
  assert.deepEqual(axisRange([0, 10], null, null), [-0.5, 10.5]);
  assert.deepEqual(axisRange([0.2, 0.9], 0, 1), [0, 1]);
  const [lo, hi] = axisRange([5, 5], null, null);
  assert.ok(lo < 5 && hi > 5);
  const [a, b] = axisRange([0.01, 10], null, null, true);  // 3 decades, padded 5% in log space
  assert.ok(Math.abs(Math.log10(a) + 2.15) < 1e-9 && Math.abs(Math.log10(b) - 1.15) < 1e-9);
  assert.deepEqual(axisRange(null, null, null), [-0.05, 1.05]);
});

test("ticks: round steps inside the range; powers of ten on a log axis", () => {
  const unit = niceTicks(0, 1, 5);
  assert.equal(unit.length, 6);
  unit.forEach((t, i) => assert.ok(Math.abs(t - 0.2 * i) < 1e-12));
  for (const t of niceTicks(-3.3, 17.2, 5)) assert.ok(t >= -3.3 && t <= 17.2);
  assert.deepEqual(niceTicks(-3.3, 17.2, 5), [0, 5, 10, 15]);
  assert.deepEqual(niceTicks(0, 1000, 5), [0, 200, 400, 600, 800, 1000]);
  assert.deepEqual(logTicks(0.05, 20), [0.1, 1, 10]);
  assert.ok(logTicks(1e-9, 1e9).length <= 7);
  assert.ok(logTicks(2, 5).length >= 1);  // less than a decade: still labelled
});

test("tick labels are short", () => {
  assert.equal(formatTick(0), "0");
  assert.equal(formatTick(0.25), "0.25");
  assert.equal(formatTick(1200), "1200");
  assert.equal(formatTick(0.1 + 0.2), "0.3");
  assert.equal(formatTick(1e-6), "1e-6");
  assert.equal(formatTick(250000), "3e5");
});

test("scales map and invert, linear and log", () => {
  const s = makeScale(0, 10, 100, 200);
  assert.equal(s(5), 150);
  assert.equal(s.invert(150), 5);
  const l = makeScale(0.01, 100, 200, 0, true);
  assert.equal(l(1), 100);
  assert.ok(Math.abs(l.invert(50) - 10) < 1e-9);
});

test("nearestIndex finds the closest of ascending values", () => {
  const xs = f32([1, 2, 4, 8]);
  assert.equal(nearestIndex(xs, -5), 0);
  assert.equal(nearestIndex(xs, 2.9), 1);
  assert.equal(nearestIndex(xs, 3.1), 2);
  assert.equal(nearestIndex(xs, 100), 3);
  assert.equal(nearestIndex(f32([]), 1), -1);
});

test("layout: bars start at 0, hlines count, fixed ends win", () => {
  const c = decodeChart(sample());
  const L = computeLayout(c, 400, 200);
  assert.equal(L.x0, MARGINS.left);
  assert.equal(L.w, 400 - MARGINS.left - MARGINS.right);
  assert.ok(L.yr[0] < 0 && L.yr[1] > 5);  // bars from 0 to 5
  assert.ok(L.xr[0] < -1 && L.xr[1] > 4);
  assert.equal(L.sy(L.yr[0]), L.y0 + L.h);  // y grows upwards
  const fixed = computeLayout(decodeChart(sample({ y_min: 0, y_max: 10 })), 400, 200);
  assert.deepEqual(fixed.yr, [0, 10]);
});

test("the hover read-out names each labelled series at its nearest x", () => {
  const c = decodeChart(sample());
  assert.equal(readoutAt(c, 1.9), "step 2 · train 0.25");
});

test("a dense line is a one-device-pixel hairline; sparse lines and other kinds keep their width", () => {
  const line = n => ({ kind: "line", width: 2, x: new Float32Array(n) });
  assert.equal(lineWidthFor(line(300), 600), 1);      // 2 px per point: dense
  assert.equal(lineWidthFor(line(300), 600, 2), 0.5);  // one device pixel at 2x
  assert.equal(lineWidthFor(line(100), 600), 2);      // 6 px per point: its own width
  assert.equal(lineWidthFor({ ...line(300), width: 0.5 }, 600), 0.5);  // never wider than asked
  assert.equal(lineWidthFor({ kind: "vlines", width: 2, x: new Float32Array(300) }, 600), 2);
  assert.equal(lineWidthFor({ kind: "line", x: new Float32Array(3) }, 600), 1.5);  // the default
});
