"""TrainConfig: the one source of truth for every parameter.

Each field carries metadata read by the trainer, the CLI and the app's widget builder:

- ``doc``: one line shown as the widget's tooltip and in ``--help``;
- ``hot``: True when the value can change while training continues (applied at the next
  step boundary), False when a change needs a reset (a new network, new data);
- ``bounds``: inclusive (low, high) for numbers; ``choices``: allowed values for strings;
- ``group``: the panel of the app the widget goes in.

A bad value raises ``ValueError`` naming the field and its allowed range, at construction,
on ``replace`` and on ``from_json``.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

DATASETS = ("mnist5k", "digits8x8", "events_mnist", "mnist", "fashion_mnist", "cifar10", "dvs_gesture")
MODELS = ("mlp", "conv", "recurrent")
ENCODERS = ("direct", "rate", "latency", "rows")
READOUTS = ("spikes", "membrane", "current")
RESETS = ("subtract", "zero")
SURROGATE_NAMES = (
    "fast_sigmoid", "atan", "triangular", "exponential", "hc_fast_sigmoid", "gaussian",
    "sigmoid", "rectangular", "q_pseudospike", "adali",
)
ADALI_SCHEDULES = ("log", "linear", "sqrt", "fixed")
LOSS_NAMES = ("rate_ce", "count_mse", "sdt", "tet", "sum_ce")
SPIKE_LOSSES = ("rate_ce", "count_mse")  # losses defined on output spikes
SPARSITY_KINDS = ("rate", "target")
SPARSITY_SCHEDULES = ("constant", "linear", "anneal_20_60", "geometric")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine_periodic", "cosine_restarts")
DEVICES = ("auto", "cpu", "cuda")
ENGINES = ("fast", "reference")
WEIGHT_BITS = (1, 2, 3, 4, 5, 6, 7, 8, 32)


def _param(default, doc, *, hot, group, bounds=None, choices=None):
    """A dataclass field with the metadata every consumer reads."""
    meta = {"doc": doc, "hot": hot, "group": group, "bounds": bounds, "choices": choices}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run. Defaults give a 784-1000-10 LIF MLP on the embedded MNIST digits."""

    # --- data and encoding (cold: new data means a new run) ---
    dataset: str = _param("mnist5k", "Dataset: embedded mnist5k/digits8x8/events_mnist, or a downloaded one",
                          hot=False, group="data", choices=DATASETS)
    train_fraction: float = _param(1.0, "Stratified share of the training split used (P1 quickstart: 0.1)",
                                   hot=False, group="data", bounds=(0.01, 1.0))
    encoder: str = _param("direct", "Static images → spikes: direct current each step, Bernoulli rate, "
                          "latency (one spike, earlier when brighter), rows (one image row per step)",
                          hot=False, group="data", choices=ENCODERS)
    num_steps: int = _param(25, "Time steps T per sample", hot=False, group="data", bounds=(1, 1000))
    batch_size: int = _param(128, "Samples per optimizer step", hot=False, group="data", bounds=(1, 4096))

    # --- network (cold) ---
    model: str = _param("mlp", "Architecture: LIF MLP, P1's conv net, or recurrent LIF layers (P4)",
                        hot=False, group="network", choices=MODELS)
    hidden: tuple = _param((1000,), "Hidden widths: MLP units / conv channels / recurrent units per layer",
                           hot=False, group="network", bounds=(1, 8192))
    readout: str = _param("spikes", "Output signal O(t): spikes or membrane of an output LIF layer, or "
                          "non-spiking current (TET)", hot=False, group="network", choices=READOUTS)
    beta: float = _param(0.95, "Membrane decay β: u[t] = β·u[t−1] + I[t] − θ·s[t−1]",
                         hot=False, group="neuron", bounds=(0.0, 1.0))
    threshold: float = _param(1.0, "Firing threshold θ: s[t] = H(u[t] − θ)",
                              hot=False, group="neuron", bounds=(0.01, 100.0))
    reset: str = _param("subtract", "Reset after a spike: subtract θ (detached) or set u to zero",
                        hot=False, group="neuron", choices=RESETS)
    learn_beta: bool = _param(False, "Train β per layer", hot=False, group="neuron")
    learn_threshold: bool = _param(False, "Train θ per layer", hot=False, group="neuron")
    batch_norm: bool = _param(True, "Batch norm after each conv/pool (conv model, as P1)",
                              hot=False, group="network")
    dropout: float = _param(0.0, "Dropout probability before the output layer", hot=True,
                            group="loss", bounds=(0.0, 0.95))

    # --- surrogate gradient (hot) ---
    surrogate: str = _param("fast_sigmoid", "Surrogate ∂s/∂u shape, centred at θ", hot=True,
                            group="surrogate", choices=SURROGATE_NAMES)
    surrogate_sharpness: float = _param(25.0, "Sharpness: slope k (fast_sigmoid), α (atan), β (HC family)",
                                        hot=True, group="surrogate", bounds=(0.01, 200.0))
    surrogate_dampening: float = _param(1.0, "Dampening γ: peak height of the surrogate", hot=True,
                                        group="surrogate", bounds=(0.01, 10.0))
    surrogate_tail: float = _param(1.56, "Tail-fatness q of q_pseudospike (q → ∞: exponential)",
                                   hot=True, group="surrogate", bounds=(1.01, 20.0))
    adali_schedule: str = _param("log", "AdaLi window schedule over epochs", hot=True,
                                 group="surrogate", choices=ADALI_SCHEDULES)
    adali_window_max: float = _param(1.5, "AdaLi window at the first epoch (L_max = R_max)", hot=True,
                                     group="surrogate", bounds=(0.01, 10.0))
    adali_window_min: float = _param(0.3, "AdaLi window at the last epoch (L_min = R_min)", hot=True,
                                     group="surrogate", bounds=(0.01, 10.0))
    adali_auto_window: bool = _param(False, "Set the AdaLi window from the membrane quartiles "
                                     "(this project's rule, not the paper's)", hot=True, group="surrogate")

    # --- quantization (hot) ---
    weight_bits: int = _param(32, "Weight bit-width: 1–8, or 32 for float", hot=True,
                              group="quantization", choices=WEIGHT_BITS)
    mem_bits: int = _param(32, "Membrane-state bit-width: 2–16, or 32 for float", hot=True,
                           group="quantization", bounds=(2, 32))

    # --- loss and sparsity (hot) ---
    loss: str = _param("rate_ce", "Loss on O(t): rate CE, spike-count MSE (P1), mean-output CE (SDT), "
                       "TET (P2), per-step summed CE", hot=True, group="loss", choices=LOSS_NAMES)
    count_correct: float = _param(0.8, "count_mse target rate of the true class (× T spikes)", hot=True,
                                  group="loss", bounds=(0.0, 1.0))
    count_incorrect: float = _param(0.2, "count_mse target rate of the other classes (× T spikes)",
                                    hot=True, group="loss", bounds=(0.0, 1.0))
    tet_lambda: float = _param(0.0, "TET mix λ: (1−λ)·L_TET + λ·mean (O−φ)²", hot=True, group="loss",
                               bounds=(0.0, 1.0))
    tet_phi: float = _param(1.0, "TET regularizer target φ", hot=True, group="loss", bounds=(-10.0, 10.0))
    sparsity_weight: float = _param(0.0, "Sparsity-loss weight λ (its final value under a schedule)",
                                    hot=True, group="sparsity", bounds=(0.0, 100.0))
    sparsity_kind: str = _param("rate", "Sparsity term: mean firing rate (P5) or Σ(rate − target)² (P4)",
                                hot=True, group="sparsity", choices=SPARSITY_KINDS)
    sparsity_target: float = _param(0.01, "Firing-rate target f of the 'target' term", hot=True,
                                    group="sparsity", bounds=(0.0, 1.0))
    sparsity_schedule: str = _param("constant", "λ over training: constant, linear ramp, P4's 20%→60% "
                                    "ramp, geometric", hot=True, group="sparsity", choices=SPARSITY_SCHEDULES)

    # --- optimization ---
    optimizer: str = _param("adam", "Optimizer (changing it resets the run)", hot=False,
                            group="optimizer", choices=OPTIMIZERS)
    lr: float = _param(5e-4, "Peak learning rate", hot=True, group="optimizer", bounds=(1e-6, 1.0))
    lr_schedule: str = _param("constant", "LR schedule: constant, periodic cosine (P1), warm restarts (SGDR)",
                              hot=True, group="optimizer", choices=LR_SCHEDULES)
    lr_period: int = _param(500, "Cosine period t0 / restart period T_0, in optimizer steps", hot=True,
                            group="optimizer", bounds=(1, 10_000_000))
    lr_t_mult: int = _param(1, "Warm-restart period multiplier T_mult", hot=True, group="optimizer",
                            bounds=(1, 10))
    lr_min: float = _param(0.0, "Lowest learning rate of the cosine schedules", hot=True,
                           group="optimizer", bounds=(0.0, 1.0))
    weight_decay: float = _param(0.0, "Weight decay (decoupled for AdamW)", hot=True, group="optimizer",
                                 bounds=(0.0, 1.0))
    momentum: float = _param(0.9, "SGD momentum", hot=True, group="optimizer", bounds=(0.0, 0.999))
    grad_clip: float = _param(0.0, "Clip the gradient norm at this value (0: off)", hot=True,
                              group="optimizer", bounds=(0.0, 1000.0))
    epochs: int = _param(3, "Planned epochs (sets the sparsity and AdaLi schedules)", hot=True,
                         group="optimizer", bounds=(1, 10_000))

    # --- run ---
    seed: int = _param(0, "Random seed: same seed, same run (on CPU)", hot=False, group="run",
                       bounds=(0, 2**31 - 1))
    device: str = _param("auto", "auto = CUDA when available", hot=False, group="run", choices=DEVICES)
    engine: str = _param("fast", "fast = fused multi-step kernels; reference = the plain lif_step loop",
                         hot=False, group="run", choices=ENGINES)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _checked(f, getattr(self, f.name)))
        if self.loss in SPIKE_LOSSES and self.readout != "spikes":
            raise ValueError(f"loss={self.loss!r} is defined on output spikes: it needs readout='spikes' "
                             f"(got readout={self.readout!r}); use 'sdt', 'tet' or 'sum_ce' otherwise")
        if self.adali_window_min > self.adali_window_max:
            raise ValueError(f"adali_window_min={self.adali_window_min} must be ≤ adali_window_max="
                             f"{self.adali_window_max}")
        if self.mem_bits != 32 and not 2 <= self.mem_bits <= 16:
            raise ValueError(f"mem_bits must be 2–16, or 32 for float; got {self.mem_bits}")

    # --- views of the schema ---
    @classmethod
    def fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls)}

    @classmethod
    def hot_fields(cls) -> tuple[str, ...]:
        return tuple(n for n, f in cls.fields().items() if f.metadata["hot"])

    @classmethod
    def cold_fields(cls) -> tuple[str, ...]:
        return tuple(n for n, f in cls.fields().items() if not f.metadata["hot"])

    # --- changes and serialization ---
    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` applied and validated; unknown names raise ValueError."""
        unknown = set(changes) - set(self.fields())
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def diff(self, other: "TrainConfig") -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ: name → (self's value, other's value)."""
        return {n: (getattr(self, n), getattr(other, n)) for n in self.fields()
                if getattr(self, n) != getattr(other, n)}

    def to_dict(self) -> dict[str, Any]:
        return {n: (list(v) if isinstance(v, tuple) else v) for n, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        if not isinstance(data, dict):
            raise ValueError(f"a config must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - set(cls.fields())
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _checked(f: dataclasses.Field, value: Any) -> Any:
    """Coerce ``value`` to the field's type and check it against bounds/choices."""
    name, meta, default = f.name, f.metadata, f.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{name} must be a non-empty list of integers, got {value!r}")
        lo, hi = meta["bounds"]
        return tuple(_number(name, v, int, lo, hi) for v in value)
    if isinstance(default, (int, float)):
        value = _number(name, value, type(default), *(meta["bounds"] or (-math.inf, math.inf)))
    elif isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    if meta["choices"] is not None and value not in meta["choices"]:
        allowed = ", ".join(str(c) for c in meta["choices"])
        raise ValueError(f"{name}={value!r} is not allowed; allowed: {allowed}")
    return value


def _number(name: str, value: Any, kind: type, lo: float, hi: float):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value) if isinstance(value, str) else value
        except ValueError:
            pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if not (lo <= value <= hi):  # also rejects NaN
        raise ValueError(f"{name}={value!r} is out of range; allowed: [{lo}, {hi}]")
    return value
