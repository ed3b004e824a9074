"""Trainer: one run of one TrainConfig. Headless; the app, CLI, notebooks and sweeps drive it.

A step is: encode a batch → forward the whole [T, B, ...] sequence → loss
``L = task_loss(O, y) + λ(progress)·sparsity(hidden spikes)`` → backward → clip → optimizer
step with ``lr = lr_at(step)``. Hot parameters passed to ``set`` are applied at the next step
boundary; a cold change needs a new Trainer.
"""
from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO

import torch
from torch import Tensor

from . import fused
from .allocator import keep_freed_memory
from .denormals import flush_denormals
from .config import TrainConfig
from .data import Dataset, load_dataset
from .encoders import encode, events_to_sequence, step_shape
from .losses import LOSSES, SPARSITY_TERMS, predict
from .models import Recording, SpikingNet, build_model
from .schedules import lr_at, sparsity_weight_at
from .surrogates import Surrogate, adali_window, adali_window_from_membrane, make_surrogate


@dataclass(frozen=True)
class Frame:
    """Metrics of one optimizer step (train batch)."""

    step: int              # optimizer steps done, this one included
    epoch: float           # epochs done, fractional
    loss: float            # total loss (task + sparsity); NaN/inf when the step diverged
    accuracy: float
    lr: float
    sparsity_weight: float
    firing_rates: tuple    # mean spike probability per LIF layer (hidden..., output)
    spikes_per_sample: float   # hidden-layer spikes per sample over all steps
    synops_per_sample: float   # synaptic operations per sample (input events × fan-out)
    step_time: float       # wall seconds of this step
    samples_per_s: float   # throughput of this step
    diverged: bool = False # the loss was not finite: the update was skipped
    kind: str = "step"


@dataclass(frozen=True)
class EvalResult:
    """Metrics of a pass over one split without gradient."""

    split: str
    step: int
    epoch: float
    loss: float
    accuracy: float
    firing_rates: tuple
    spikes_per_sample: float
    synops_per_sample: float
    n_samples: int
    kind: str = "eval"


@dataclass
class RunResult:
    config: TrainConfig
    frames: list[Frame] = field(default_factory=list)
    evals: list[EvalResult] = field(default_factory=list)
    test: EvalResult | None = None
    wall_time: float = 0.0
    samples_per_s: float = 0.0
    diverged: bool = False


@dataclass(frozen=True)
class LayerProbe:
    name: str
    spikes: Tensor     # [T, N] uint8
    mem: Tensor        # [T, N] float32
    threshold: float


@dataclass(frozen=True)
class Probe:
    """Activity of every LIF layer for one sample (what the app's raster and trace views draw)."""

    label: int
    prediction: int
    image: Tensor              # the static input [C, H, W], or event frames summed over time
    inputs: Tensor             # encoded input [T, features]
    layers: tuple[LayerProbe, ...]
    output: Tensor             # O(t) [T, classes]


def _own(t: Tensor) -> Tensor:
    """A CPU copy holding only ``t``'s elements. A view keeps its whole base alive and pickles
    it whole: the probe image, a view of the validation set, made every app snapshot 3 MB."""
    return t.detach().to("cpu", copy=True).contiguous()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but no CUDA device is available; use device='auto' or 'cpu'")
    return torch.device(name)


def surrogate_for(cfg: TrainConfig, window: tuple[float, float] | None = None) -> Surrogate:
    """The surrogate object ``cfg`` describes; ``window`` = AdaLi's (L, R)."""
    left, right = window or (cfg.adali_window_max, cfg.adali_window_max)
    return make_surrogate(cfg.surrogate, sharpness=cfg.surrogate_sharpness,
                          dampening=cfg.surrogate_dampening, tail=cfg.surrogate_tail,
                          window_left=left, window_right=right)


def task_loss(cfg: TrainConfig, out: Tensor, y: Tensor) -> Tensor:
    """The configured loss on the output sequence O [T, B, C]."""
    extra = {"count_mse": dict(correct=cfg.count_correct, incorrect=cfg.count_incorrect),
             "tet": dict(lam=cfg.tet_lambda, phi=cfg.tet_phi)}.get(cfg.loss, {})
    return LOSSES[cfg.loss](out, y, **extra)


