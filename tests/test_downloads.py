"""Tests of qsnn_explorer.downloads: the idx and CIFAR parsers, and the real-dataset loaders run on
tiny files written here (no test touches the network; downloads go to 127.0.0.1 only)."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import pickle
import sys
import tarfile
import threading
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from qsnn_explorer import data as D
from qsnn_explorer import downloads as DL


def _row_keys_list(x: torch.Tensor) -> list[bytes]:
    """One hash per sample (row), to compare splits without comparing tensors pairwise."""
    return [hashlib.sha1(row.tobytes()).digest() for row in x.reshape(len(x), -1).contiguous().numpy()]


def _row_keys(x: torch.Tensor) -> set[bytes]:
    return set(_row_keys_list(x))


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------
def _idx_bytes(arr: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return header + arr.tobytes()


def test_read_idx_plain_gzip_and_types(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    (tmp_path / "a.idx").write_bytes(_idx_bytes(images))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(_idx_bytes(images)))
    assert np.array_equal(DL.read_idx(tmp_path / "a.idx"), images)
    assert np.array_equal(DL.read_idx(tmp_path / "a.idx.gz"), images)
    ints = np.array([1, -2, 300000], dtype=">i4")
    (tmp_path / "i.idx").write_bytes(_idx_bytes(ints))
    out = DL.read_idx(tmp_path / "i.idx")
    assert out.tolist() == [1, -2, 300000] and out.dtype.isnative


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="idx"):
        DL.read_idx(tmp_path / "bad")
    short = _idx_bytes(np.zeros((4, 2, 2), dtype=np.uint8))[:-3]
    (tmp_path / "short").write_bytes(short)
    with pytest.raises(ValueError, match="header"):
        DL.read_idx(tmp_path / "short")


def _cifar_batch(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in np.arange(n) % 10]
    entry = {b"batch_label": b"batch", b"labels": labels, b"data": data,
             b"filenames": [b"f%d.png" % i for i in range(n)]}
    return pickle.dumps(entry, protocol=2), data.reshape(n, 3, 32, 32), np.asarray(labels)


def test_read_cifar_batch(tmp_path):
    blob, images, labels = _cifar_batch(7, 0)
    (tmp_path / "data_batch_1").write_bytes(blob)
    x, y = DL.read_cifar_batch(tmp_path / "data_batch_1")
    assert x.dtype == np.uint8 and x.shape == (7, 3, 32, 32) and np.array_equal(x, images)
    assert y.dtype == np.int64 and np.array_equal(y, labels)
    x2, _ = DL.read_cifar_batch(io.BytesIO(blob))
    assert np.array_equal(x2, images)


class _Sneaky:
    def __reduce__(self):
        import os

        return (os.getcwd, ())


def test_read_cifar_batch_refuses_code(tmp_path):
    (tmp_path / "evil").write_bytes(pickle.dumps({b"data": _Sneaky(), b"labels": []}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        DL.read_cifar_batch(tmp_path / "evil")


# ---------------------------------------------------------------------------------------------
# Real-dataset loaders on tiny local files
# ---------------------------------------------------------------------------------------------
N_TRAIN, N_TEST = 100, 20  # 10 per class in train: 1 per class goes to validation


def _write_idx_set(directory: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.permutation(np.arange(N_TRAIN) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, size=(N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(N_TEST) % 10).astype(np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        (directory / name).write_bytes(gzip.compress(_idx_bytes(arr)))
    return arrays


def _md5s(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in directory.iterdir() if p.is_file()}


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_loader_reads_local_files(tmp_path, monkeypatch, name):
    arrays = _write_idx_set(tmp_path / name)
    monkeypatch.setitem(DL.CHECKSUMS, name, _md5s(tmp_path / name))  # the real check, on our files
    ds = D.load_dataset(name, root=tmp_path, download=False)
    assert (ds.name, ds.n_classes, ds.input_shape, ds.temporal) == (name, 10, (1, 28, 28), False)
    assert [len(s) for s in (ds.train, ds.val, ds.test)] == [90, 10, 20]
    assert torch.bincount(ds.val.y, minlength=10).tolist() == [1] * 10
    expected_test = torch.from_numpy(arrays["t10k-images-idx3-ubyte.gz"]).float().div(255).unsqueeze(1)
    assert torch.equal(ds.test.x, expected_test)
    assert ds.test.y.tolist() == arrays["t10k-labels-idx1-ubyte.gz"].tolist()
    train_all = torch.from_numpy(arrays["train-images-idx3-ubyte.gz"]).float().div(255).unsqueeze(1)
    assert _row_keys(ds.train.x) | _row_keys(ds.val.x) == _row_keys(train_all)
    assert not _row_keys(ds.train.x) & _row_keys(ds.val.x)
    # labels stay attached to their images
    labels = arrays["train-labels-idx1-ubyte.gz"]
    by_key = {k: int(v) for k, v in zip(_row_keys_list(train_all), labels, strict=True)}
    assert [by_key[k] for k in _row_keys_list(ds.val.x)] == ds.val.y.tolist()
    half = D.load_dataset(name, root=tmp_path, download=False, train_fraction=0.5)
    assert len(half.train) == 50 and torch.equal(half.val.x, ds.val.x)  # 4.5 -> 5 per class


def _write_cifar_tarball(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    members = {"cifar-10-batches-py/batches.meta": pickle.dumps({b"label_names": [b"x"] * 10}, protocol=2),
               "cifar-10-batches-py/readme.html": b"<html></html>"}
    for i in range(1, 6):
        blob, _, _ = _cifar_batch(20, i)
        members[f"cifar-10-batches-py/data_batch_{i}"] = blob
    blob, test_x, test_y = _cifar_batch(N_TEST, 99)
    members["cifar-10-batches-py/test_batch"] = blob
    with tarfile.open(directory / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return test_x, test_y


def test_cifar10_loader_reads_local_tarball(tmp_path, monkeypatch):
    test_x, test_y = _write_cifar_tarball(tmp_path / "cifar10")
    monkeypatch.setitem(DL.CHECKSUMS, "cifar10", _md5s(tmp_path / "cifar10"))
    ds = D.load_dataset("cifar10", root=tmp_path, download=False)
    assert (ds.n_classes, ds.input_shape, ds.temporal) == (10, (3, 32, 32), False)
    assert [len(s) for s in (ds.train, ds.val, ds.test)] == [90, 10, 20]
    assert ds.train.x.dtype == torch.float32 and float(ds.train.x.max()) <= 1.0
    assert torch.equal(ds.test.x, torch.from_numpy(test_x).float().div(255))
    assert ds.test.y.tolist() == test_y.tolist()


def test_checksum_mismatch(tmp_path, monkeypatch):
    _write_idx_set(tmp_path / "mnist")
    monkeypatch.setitem(DL.CHECKSUMS, "mnist", _md5s(tmp_path / "mnist"))
    target = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    blob = bytearray(target.read_bytes())
    blob[-1] ^= 0xFF
    target.write_bytes(bytes(blob))
    with pytest.raises(D.DatasetUnavailableError, match="checksum mismatch") as err:
        D.load_dataset("mnist", root=tmp_path, download=False)
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value)


def test_checksum_none_skips_the_check(tmp_path, monkeypatch):
    _write_idx_set(tmp_path / "mnist")
    monkeypatch.setitem(DL.CHECKSUMS, "mnist", dict.fromkeys(DL.CHECKSUMS["mnist"]))
    assert len(D.load_dataset("mnist", root=tmp_path, download=False).test) == N_TEST


def test_official_checksums_refuse_hand_made_files(tmp_path):
    _write_idx_set(tmp_path / "mnist")  # not the official files: the real MD5 table rejects them
    with pytest.raises(D.DatasetUnavailableError, match="checksum mismatch"):
        D.load_dataset("mnist", root=tmp_path, download=False)


def test_checksum_table_is_complete():
    assert set(DL.CHECKSUMS) == set(DL.MIRRORS) == {"mnist", "fashion_mnist", "cifar10"}
    for files in DL.CHECKSUMS.values():
        for md5 in files.values():
            assert md5 is not None and len(md5) == 32 and int(md5, 16) >= 0
    assert DL.CHECKSUMS["mnist"]["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert DL.CHECKSUMS["cifar10"]["cifar-10-python.tar.gz"] == "c58f30108f718f92721af3b95e74349a"


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_files_without_download(tmp_path, name):
    with pytest.raises(D.DatasetUnavailableError) as err:
        D.load_dataset(name, root=tmp_path, download=False)
    msg = str(err.value)
    assert repr(name) in msg and str(tmp_path / name) in msg
    assert "QSNN_DATA_DIR" in msg and "'mnist5k'" in msg and "download" in msg
    assert DL.MIRRORS[name][0] in msg  # where to get the files


def test_default_root_comes_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("QSNN_DATA_DIR", str(tmp_path / "env_root"))
    with pytest.raises(D.DatasetUnavailableError, match="env_root"):
        D.load_dataset("mnist", download=False)


def test_unreachable_mirror(tmp_path, monkeypatch):
    monkeypatch.setitem(DL.MIRRORS, "mnist", ("http://127.0.0.1:9/",))
    with pytest.raises(D.DatasetUnavailableError) as err:
        D.load_dataset("mnist", root=tmp_path, download=True)
    msg = str(err.value)
    assert "http://127.0.0.1:9/train-images-idx3-ubyte.gz" in msg
    assert str(tmp_path / "mnist") in msg and "'mnist5k'" in msg
    assert not list((tmp_path / "mnist").glob("*"))  # nothing half-written left behind


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served (stopped after the test)."""
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_from_a_mirror_verifies_checksums(tmp_path, monkeypatch, local_server):
    served, url = local_server
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    _write_idx_set(served / "good", seed=1)
    _write_idx_set(served / "bad", seed=2)
    monkeypatch.setitem(DL.CHECKSUMS, "fashion_mnist", _md5s(served / "good"))
    # the first mirror serves wrong files (rejected by checksum), the second the right ones
    monkeypatch.setitem(DL.MIRRORS, "fashion_mnist", (url + "bad/", url + "good/"))
    root = tmp_path / "data"
    ds = D.load_dataset("fashion_mnist", root=root, download=True)
    assert len(ds.test) == N_TEST
    assert _md5s(root / "fashion_mnist") == _md5s(served / "good")
    # only wrong files anywhere: a checksum error naming the URLs, and nothing kept
    monkeypatch.setitem(DL.MIRRORS, "fashion_mnist", (url + "bad/",))
    with pytest.raises(D.DatasetUnavailableError, match="checksum mismatch") as err:
        D.load_dataset("fashion_mnist", root=tmp_path / "other", download=True)
    assert url + "bad/" in str(err.value) and "-ubyte.gz" in str(err.value)
    assert not list((tmp_path / "other" / "fashion_mnist").glob("*"))


