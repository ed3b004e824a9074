"""Named configurations: a one-line description and the fields that differ from TrainConfig's defaults."""
from __future__ import annotations

from dataclasses import dataclass

from .config import TrainConfig


@dataclass(frozen=True)
class Preset:
    description: str
    overrides: dict


# P1 reference-code hyperparameters (see shared/papers.md): MNIST and FMNIST use the same net.
_P1_COMMON = dict(model="conv", hidden=(16, 64), batch_norm=True, encoder="direct", readout="spikes",
                  loss="count_mse", weight_bits=4, optimizer="adam", lr_schedule="cosine_periodic",
                  surrogate="fast_sigmoid", num_steps=100, batch_size=128, lr_period=4690, epochs=200)

# P2 (TET) / P3 (AdaLi) on CIFAR-10 with the engine's 2-block conv net (not VGG/ResNet-19); 352 steps/epoch.
_P2_FULL = dict(dataset="cifar10", model="conv", hidden=(128, 256), batch_norm=True, encoder="direct", num_steps=4,
                readout="current", loss="tet", tet_lambda=0.0, tet_phi=1.0, beta=0.5, threshold=1.0, reset="zero",
                surrogate="triangular", surrogate_sharpness=1.0, surrogate_dampening=1.0, optimizer="adam", lr=1e-3,
                lr_schedule="cosine_periodic", lr_period=150 * 352, batch_size=128, epochs=150)
_P3_FULL = dict(dataset="cifar10", model="conv", hidden=(128, 256), batch_norm=True, encoder="direct", num_steps=6,
                readout="spikes", loss="rate_ce", beta=0.95, threshold=1.0, reset="subtract", surrogate="adali",
                adali_schedule="log", adali_window_max=1.5, adali_window_min=0.3, optimizer="adam", lr=1e-3,
                lr_schedule="cosine_periodic", lr_period=100 * 352, batch_size=128, epochs=100)

# P4 (Herranz-Celotti & Rouat): SHD/SSC are not available offline; sequential MNIST stands in.
_P4_FULL = dict(dataset="mnist", encoder="rows", num_steps=28, model="recurrent", hidden=(256, 256),
                readout="current", loss="tet", tet_lambda=0.0, optimizer="adamw", weight_decay=0.01,
                grad_clip=1.0, lr=3.16e-4, batch_size=128, epochs=50, surrogate="hc_fast_sigmoid",
                surrogate_sharpness=1.0, surrogate_dampening=1.0)

