"""The canvas live chart's Python half: series checks, thinning, the payload layout."""
import base64
import json
import struct

import numpy as np
import pytest

from qsnn_explorer.app.live_chart import MAGIC, LiveChart, Series, pack_chart, thin


def unpack(payload: bytes):
    """The payload read back in Python (the layout js/chart.js decodes)."""
    assert payload[:4] == MAGIC
    (h,) = struct.unpack("<I", payload[4:8])
    assert (8 + h) % 4 == 0  # the numbers start 4-byte aligned
    header = json.loads(payload[8:8 + h])
    floats = np.frombuffer(payload[8 + h:], dtype="<f4")
    out, off = [], 0
    for s in header["series"]:
        out.append((floats[off:off + s["nx"]], floats[off + s["nx"]:off + s["nx"] + s["ny"]]))
        off += s["nx"] + s["ny"]
    assert off == len(floats)
    return header, out


def test_series_check_their_kind_and_lengths():
    with pytest.raises(ValueError, match="kind must be one of"):
        Series([1], [1], kind="area")
    with pytest.raises(ValueError, match="a line series needs 2 x values"):
        Series([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="a bars series needs 3 x values"):
        Series([0, 1], [5, 6], kind="bars")  # bars take edges: one more than the counts
    Series([0, 1, 2], [5, 6], kind="bars")
    with pytest.raises(ValueError, match="vlines"):
        Series([0.5], [1.0], kind="vlines")


def test_thin_keeps_the_envelope_and_the_ends():
    rng = np.random.default_rng(0)
    x = np.arange(10_000, dtype=float)
    y = rng.normal(size=10_000)
    y[1234], y[8765], y[50] = 40.0, -40.0, np.nan
    tx, ty = thin(x, y, 1000)
    assert len(tx) <= 1000 and tx[0] == 0 and tx[-1] == 9_999
    assert np.all(np.diff(tx) > 0)  # still ascending, no duplicates
    assert 40.0 in ty and -40.0 in ty  # a one-step spike survives
    assert np.array_equal(ty, y[tx.astype(int)])  # points are kept, never averaged
    same_x, same_y = thin(x[:500], y[:500], 1000)
    assert np.array_equal(same_x, x[:500])
    assert np.array_equal(same_y, y[:500], equal_nan=True)


def test_thin_copes_with_an_all_nan_stretch():
    y = np.full(5000, np.nan)
    y[4000:] = 1.0
    tx, ty = thin(np.arange(5000.0), y, 300)
    assert len(tx) <= 300 and tx[-1] == 4999 and np.nanmax(ty) == 1.0


def test_pack_chart_layout():
    series = [Series([1, 2, 3], [0.5, np.nan, 2.5], label="train ñ"),
              Series([-1, 0, 1], [4, 9], kind="bars", color="#ff0000"),
              Series([0.25, 0.75], kind="vlines")]
    header, columns = unpack(pack_chart({"title": "t", "seq": 3}, series))
    assert header["title"] == "t" and header["seq"] == 3
    assert [(s["label"], s["kind"], s["nx"], s["ny"]) for s in header["series"]] == [
        ("train ñ", "line", 3, 3), ("", "bars", 3, 2), ("", "vlines", 2, 0)]
    assert header["series"][1]["color"] == "#ff0000"
    np.testing.assert_array_equal(columns[0][1], np.float32([0.5, np.nan, 2.5]))
    np.testing.assert_array_equal(columns[1][0], np.float32([-1, 0, 1]))
    np.testing.assert_array_equal(columns[2][0], np.float32([0.25, 0.75]))


def test_show_thins_lines_only_and_drops_non_finite_hlines():
    chart = LiveChart(title="loss", x_label="step", y_log=True, y_range=(None, 10.0), legend="bottom_right")
    x = np.arange(20_000.0)
    chart.show([Series(x, np.sin(x), label="train"), Series(x[:3], x[:3], kind="points")],
               hlines=[{"y": 1.0, "dash": True}, {"y": float("nan")}])
    header, columns = unpack(base64.b64decode(chart.payload))  # base64 on the wire
    assert header["series"][0]["nx"] <= 1000 and header["series"][1]["nx"] == 3
    assert (header["y_log"], header["y_min"], header["y_max"], header["legend"]) == (True, None, 10.0, "bottom_right")
    assert header["hlines"] == [{"y": 1.0, "dash": True}] and chart.hlines == header["hlines"]
    assert header["seq"] == 1 and chart.series[0].label == "train"
    chart.show([], title="loss, run 2")
    header = unpack(base64.b64decode(chart.payload))[0]
    assert header["title"] == "loss, run 2" and header["seq"] == 2