class Trainer:
    """Train, evaluate, probe and save one spiking network described by ``cfg``."""

    def __init__(self, cfg: TrainConfig, data: Dataset | None = None):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if self.device.type == "cpu":
            keep_freed_memory()
            flush_denormals()  # before the first parallel op: the worker threads inherit it
            if cfg.engine == "fast":
                fused.warm_up()
        self.data = data or load_dataset(cfg.dataset, num_steps=cfg.num_steps,
                                         train_fraction=cfg.train_fraction)
        if self.data.temporal and cfg.encoder == "rows":
            raise ValueError(f"encoder='rows' needs static images; dataset {cfg.dataset!r} is event data")
        self.step_shape = self.data.input_shape if self.data.temporal else \
            step_shape(self.data.input_shape, cfg.encoder)
        init_gen = torch.Generator().manual_seed(cfg.seed)
        self.model: SpikingNet = build_model(cfg, self.step_shape, self.data.n_classes, init_gen)
        self.model.to(self.device)
        self.model.engine = cfg.engine
        self._shuffle_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self._noise_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 2)
        self.model.set_generator(self._noise_gen)
        self.optimizer = self._make_optimizer()
        self._train_x = self.data.train.x.to(self.device)
        self._train_y = self.data.train.y.to(self.device)
        self.steps_per_epoch = math.ceil(len(self._train_y) / cfg.batch_size)
        self.step_count = 0
        self._order: Tensor | None = None
        self._batch_index = 0
        self._window = (cfg.adali_window_max, cfg.adali_window_max)
        self._last_hidden_v: Tensor | None = None
        self._pending: dict = {}
        self._lock = threading.Lock()
        self._apply_hot()

    # ---- hot parameters ----
    def set(self, **changes) -> TrainConfig:
        """Queue hot changes for the next step boundary; returns the config they will give.

        Raises ValueError for a cold field (it needs a new Trainer) or a bad value.
        """
        cold = [n for n in changes if n in TrainConfig.cold_fields()]
        if cold:
            raise ValueError(f"{', '.join(cold)} cannot change while training (cold): "
                             f"start a new Trainer with cfg.replace(...)")
        with self._lock:
            pending = {**self._pending, **changes}
            new_cfg = self.cfg.replace(**pending)  # validates
            self._pending = pending
        return new_cfg

    def apply_pending(self) -> None:
        """Apply queued hot changes now (call between steps, e.g. while paused)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            self.cfg = self.cfg.replace(**pending)
            self._apply_hot()

    def _apply_hot(self) -> None:
        cfg = self.cfg
        self.model.set_hot(surrogate=surrogate_for(cfg, self._window), weight_bits=cfg.weight_bits,
                           mem_bits=cfg.mem_bits, dropout=cfg.dropout)
        for group in self.optimizer.param_groups:
            group["weight_decay"] = cfg.weight_decay
            if "momentum" in group:
                group["momentum"] = cfg.momentum

    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg, params = self.cfg, list(self.model.parameters())
        fast_kw = dict(fused=True) if cfg.engine == "fast" else {}  # one kernel for all parameters
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fast_kw)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fast_kw)
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **fast_kw)

    # ---- schedules ----
    @property
    def epoch(self) -> float:
        return self.step_count / self.steps_per_epoch

    def lr_at(self, step: int) -> float:
        c = self.cfg
        return lr_at(step, c.lr, c.lr_schedule, c.lr_period, c.lr_t_mult, c.lr_min)

    def sparsity_weight(self) -> float:
        total = self.cfg.epochs * self.steps_per_epoch
        return sparsity_weight_at(self.step_count / total, self.cfg.sparsity_weight, self.cfg.sparsity_schedule)

    def _update_window(self) -> None:
        """AdaLi: new window at each epoch start, from the schedule or the membrane quartiles."""
        c = self.cfg
        if c.surrogate != "adali":
            return
        if c.adali_auto_window and self._last_hidden_v is not None:
            window = adali_window_from_membrane(self._last_hidden_v, c.adali_window_min, c.adali_window_max)
        else:
            epoch = min(self.step_count // self.steps_per_epoch + 1, c.epochs)
            w = adali_window(epoch, c.epochs, c.adali_schedule, c.adali_window_max, c.adali_window_min)
            window = (w, w)
        if window != self._window:
            self._window = window
            self._apply_hot()

    # ---- data ----
    def _next_batch(self) -> tuple[Tensor, Tensor]:
        if self._order is None or self._batch_index >= self.steps_per_epoch:
            self._order = torch.randperm(len(self._train_y), generator=self._shuffle_gen).to(self.device)
            self._batch_index = 0
            self._update_window()
        bs = self.cfg.batch_size
        idx = self._order[self._batch_index * bs:(self._batch_index + 1) * bs]
        self._batch_index += 1
        return self._train_x[idx], self._train_y[idx]

    def _sequence(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, bool]:
        """Batch → input sequence [T, B, ...], and whether it is the same at every step. Values are in
        the model's dtype, spikes of the rate and latency encoders bool (the model converts them
        where it needs numbers: a rate-coded sequence is then a quarter of its float32 size)."""
        dtype = next(self.model.parameters()).dtype
        if self.data.temporal:
            return events_to_sequence(x).to(dtype), False
        seq = encode(x.to(dtype), self.cfg.num_steps, self.cfg.encoder, generator, spike_dtype=torch.bool)
        return seq, self.cfg.encoder == "direct"

    # ---- training ----
    def step(self) -> Frame:
        """One optimizer step on the next training batch."""
        self.apply_pending()
        start = time.perf_counter()
        if self.device.type == "cpu":
            flush_denormals()  # in whichever thread trains (see denormals.py)
        cfg = self.cfg
        self.model.train()
        # zeroed in place, not freed: the gradient buffers are made once and keep their place in
        # the heap, so each step's big buffers reuse the same holes (allocated anew mid-backward,
        # they split the next forward's free space); the last step's stay readable until here
        self.optimizer.zero_grad(set_to_none=False)
        x, y = self._next_batch()
        seq, static = self._sequence(x, self._noise_gen)
        needs_window = cfg.surrogate == "adali" and cfg.adali_auto_window
        rec = self.model(seq, static, keep_mems=needs_window)  # hidden membranes only for AdaLi's rule
        lam = self.sparsity_weight()
        loss = task_loss(cfg, rec.out, y)
        if lam > 0:
            loss = loss + lam * SPARSITY_TERMS[cfg.sparsity_kind](rec.hidden_spikes, cfg.sparsity_target)
        stats = self._activity(rec, seq, static, y)
        if needs_window and rec.n_hidden:
            self._last_hidden_v = self._membrane_sample(rec)
        del rec, seq  # the graph keeps what backward needs, and frees each layer's part once used
        lr = self.lr_at(self.step_count)
        diverged = not bool(torch.isfinite(loss))
        if not diverged:
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
        self.step_count += 1
        elapsed = time.perf_counter() - start
        return Frame(step=self.step_count, epoch=self.epoch, loss=float(loss.detach()), accuracy=stats[0],
                     lr=lr, sparsity_weight=lam, firing_rates=stats[1], spikes_per_sample=stats[2],
                     synops_per_sample=stats[3], step_time=elapsed, samples_per_s=len(y) / elapsed,
                     diverged=diverged)

    def _membrane_sample(self, rec: Recording) -> Tensor:
        """v = u − θ of the hidden layers, subsampled (≤ 100k values) for the AdaLi window rule."""
        layers = self.model.lif_layers[: rec.n_hidden]
        v = torch.cat([(m.detach() - layer.threshold.detach()).flatten()
                       for m, layer in zip(rec.mems[: rec.n_hidden], layers)])
        return v[:: max(1, v.numel() // 100_000)].cpu()

    @torch.no_grad()
    def _activity(self, rec: Recording, seq: Tensor, static: bool, y: Tensor) -> tuple:
        """(accuracy, firing rate per LIF layer, hidden spikes per sample, SynOps per sample).

        Spikes are exactly 0/1, so one sum per layer gives its rate, its spike count and the
        events it sends on; input events are the non-zero inputs (counted once when static).
        """
        batch = len(y)
        counts = [s.sum() for s in rec.spikes]
        # bool spikes (rate, latency) are counted without a temporary; a sum would widen them to int64
        inputs = torch.count_nonzero(seq[0]) * seq.shape[0] if static else torch.count_nonzero(seq)
        events = [inputs.to(counts[0].dtype)] + counts
        synops = sum(e * block.fanout for e, block in zip(events, self.model.blocks))
        for i, block in enumerate(self.model.blocks):
            if block.recurrent is not None:  # own spikes fan out through the recurrent weights
                synops = synops + counts[i] * block.recurrent.out_features
        hidden = sum(counts[: rec.n_hidden], torch.zeros((), device=y.device))
        correct = (predict(rec.out) == y).sum()
        values = torch.stack([correct.to(hidden.dtype), hidden, synops, *counts]).tolist()
        rates = tuple(n / s.numel() for n, s in zip(values[3:], rec.spikes))
        return values[0] / batch, rates, values[1] / batch, values[2] / batch

    def run(self, epochs: int | None = None, callback=None, evaluate_every_epoch: bool = True) -> RunResult:
        """Train for ``epochs`` (default ``cfg.epochs``) more epochs.

        ``callback(item)`` receives every Frame and EvalResult; returning False stops the run.
        Stops early when a step diverges.
        """
        epochs = self.cfg.epochs if epochs is None else epochs
        result = RunResult(self.cfg)
        start, samples = time.perf_counter(), 0
        end_step = self.step_count + epochs * self.steps_per_epoch
        while self.step_count < end_step:
            frame = self.step()
            result.frames.append(frame)
            samples += frame.samples_per_s * frame.step_time
            stop = callback is not None and callback(frame) is False
            if frame.diverged:
                result.diverged = True
                break
            if evaluate_every_epoch and self.step_count % self.steps_per_epoch == 0:
                ev = self.evaluate("val")
                result.evals.append(ev)
                stop = stop or (callback is not None and callback(ev) is False)
            if stop:
                break
        result.config = self.cfg
        result.wall_time = time.perf_counter() - start
        result.samples_per_s = samples / max(result.wall_time, 1e-9)
        return result

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> EvalResult:
        """Loss, accuracy and activity on ``split`` ('train', 'val' or 'test'), in eval mode."""
        data = {"train": self.data.train, "val": self.data.val, "test": self.data.test}.get(split)
        if data is None:
            raise ValueError(f"split={split!r} is not allowed; allowed: train, val, test")
        self.apply_pending()
        if self.device.type == "cpu":
            flush_denormals()
        self.model.eval()
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 3)
        n, size = len(data.y), self.cfg.batch_size  # the training batch: a lower peak than a training step
        parts = [self._evaluate_batch(data.x[lo:lo + size], data.y[lo:lo + size], gen) for lo in range(0, n, size)]
        loss, *means = (sum(column) / n for column in zip(*parts))
        return EvalResult(split=split, step=self.step_count, epoch=self.epoch, loss=loss,
                          accuracy=means[0], firing_rates=tuple(means[3:]), spikes_per_sample=means[1],
                          synops_per_sample=means[2], n_samples=n)

    def _evaluate_batch(self, x: Tensor, y: Tensor, generator: torch.Generator) -> list[float]:
        """[loss, accuracy, spikes, SynOps, *rates] of one batch, each × its size. A function of its
        own so that the batch's recording is freed before the next batch runs: two [T, B, ...]
        recordings alive at once raised the evaluation peak above training's."""
        x, y = x.to(self.device), y.to(self.device)
        seq, static = self._sequence(x, generator)
        rec = self.model(seq, static, keep_mems=False)
        acc, rates, spikes, synops = self._activity(rec, seq, static, y)
        return [v * len(y) for v in (float(task_loss(self.cfg, rec.out, y)), acc, spikes, synops, *rates)]

    @torch.no_grad()
    def probe(self, index: int = 0, split: str = "val") -> Probe:
        """Spikes and membrane of every LIF layer for sample ``index`` of ``split``."""
        data = {"train": self.data.train, "val": self.data.val, "test": self.data.test}[split]
        if not 0 <= index < len(data.y):
            raise ValueError(f"probe index must be in [0, {len(data.y) - 1}], got {index}")
        self.apply_pending()
        self.model.eval()
        x = data.x[index:index + 1].to(self.device)
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 4)
        seq, static = self._sequence(x, gen)
        rec = self.model(seq, static)
        names = [f"hidden {i + 1}" for i in range(rec.n_hidden)] + ["output"] * (len(rec.spikes) - rec.n_hidden)
        layers = tuple(
            LayerProbe(name, _own(s[:, 0].flatten(1).to(torch.uint8)), _own(m[:, 0].flatten(1).float()),
                       float(layer.threshold))
            for name, s, m, layer in zip(names, rec.spikes, rec.mems, self.model.lif_layers))
        image = x[0].float().sum(0) if self.data.temporal else x[0]
        return Probe(label=int(data.y[index]), prediction=int(predict(rec.out)[0]), image=_own(image),
                     inputs=_own(seq[:, 0].flatten(1).float()), layers=layers, output=_own(rec.out[:, 0].float()))

    # ---- persistence ----
    def save(self, path: str | os.PathLike | BinaryIO) -> None:
        """Write weights, optimizer and RNG state and the config (exact resume) to ``path``,
        atomically, or into an open binary file (e.g. ``io.BytesIO``)."""
        state = {"format": 1, "config": self.cfg.to_dict(), "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "step": self.step_count,
                 "rng": {"shuffle": self._shuffle_gen.get_state(), "noise": self._noise_gen.get_state()},
                 "order": None if self._order is None else self._order.cpu(), "batch_index": self._batch_index,
                 "window": list(self._window)}
        if hasattr(path, "write"):
            torch.save(state, path)
            return
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".qsnn-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(state, fh)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike, data: Dataset | None = None, device: str | None = None) -> "Trainer":
        """Rebuild the trainer saved at ``path`` (its config comes from the file)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        cfg = TrainConfig.from_dict(state["config"])
        if device is not None:
            cfg = cfg.replace(device=device)
        trainer = cls(cfg, data)
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.step_count = state["step"]
        trainer._shuffle_gen.set_state(state["rng"]["shuffle"])
        trainer._noise_gen.set_state(state["rng"]["noise"])
        if state["order"] is not None:
            trainer._order = state["order"].to(trainer.device)
        trainer._batch_index = state["batch_index"]
        trainer._window = tuple(state["window"])
        trainer._apply_hot()
        return trainer

    def to_snntorch(self):
        """The trained network as plain torch + snntorch modules (see ``qsnn_explorer.export``)."""
        from .export import to_snntorch
        return to_snntorch(self)