PRESETS: dict[str, Preset] = {
    "mnist5k-mlp": Preset(
        "784-1000-10 LIF MLP on the embedded MNIST digits, float weights (≥ 90% test in 3 epochs)",
        dict(hidden=(1000,), num_steps=25, readout="membrane", loss="sum_ce", lr=2e-3, batch_size=64,
             epochs=3)),
    "mnist5k-mlp-4bit": Preset(
        "The same MLP with 4-bit weights (P1's quantizer)",
        dict(hidden=(1000,), num_steps=25, readout="membrane", loss="sum_ce", lr=2e-3, batch_size=64,
             epochs=3, weight_bits=4)),
    "bench-snntorch-tutorial": Preset(
        "snntorch tutorial 5 net: 784-1000-10, β 0.95, fast-sigmoid k 25, T 25, Σ_t CE(mem), Adam 5e-4",
        dict(hidden=(1000,), beta=0.95, surrogate="fast_sigmoid", surrogate_sharpness=25.0, num_steps=25,
             encoder="direct", readout="membrane", loss="sum_ce", optimizer="adam", lr=5e-4, batch_size=128,
             epochs=1)),
    "mnist5k-rate": Preset(
        "The tutorial MLP fed Bernoulli rate-coded spikes",
        dict(hidden=(1000,), encoder="rate", readout="membrane", loss="sum_ce", lr=2e-3, batch_size=64,
             epochs=3)),
    "mnist5k-conv": Preset(
        "P1's conv net (16c5-p2-BN-LIF-64c5-p2-BN-LIF-fc10) on mnist5k, float, T 25",
        dict(model="conv", hidden=(16, 64), num_steps=25, beta=0.97, threshold=2.5, surrogate_sharpness=5.6,
             readout="spikes", loss="count_mse", lr=3e-3, dropout=0.07, batch_size=64, epochs=3)),
    "digits8x8-mlp": Preset(
        "Tiny: scikit-learn's 8×8 digits, 64-128-10, T 10 (seconds on a laptop)",
        dict(dataset="digits8x8", hidden=(128,), num_steps=10, readout="membrane", loss="sum_ce", lr=5e-3,
             batch_size=32, epochs=5)),
    "events-mnist-mlp": Preset(
        "Neuromorphic path: generated ON/OFF saccade events of mnist5k digits, 2×34×34-512-10, T 20",
        dict(dataset="events_mnist", hidden=(512,), num_steps=20, beta=0.9, readout="membrane",
             loss="sum_ce", lr=2e-3, batch_size=64, epochs=3)),
    "p1-quickstart": Preset(
        "P1 small: conv net, 4-bit weights, count MSE, periodic cosine LR, quickstart β θ k lr dropout",
        dict(_P1_COMMON, dataset="mnist5k", num_steps=25, beta=0.97, threshold=2.5, surrogate_sharpness=5.6,
             lr=3e-3, dropout=0.07, batch_size=64, lr_period=150, epochs=6)),
    "p1-full-mnist": Preset(
        "P1 full scale (GPU): MNIST, T 100, reference-code β θ k lr dropout, t0 4690, 4-bit",
        dict(_P1_COMMON, dataset="mnist", beta=0.994, threshold=2.915, surrogate_sharpness=13.84, lr=5.4e-3,
             dropout=0.003)),
    "p1-full-fmnist": Preset(
        "P1 full scale (GPU): Fashion-MNIST, T 100, reference-code hyperparameters, 4-bit",
        dict(_P1_COMMON, dataset="fashion_mnist", beta=0.974, threshold=2.473, surrogate_sharpness=5.5565,
             lr=2.908e-3, dropout=0.074)),
    "p1-full-dvs": Preset(
        "P1 full scale (GPU): DVS128 Gesture 2×32×32, conv16-conv32-fc11 no BN, 100 frames, clip 1",
        dict(_P1_COMMON, dataset="dvs_gesture", hidden=(16, 32), batch_norm=False, beta=0.614, threshold=0.427,
             surrogate_sharpness=4.413, lr=2.634e-3, dropout=0.203, batch_size=16, lr_period=735,
             grad_clip=1.0)),
    "p2-full-cifar10-tet": Preset(
        "P2 full scale (GPU): TET on CIFAR-10, T 4, conv 128-256 (not the paper's ResNet-19/VGG), "
        "hard reset, triangle surrogate, Adam 1e-3 cosine, 150 epochs", _P2_FULL),
    "p2-full-cifar10-sdt": Preset("P2 full scale baseline: the same with mean-output CE (SDT)",
                                  dict(_P2_FULL, loss="sdt")),
    "p3-full-cifar10-adali": Preset(
        "P3 full scale (GPU, assumed setup): AdaLi log window 1.5→0.3 on CIFAR-10, conv 128-256, T 6",
        _P3_FULL),
    "p5-full-cifar10": Preset(
        "P5 full scale (GPU): CIFAR-10, conv 64-128 (P5's net is unpublished), CE + geometric-ramped "
        "rate penalty λ_max 3 (sweep ×1/3..×3 for the iso-accuracy point)",
        dict(dataset="cifar10", model="conv", hidden=(64, 128), batch_norm=True, encoder="direct", num_steps=25,
             beta=0.95, threshold=1.0, surrogate="fast_sigmoid", surrogate_sharpness=25.0, readout="current",
             loss="sdt", dropout=0.1, optimizer="adam", lr=1e-3, batch_size=128, epochs=100,
             sparsity_kind="rate", sparsity_schedule="geometric", sparsity_weight=3.0)),
    "p4-full-smnist": Preset(
        "P4 full scale (GPU): sequential MNIST rows (T 28; stands in for SHD/SSC), 2 recurrent LIF "
        "layers of 256, per-step CE, AdamW wd 0.01, clip 1, lr 3.16e-4, fast-sigmoid γ=β=1",
        _P4_FULL),
    "p4-full-smnist-sparse": Preset(
        "P4 full scale + the 20%→60% annealed 0.01 firing-rate target (bias-init phase: see notebook 04)",
        dict(_P4_FULL, sparsity_weight=1.0, sparsity_kind="target", sparsity_target=0.01,
             sparsity_schedule="anneal_20_60")),
}


def preset(name: str, **overrides) -> TrainConfig:
    """The TrainConfig of preset ``name``, with ``overrides`` applied on top."""
    if name not in PRESETS:
        raise ValueError(f"preset={name!r} is unknown; allowed: {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name].overrides, **overrides})
