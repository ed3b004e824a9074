"""Tests of qsnn_explorer.events: the generated events_mnist set, the saccade renderer behind it,
and the binning of recorded (tonic-layout) events into frames."""
from __future__ import annotations

import numpy as np
import torch

from qsnn_explorer import data as D
from qsnn_explorer import events as E


# ---------------------------------------------------------------------------------------------
# events_mnist
# ---------------------------------------------------------------------------------------------
def test_events_mnist_shape_dtype_and_polarities():
    ds = D.load_dataset("events_mnist", num_steps=10)
    assert (ds.n_classes, ds.input_shape, ds.temporal) == (10, (2, 34, 34), True)
    assert [len(s) for s in (ds.train, ds.val, ds.test)] == [1600, 200, 200]
    for s in (ds.train, ds.val, ds.test):
        assert s.x.dtype == torch.uint8 and s.x.shape[1:] == (10, 2, 34, 34)
        assert int(s.x.max()) == 1
    assert torch.bincount(ds.test.y, minlength=10).tolist() == [20] * 10
    x = ds.train.x
    off, on = int(x[:, :, 0].sum()), int(x[:, :, 1].sum())
    assert off > 0 and on > 0 and 0.5 < on / off < 2.0
    per_sample = x.flatten(1).sum(1)
    assert int(per_sample.min()) > 0  # every digit makes events
    per_step = x.sum(dim=(0, 2, 3, 4))
    assert int(per_step.min()) > 0  # the digit moves in every time bin


def test_events_mnist_default_fits_memory_budget():
    ds = D.load_dataset("events_mnist")  # num_steps=25
    total = sum(s.x.nelement() * s.x.element_size() + s.y.nelement() * 8
                for s in (ds.train, ds.val, ds.test))
    assert total <= 120e6  # stated budget: 2,000 x 25 x 2 x 34 x 34 bytes = 115.6 MB
    assert E._events_packed(25).nbytes <= 15e6  # the cache keeps bits packed


def test_events_mnist_is_deterministic_per_sample():
    ds = D.load_dataset("events_mnist", num_steps=10)
    again = D.load_dataset("events_mnist", num_steps=10, seed=99)
    assert torch.equal(ds.test.x, again.test.x) and torch.equal(ds.train.y, again.train.y)
    # Regenerating a few samples on their own gives the same events as inside the full set.
    ids, _, (train_pos, _, test_pos) = E._events_selection()
    images, _, _ = D._mnist5k_raw()
    pick = test_pos[[0, 7, 150]]
    alone = E.make_saccade_events(images[torch.as_tensor(ids[pick])].numpy() / 255.0, ids[pick], 10)
    assert torch.equal(alone, ds.test.x[[0, 7, 150]])


def test_events_mnist_test_digits_come_from_mnist5k_test():
    ids, labels, (train_pos, val_pos, test_pos) = E._events_selection()
    _, labels5k, (train5k, val5k, test5k) = D._mnist5k_raw()
    assert set(ids[train_pos]) <= set(train5k)
    assert set(ids[val_pos]) <= set(val5k)
    assert set(ids[test_pos]) <= set(test5k)
    assert np.array_equal(labels, labels5k[ids])


def test_shift_matrices_match_the_bilinear_kernel():
    pos = np.array([0.0, 0.25, 1.0, 3.5, 5.999, 6.0])
    w = E._shift_matrices(pos, 34, 28)
    o, i = np.arange(34)[None, :, None], np.arange(28)[None, None, :]
    dense = np.maximum(0.0, 1.0 - np.abs(o - pos[:, None, None] - i))
    np.testing.assert_allclose(w, dense, atol=1e-6)


def _square(n=1):
    img = np.zeros((n, 28, 28), dtype=np.float32)
    img[:, 10:18, 10:18] = 1.0
    return img


def test_events_only_where_the_image_moves():
    ids = np.arange(5)
    ev = E.make_saccade_events(_square(5), ids, 12).numpy()
    corners = E._saccade_corners(ids)
    for k in range(5):
        x0, y0 = corners[k].min(0)
        x1, y1 = corners[k].max(0)
        box = np.zeros((34, 34), dtype=bool)  # every pixel the square ever covers
        box[10 + int(np.floor(y0)) : 18 + int(np.ceil(y1)), 10 + int(np.floor(x0)) : 18 + int(np.ceil(x1))] = True
        total = ev[k].sum(axis=(0, 1))
        assert total[~box].sum() == 0
        assert total[box].sum() > 50
    # a black image, and a still image, make no events
    assert E.make_saccade_events(np.zeros((2, 28, 28)), [0, 1], 12).sum() == 0


def test_still_digits_make_no_events(monkeypatch):
    images, _, _ = D._mnist5k_raw()
    digits = images[:4].numpy() / 255.0
    assert int(E.make_saccade_events(digits, np.arange(4), 6).sum()) > 500
    monkeypatch.setattr(E, "_EV_TRIANGLE", np.full((3, 2), 3.0))
    monkeypatch.setattr(E, "_EV_JITTER", 0.0)
    assert int(E.make_saccade_events(digits, np.arange(4), 6).sum()) == 0


def test_on_events_lead_and_off_events_trail_the_motion():
    ev = E.make_saccade_events(_square(3), np.arange(3), 30).numpy()  # 10 bins per saccade
    ys, xs = np.mgrid[0:34, 0:34]

    def centre(sample, saccade, pol):
        mask = ev[sample, 10 * saccade : 10 * saccade + 10, pol].sum(0)
        return (xs * mask).sum() / mask.sum(), (ys * mask).sum() / mask.sum()

    for k in range(3):
        (x_off1, y_off1), (x_on1, y_on1) = centre(k, 0, 0), centre(k, 0, 1)  # right and down
        assert x_on1 > x_off1 + 2 and y_on1 > y_off1 + 1
        (x_off2, y_off2), (x_on2, y_on2) = centre(k, 1, 0), centre(k, 1, 1)  # left and down
        assert x_on2 < x_off2 - 2 and y_on2 > y_off2 + 1
        (_, y_off3), (_, y_on3) = centre(k, 2, 0), centre(k, 2, 1)  # up
        assert y_on3 < y_off3 - 2


# ---------------------------------------------------------------------------------------------
# events_to_frames
# ---------------------------------------------------------------------------------------------
_EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])


def test_events_to_frames():
    ev = np.zeros(5, dtype=_EVENT_DTYPE)
    ev["x"] = [0, 127, 4, 5, 64]
    ev["y"] = [0, 127, 8, 9, 1]
    ev["p"] = [True, False, True, True, False]
    ev["t"] = [1000, 1999, 1000, 1001, 1500]
    frames = E.events_to_frames(ev, num_steps=4)
    assert frames.dtype == np.uint8 and frames.shape == (4, 2, 32, 32)
    assert frames.sum() == 4  # events 3 and 4 fall in the same 4x4 pixel and bin: clipped to 1
    assert frames[0, 1, 0, 0] == 1 and frames[0, 1, 2, 1] == 1
    assert frames[3, 0, 31, 31] == 1 and frames[2, 0, 0, 16] == 1
    assert E.events_to_frames(ev[:0], num_steps=3).shape == (3, 2, 32, 32)
