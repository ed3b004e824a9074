"""The JavaScript unit tests (``js/test/*.test.mjs``, Node's built-in runner) as part of pytest,
plus the Python packer checked against the JS decoder (one payload, two languages)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def node():
    if NODE is None:
        if _ci():
            pytest.fail("CI is set but `node` is not on PATH (apt-get install nodejs); "
                        "the JS tests must not be skipped in CI", pytrace=False)
        pytest.skip("`node` not on PATH: the JS unit tests of js/raster.js and js/chart.js need Node ≥ 18")
    return NODE


def test_node_unit_tests_pass(node):
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "js" / "test").glob("*.test.mjs"))
    assert files, "no js/test/*.test.mjs"
    # explicit files: Node 18 takes a directory, Node ≥ 21 reads arguments as globs
    proc = subprocess.run([node, "--test", *files], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = dict(line[2:].split(" ", 1) for line in proc.stdout.splitlines()
                   if line.startswith("# ") and line[2:].split(" ", 1)[0] in ("tests", "pass", "fail"))
    assert int(summary["tests"]) >= 10 and summary["fail"] == "0" and summary["pass"] == summary["tests"], summary


_DECODE = """
import { decodePayload, spikeAt, membraneAt } from "./js/raster.js";
import { readFileSync } from "node:fs";
const d = decodePayload(readFileSync(process.argv[1], "utf8"));  // base64 text, as on the wire
const on = [], mem = [];
for (let r = 0; r < d.rows; r++) for (let t = 0; t < d.T; t++) {
  if (spikeAt(d, r, t)) on.push([r, t]);
  mem.push(membraneAt(d, r, t));
}
console.log(JSON.stringify({ seq: d.seq, T: d.T, layers: d.layers, on, mem }));
"""


def test_python_pack_decodes_in_javascript(node, tmp_path):
    from qsnn_explorer.app.raster import pack_payload, wire_text
    rng = np.random.default_rng(3)
    spikes = [rng.random((5, 13)) < 0.3, rng.random((3, 13)) < 0.5]
    mem = [rng.normal(size=(5, 13)), rng.normal(size=(3, 13)) * 4]
    path = tmp_path / "frame.b64"
    path.write_text(wire_text(pack_payload(spikes, totals=[50, 3], mem=mem, thresholds=[1.0, 0.25],
                                           names=["hidden 1", "sortie ñ"], seq=99)))
    proc = subprocess.run([node, "--input-type=module", "-e", _DECODE, str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["seq"] == 99 and out["T"] == 13
    assert [(l["n"], l["total"], l["rowStart"], l["name"]) for l in out["layers"]] == [
        (5, 50, 0, "hidden 1"), (3, 3, 5, "sortie ñ")]
    assert [l["threshold"] for l in out["layers"]] == [1.0, 0.25]
    stacked = np.concatenate(spikes)
    assert out["on"] == np.argwhere(stacked).tolist()
    got = np.array(out["mem"]).reshape(8, 13)
    want = np.concatenate(mem)
    for rows, m in ((slice(0, 5), mem[0]), (slice(5, 8), mem[1])):
        step = (m.max() - m.min()) / 255
        assert np.abs(got[rows] - want[rows]).max() <= step / 2 + 1e-5  # 8-bit: half a step at most


_DECODE_CHART = """
import { decodeChart } from "./js/chart.js";
import { readFileSync } from "node:fs";
const c = decodeChart(readFileSync(process.argv[1], "utf8"));  // base64 text, as on the wire
console.log(JSON.stringify({ ...c, series: c.series.map(s => ({ ...s, x: Array.from(s.x), y: Array.from(s.y) })) }));
"""


def test_python_chart_decodes_in_javascript(node, tmp_path):
    from qsnn_explorer.app.live_chart import Series, pack_chart
    from qsnn_explorer.app.raster import wire_text
    series = [Series([1, 2, 3], [0.5, -1.25, 3], label="train ñ", dash=True),
              Series([0, 1, 2], [7, 9], kind="bars"), Series([0.5], kind="vlines", color="red")]
    path = tmp_path / "chart.b64"
    path.write_text(wire_text(pack_chart({"title": "loss", "y_log": True, "hlines": [{"y": 1.0}]}, series)))
    proc = subprocess.run([node, "--input-type=module", "-e", _DECODE_CHART, str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["title"], out["y_log"], out["hlines"]) == ("loss", True, [{"y": 1.0}])
    assert [(s["label"], s["kind"], s["dash"], s["x"], s["y"]) for s in out["series"]] == [
        ("train ñ", "line", True, [1, 2, 3], [0.5, -1.25, 3]), ("", "bars", False, [0, 1, 2], [7, 9]),
        ("", "vlines", False, [0.5], [])]
    assert out["series"][2]["color"] == "red"