# ---------------------------------------------------------------------------------------------
# dvs_gesture
# ---------------------------------------------------------------------------------------------
def test_dvs_gesture_without_tonic(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tonic", None)  # makes `import tonic` raise ImportError
    monkeypatch.setitem(sys.modules, "tonic.datasets", None)
    with pytest.raises(D.DatasetUnavailableError, match=r"qsnn_explorer\[dvs\]"):
        D.load_dataset("dvs_gesture", root=tmp_path)


_EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])


def _fake_tonic(n_train_per_class=10, n_test_per_class=2):
    """A stand-in for tonic with its DVSGesture interface; its download always fails (offline)."""

    class DVSGesture:
        train_url = "https://example.invalid/ibmGestureTrain.tar.gz"
        test_url = "https://example.invalid/ibmGestureTest.tar.gz"

        def __init__(self, save_to, train=True):
            folder = Path(save_to, type(self).__name__, "ibmGestureTrain" if train else "ibmGestureTest")
            if not folder.is_dir():  # like tonic: download from the constructor when files are missing
                self.download()
            per = n_train_per_class if train else n_test_per_class
            self.targets = [c for c in range(11) for _ in range(per)]
            self.seed = 0 if train else 1

        def download(self):
            raise OSError("network is unreachable")

        def __len__(self):
            return len(self.targets)

        def __getitem__(self, i):
            rng = np.random.default_rng([self.seed, i])
            ev = np.zeros(200, dtype=_EVENT_DTYPE)
            ev["x"] = rng.integers(0, 128, 200)
            ev["y"] = rng.integers(0, 128, 200)
            ev["p"] = rng.integers(0, 2, 200).astype(bool)
            ev["t"] = np.sort(rng.integers(0, 6_000_000, 200))
            return ev, self.targets[i]

    tonic = types.ModuleType("tonic")
    tonic.datasets = types.ModuleType("tonic.datasets")
    tonic.datasets.DVSGesture = DVSGesture
    return tonic


