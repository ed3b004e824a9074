"""The downloadable real datasets: MNIST, Fashion-MNIST, CIFAR-10 and (through tonic) DVS128 Gesture.

Files live under ``root/<name>/``; missing ones are downloaded from :data:`MIRRORS` (when
``download=True``) and every file is checked against :data:`CHECKSUMS`. The parsers need neither
torchvision nor PIL. Load the sets with ``qsnn_explorer.data.load_dataset``, whose module docstring
describes each of them.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from .data import _SPLIT_SEED, Dataset, DatasetUnavailableError, _class_parts, _images, _make_dataset
from .events import events_to_frames

__all__ = ["CHECKSUMS", "MIRRORS", "read_cifar_batch", "read_idx"]


# --------------------------------------------------------------------------------------------
# File parsers
# --------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an idx file (the MNIST format), gzipped or not, into a numpy array of its shape."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an idx file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    count = int(np.prod(shape)) if shape else 1
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(f"{path}: idx header says {shape} {dtype} but the file has "
                         f"{len(raw) - header} data bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can only build numpy arrays and plain Python containers."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def read_cifar_batch(path_or_file: str | os.PathLike | BinaryIO) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch (a pickled dict with b"data" and b"labels").

    Returns uint8 images ``[N, 3, 32, 32]`` and int64 labels ``[N]``. The unpickler only builds
    numpy arrays and plain containers, so a tampered file cannot run code.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as fh:
            entry = _ArrayUnpickler(fh, encoding="bytes").load()
    else:
        entry = _ArrayUnpickler(path_or_file, encoding="bytes").load()
    data = np.asarray(entry[b"data"], dtype=np.uint8)
    labels = np.asarray(entry.get(b"labels", entry.get(b"fine_labels")), dtype=np.int64)
    return data.reshape(-1, 3, 32, 32), labels


# --------------------------------------------------------------------------------------------
# Downloadable datasets: files, mirrors, checksums
# --------------------------------------------------------------------------------------------
_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",  # x_train, y_train,
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # x_test, y_test
_CIFAR_FILE = "cifar-10-python.tar.gz"

#: Base URLs tried in order; a file's URL is base + file name. Tests point these at 127.0.0.1.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion_mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}

#: MD5 of each official file, as in torchvision/datasets/mnist.py and cifar.py. A value of None
#: skips the check (tests use that for hand-made files).
CHECKSUMS: dict[str, dict[str, str | None]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "cifar10": {_CIFAR_FILE: "c58f30108f718f92721af3b95e74349a"},
}

_DOWNLOAD_TIMEOUT_S = 60


def _data_root(root: str | os.PathLike | None) -> Path:
    if root is None:
        root = os.environ.get("QSNN_DATA_DIR") or Path.home() / ".cache" / "qsnn_explorer"
    return Path(root).expanduser()


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _howto(files: list[str], directory: Path) -> str:
    return (f"To fix: download {', '.join(files)} into {directory}, or set QSNN_DATA_DIR, "
            f"or use the embedded dataset 'mnist5k'.")


def _download(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest`` (via a .part file, so a failed transfer leaves nothing)."""
    tmp = dest.with_name(dest.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": "qsnn_explorer"})
    try:
        with urllib.request.urlopen(request, timeout=_DOWNLOAD_TIMEOUT_S) as resp, open(tmp, "wb") as fh:
            shutil.copyfileobj(resp, fh, 1 << 20)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _fetch_files(name: str, root, download: bool) -> dict[str, Path]:
    """Paths of ``name``'s files under ``root/name``, downloaded if needed, checksums verified."""
    directory = _data_root(root) / name
    files = list(CHECKSUMS[name])
    mirrors = MIRRORS.get(name, ())
    missing = [f for f in files if not (directory / f).is_file()]
    if missing and not download:
        urls = [m + f for f in missing for m in mirrors]
        raise DatasetUnavailableError(
            f"Dataset {name!r} is not available: {', '.join(missing)} not found in {directory} "
            f"and download=False. Official URL(s): {', '.join(urls)}. "
            + _howto(missing, directory)
        )
    for fname in missing:
        directory.mkdir(parents=True, exist_ok=True)
        dest, expected, tried = directory / fname, CHECKSUMS[name][fname], []
        for mirror in mirrors:
            url = mirror + fname
            try:
                _download(url, dest)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                tried.append(f"{url} ({type(exc).__name__}: {exc})")
                continue
            if expected is not None and (got := _md5(dest)) != expected:
                dest.unlink()
                tried.append(f"{url} (checksum mismatch: md5 {got}, expected {expected})")
                continue
            break
        else:
            raise DatasetUnavailableError(
                f"Dataset {name!r} is not available: could not download {fname}. Tried: "
                f"{'; '.join(tried) or 'no mirror configured'}. Files are expected in "
                f"{directory}. " + _howto([fname], directory)
            )
    for fname in files:
        expected = CHECKSUMS[name][fname]
        if expected is not None and (got := _md5(directory / fname)) != expected:
            raise DatasetUnavailableError(
                f"Dataset {name!r}: checksum mismatch for {directory / fname} (md5 {got}, "
                f"expected {expected}); the file is corrupt or not the official one. Delete it "
                f"and load again with download=True. " + _howto([fname], directory)
            )
    return {f: directory / f for f in files}


def _from_official(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                   y_test: np.ndarray, *, divisor: float | None, n_classes: int, description: str,
                   train_fraction: float, seed: int) -> Dataset:
    """Dataset from official train/test arrays (stored as uint8; ``divisor`` None = events).

    Validation = 10% of each class of the official training set (fixed seed); test = the official
    test set.
    """
    train, val = _class_parts(y_train, [0.1], np.random.default_rng(_SPLIT_SEED))
    n = len(y_train)
    x = np.concatenate([x_train, x_test])
    y = np.concatenate([y_train, y_test]).astype(np.int64)
    if divisor is None:

        def take(idx: np.ndarray) -> torch.Tensor:  # x[idx] is a fresh (writable) copy
            return torch.from_numpy(x[idx])

    else:
        take = _images(x, divisor)
    description += "; val = 10% of the official train set per class (fixed seed); test = official test set"
    return _make_dataset(name, take, y, (train, val, np.arange(n, n + len(y_test))), n_classes=n_classes,
                         temporal=divisor is None, description=description,
                         train_fraction=train_fraction, seed=seed)


def _idx_loader(name: str, title: str) -> Callable[..., Dataset]:
    def load(*, num_steps: int, seed: int, train_fraction: float, root, download) -> Dataset:
        paths = _fetch_files(name, root, download)
        x_train, y_train, x_test, y_test = (read_idx(paths[f]) for f in _IDX_FILES)
        if x_train.shape[1:] != (28, 28) or x_test.shape[1:] != (28, 28):
            raise ValueError(f"{name}: expected 28x28 images, got {x_train.shape}, {x_test.shape}")
        return _from_official(name, x_train.reshape(-1, 1, 28, 28), y_train, x_test.reshape(-1, 1, 28, 28),
                              y_test, divisor=255.0, n_classes=10,
                              description=f"{title} (official idx files), 1x28x28 in [0,1]",
                              train_fraction=train_fraction, seed=seed)

    load.__name__ = f"_load_{name}"
    load.__doc__ = f"Load {title} from the official idx .gz files under root/{name}/."
    return load


_load_mnist = _idx_loader("mnist", "MNIST")
_load_fashion_mnist = _idx_loader("fashion_mnist", "Fashion-MNIST")


def _load_cifar10(*, num_steps: int, seed: int, train_fraction: float, root, download) -> Dataset:
    path = _fetch_files("cifar10", root, download)[_CIFAR_FILE]
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if member.isfile() and (base.startswith("data_batch_") or base == "test_batch"):
                batches[base] = read_cifar_batch(tar.extractfile(member))
    wanted = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if missing := [b for b in wanted if b not in batches]:
        raise DatasetUnavailableError(
            f"Dataset 'cifar10': {path} lacks {', '.join(missing)}; it is not the official "
            f"python-version tarball. " + _howto([_CIFAR_FILE], path.parent)
        )
    return _from_official("cifar10", np.concatenate([batches[b][0] for b in wanted[:5]]),
                          np.concatenate([batches[b][1] for b in wanted[:5]]), *batches["test_batch"],
                          divisor=255.0, n_classes=10,
                          description="CIFAR-10 (official python tarball), 3x32x32 RGB in [0,1]",
                          train_fraction=train_fraction, seed=seed)


# --------------------------------------------------------------------------------------------
# DVS128 Gesture through tonic (optional)
# --------------------------------------------------------------------------------------------
def _import_tonic():
    try:
        import tonic.datasets  # noqa: F401  (optional extra)
    except ImportError as exc:
        raise DatasetUnavailableError(
            "Dataset 'dvs_gesture' needs the optional package tonic: "
            'pip install "qsnn_explorer[dvs]" (or use the generated event dataset \'events_mnist\')'
        ) from exc
    import tonic

    return tonic


def _load_dvs_gesture(*, num_steps: int, seed: int, train_fraction: float, root, download) -> Dataset:
    tonic = _import_tonic()
    cls = tonic.datasets.DVSGesture
    directory = _data_root(root) / "dvs_gesture"
    where = directory / cls.__name__  # tonic keeps its files in save_to/<class name>/
    urls = ", ".join(u for u in (getattr(cls, "train_url", None), getattr(cls, "test_url", None)) if u)
    files = "ibmGestureTrain.tar.gz, ibmGestureTest.tar.gz"
    howto = (f"To fix: download {files} into {where} (tonic expects each archive and its extracted "
             f"folder there), or set QSNN_DATA_DIR, or use the generated event dataset 'events_mnist'.")

    def refuse(self) -> None:
        raise DatasetUnavailableError(
            f"Dataset 'dvs_gesture' is not available: tonic found no complete copy in {where} and "
            f"download=False. Official URL(s): {urls}. " + howto
        )

    # tonic downloads from its constructor whenever its files look incomplete; with
    # download=False a subclass of the same name (so the same folder) refuses instead.
    source = cls if download else type(cls.__name__, (cls,), {"download": refuse})
    try:
        if download:
            directory.mkdir(parents=True, exist_ok=True)
        raw = [source(save_to=str(directory), train=flag) for flag in (True, False)]
    except DatasetUnavailableError:
        raise
    except Exception as exc:  # tonic raises whatever its downloader raises
        raise DatasetUnavailableError(
            f"Dataset 'dvs_gesture' is not available: tonic could not load or download it "
            f"({type(exc).__name__}: {exc}). Tried: {urls}. Files are expected in {where}. " + howto
        ) from exc
    frames, labels = [], []
    for ds in raw:
        xs, ys = [], []
        for i in range(len(ds)):
            events, target = ds[i]
            xs.append(events_to_frames(events, num_steps))
            ys.append(int(target))
        frames.append(np.stack(xs) if xs else np.zeros((0, num_steps, 2, 32, 32), np.uint8))
        labels.append(np.asarray(ys, dtype=np.int64))
    return _from_official("dvs_gesture", frames[0], labels[0], frames[1], labels[1], divisor=None,
                          n_classes=11, description=f"DVS128 Gesture via tonic, 11 classes, 128x128 -> "
                          f"2x32x32, each recording binned into {num_steps} binary frames",
                          train_fraction=train_fraction, seed=seed)