def _install(monkeypatch, tonic):
    monkeypatch.setitem(sys.modules, "tonic", tonic)
    monkeypatch.setitem(sys.modules, "tonic.datasets", tonic.datasets)


def _fake_gesture_files(root: Path) -> None:
    for sub in ("ibmGestureTrain", "ibmGestureTest"):
        (root / "dvs_gesture" / "DVSGesture" / sub).mkdir(parents=True)


def test_dvs_gesture_with_fake_tonic(tmp_path, monkeypatch):
    _install(monkeypatch, _fake_tonic())
    _fake_gesture_files(tmp_path)
    ds = D.load_dataset("dvs_gesture", root=tmp_path, num_steps=7, download=False)
    assert (ds.name, ds.n_classes, ds.input_shape, ds.temporal) == ("dvs_gesture", 11, (2, 32, 32), True)
    assert [len(s) for s in (ds.train, ds.val, ds.test)] == [99, 11, 22]
    assert ds.train.x.dtype == torch.uint8 and ds.train.x.shape[1:] == (7, 2, 32, 32)
    assert int(ds.train.x.max()) == 1 and torch.bincount(ds.val.y, minlength=11).tolist() == [1] * 11


def test_dvs_gesture_offline_messages(tmp_path, monkeypatch):
    _install(monkeypatch, _fake_tonic())
    with pytest.raises(D.DatasetUnavailableError, match="download=False") as err:
        D.load_dataset("dvs_gesture", root=tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "dvs_gesture" / "DVSGesture") in msg and "ibmGestureTrain.tar.gz" in msg
    assert "example.invalid/ibmGestureTrain" in msg and "'events_mnist'" in msg
    with pytest.raises(D.DatasetUnavailableError, match="network is unreachable") as err:
        D.load_dataset("dvs_gesture", root=tmp_path, download=True)
    assert "example.invalid/ibmGestureTest" in str(err.value) and "QSNN_DATA_DIR" in str(err.value)


def test_real_tonic_interface_if_installed():
    tonic = pytest.importorskip("tonic")
    cls = tonic.datasets.DVSGesture
    assert cls.sensor_size == (128, 128, 2) and len(cls.classes) == 11
    assert cls.train_url.startswith("http") and set(cls.dtype.names) == {"x", "y", "p", "t"}


def test_real_tonic_offline_if_installed(tmp_path):
    tonic = pytest.importorskip("tonic")
    with pytest.raises(D.DatasetUnavailableError) as err:  # checked before tonic would download
        D.load_dataset("dvs_gesture", root=tmp_path, download=False)
    assert tonic.datasets.DVSGesture.train_url in str(err.value)
    assert not (tmp_path / "dvs_gesture").exists()
