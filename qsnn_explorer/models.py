"""Spiking networks as a stack of blocks: synapse (quantized weights) → LIF neurons.

Every block maps a whole sequence [T, B, ...] at once (multi-step mode): the synapse (linear
or conv, pooling, batch norm) runs on all T·B slices together, then the neurons integrate over
time. Batch-norm statistics are therefore pooled over time steps and batch, and the running
statistics move at momentum 1 − 0.9^T per batch, as fast as P1's loop that updates them at each
of the T steps (otherwise a short run evaluates with statistics still near their init). The last block is the
readout: an LIF layer whose spikes or membrane are the output O(t), or no neuron at all
(``readout="current"``: per-step logits, as TET).

Two engines share the parameters and differ only in how the sequence is evaluated:
``reference`` runs the plain ``lif_step`` loop (autograd through every step); ``fast`` runs the
fused LIF Function with its hand-written backward (``fused.py``), computes the first synapse
once when the input is the same at every step (direct encoding), runs linear synapses as
``fast_linear.linear`` (the first one leaves out the input features silent across the batch;
each frees its input before its input gradient is made), and runs conv synapses a few time
steps at a time (``Block._conv_in_chunks``), which bounds their memory. Both take bool spikes as
input (rate and latency encoders), converting them where numbers are needed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import TrainConfig
from .fast_linear import linear
from .fused import fused_lif
from .neurons import LIFParams, lif_sequence
from .quant import quantize_weight
from .surrogates import Surrogate, make_surrogate


CONV_CHUNK_SAMPLES = 512  # images per conv → pool call of the fast engine (see Block._conv_in_chunks)


class QuantLinear(nn.Linear):
    """Linear layer whose weights are fake-quantized to ``weight_bits`` in every forward."""

    weight_bits: int = 32

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, quantize_weight(self.weight, self.weight_bits), self.bias)


class QuantConv2d(nn.Conv2d):
    """Conv layer whose weights are fake-quantized to ``weight_bits`` in every forward."""

    weight_bits: int = 32

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, quantize_weight(self.weight, self.weight_bits), self.bias)


class SeededDropout(nn.Module):
    """Inverted dropout drawing its masks from ``self.generator`` (no global RNG)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * keep / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LIFLayer(nn.Module):
    """A layer of LIF neurons with one β and one θ (learnable or fixed) and a hot surrogate."""

    def __init__(self, beta: float, threshold: float, *, learn_beta=False, learn_threshold=False,
                 reset="subtract", surrogate: Surrogate | None = None):
        super().__init__()
        beta_t, theta_t = torch.tensor(float(beta)), torch.tensor(float(threshold))
        if learn_beta:
            self.beta = nn.Parameter(beta_t)
        else:
            self.register_buffer("beta", beta_t)
        if learn_threshold:
            self.threshold = nn.Parameter(theta_t)
        else:
            self.register_buffer("threshold", theta_t)
        self.reset = reset
        self.surrogate = surrogate or make_surrogate("fast_sigmoid")
        self.mem_bits = 32

    def params(self) -> LIFParams:
        return LIFParams(self.beta, self.threshold, self.surrogate, self.reset, self.mem_bits)

    def forward(self, currents: Tensor, recurrent: nn.Module | None = None, fused: bool = False,
                steps: int | None = None, keep_mems: bool = True,
                reuse_currents: bool = False) -> tuple[Tensor, Tensor | None]:
        """currents [T, B, ...] → (spikes, membranes), both [T, B, ...].

        ``steps``: ``currents`` is one [B, ...] current, the same at each of ``steps`` steps.
        ``fused`` runs the hand-written BPTT Function; recurrent layers always use the step loop.
        ``keep_mems=False`` lets the fused path skip the membranes (None). ``reuse_currents``: no one
        else holds ``currents``, so the fused backward may overwrite them (``fused.CompiledLIF``).
        """
        if fused and recurrent is None:
            return fused_lif(currents, self.beta, self.threshold, self.surrogate, self.reset, self.mem_bits,
                             steps, keep_mems=keep_mems, reuse_currents=reuse_currents)
        if steps is not None:
            currents = currents.unsqueeze(0).expand(steps, *currents.shape)
        return lif_sequence(currents, self.params(), recurrent)

    def extra_repr(self) -> str:
        return f"beta={float(self.beta.detach()):.4g}, threshold={float(self.threshold.detach()):.4g}, reset={self.reset}, " \
               f"surrogate={self.surrogate!r}"


class Block(nn.Module):
    """synapse → (optional) LIF neurons, with an optional recurrent map of the layer's own spikes."""

    def __init__(self, synapse: nn.Module, neuron: LIFLayer | None, recurrent: nn.Module | None = None,
                 fanout: int = 0):
        super().__init__()
        self.synapse, self.neuron, self.recurrent = synapse, neuron, recurrent
        self.fanout = fanout  # synapses driven by one input value (for SynOps)

    def forward(self, x: Tensor, static: bool = False, fused: bool = False, keep_mems: bool = True,
                skip_silent: bool = False) -> tuple[Tensor, Tensor | None]:
        """x [T, B, ...] → (spikes, or the current when there is no neuron; membrane or None).

        ``skip_silent``: a final linear synapse leaves out the input features that are 0 at every
        step of every sample (``fast_linear``; CPU only, where it saves GEMM time).
        """
        steps, batch = x.shape[:2]
        if static:  # same input at every step: one synapse pass
            cur = self.synapse(self._numbers(x[0]))
            if self.neuron is None:
                return cur.unsqueeze(0).expand(steps, *cur.shape), None
            return self.neuron(cur, self.recurrent, fused, steps, keep_mems)
        if fused and isinstance(self.synapse[0], QuantConv2d):
            cur = self._conv_in_chunks(x)
        else:
            cur = self._synapse(x.flatten(0, 1), fused, skip_silent).unflatten(0, (steps, batch))
        if self.neuron is None:
            return cur, None
        return self.neuron(cur, self.recurrent, fused, keep_mems=keep_mems, reuse_currents=True)  # cur is ours

    def _conv_in_chunks(self, x: Tensor) -> Tensor:
        """conv → pool on [T, B, ...] a few steps (``CONV_CHUNK_SAMPLES`` images) at a time, then
        batch norm, if any, on all T·B maps at once (its statistics pool over time and batch).

        The same values as one call on T·B images; the full-resolution map before pooling (and
        its gradient) exists for one chunk at a time: conv training peak −65 MB at T 25, batch
        64, no slower.
        """
        steps, batch = x.shape[:2]
        norm = self.synapse[-1] if isinstance(self.synapse[-1], nn.BatchNorm2d) else None
        local = self.synapse[:-1] if norm is not None else self.synapse
        chunk = max(1, CONV_CHUNK_SAMPLES // batch)
        cur = torch.cat([local(self._numbers(part.flatten(0, 1))) for part in x.split(chunk)])
        return (cur if norm is None else norm(cur)).unflatten(0, (steps, batch))

    def _synapse(self, x: Tensor, fused: bool, skip_silent: bool) -> Tensor:
        """The synapse on [N, ...]; the fast engine runs a final linear one as ``fast_linear.linear``."""
        *before, last = self.synapse
        if not (fused and isinstance(last, QuantLinear)):
            return self.synapse(self._numbers(x))
        for module in before:
            x = module(x)
        return linear(x, quantize_weight(last.weight, last.weight_bits), last.bias,
                      skip_silent=skip_silent and x.device.type == "cpu")

    def _numbers(self, x: Tensor) -> Tensor:
        """Bool spikes → the weights' dtype (anything else passes through)."""
        return x.to(next(self.synapse.parameters()).dtype) if x.dtype == torch.bool else x


@dataclass
class Recording:
    """What one forward pass produced; lists hold one entry per LIF layer, each [T, B, ...]."""

    spikes: list[Tensor]
    mems: list[Tensor]
    out: Tensor  # O(t) [T, B, classes]: output spikes, output membrane, or output current
    n_hidden: int

    @property
    def hidden_spikes(self) -> list[Tensor]:
        return self.spikes[: self.n_hidden]


class SpikingNet(nn.Module):
    """A stack of blocks; the last one is the readout."""

    def __init__(self, blocks: list[Block], readout: str):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.readout = readout
        self.engine = "reference"

    @property
    def lif_layers(self) -> list[LIFLayer]:
        return [b.neuron for b in self.blocks if b.neuron is not None]

    def forward(self, x: Tensor, static: bool = False, keep_mems: bool = True) -> Recording:
        """x [T, B, ...] → Recording. ``static``: x[t] is the same for every t (direct encoding).

        ``keep_mems=False`` lets the fast engine drop the hidden membranes from the recording (None):
        training and evaluation need spikes and the readout only, and not storing them saves time.
        """
        spikes, mems = [], []
        out = x
        fast = self.engine == "fast"
        last = self.blocks[-1]
        for i, block in enumerate(self.blocks):
            keep = keep_mems or (block is last and self.readout == "membrane")
            out, mem = block(out, static and i == 0 and fast, fast, keep, skip_silent=fast and i == 0)
            if block.neuron is not None:
                spikes.append(out)
                mems.append(mem)
        if self.readout == "membrane":
            out = mems[-1]
        n_hidden = len(spikes) - (last.neuron is not None)
        return Recording(spikes, mems, out, n_hidden)

    def set_hot(self, *, surrogate: Surrogate, weight_bits: int, mem_bits: int, dropout: float) -> None:
        """Apply hot parameters in place (between steps)."""
        for layer in self.lif_layers:
            layer.surrogate, layer.mem_bits = surrogate, mem_bits
        for m in self.modules():
            if isinstance(m, (QuantLinear, QuantConv2d)):
                m.weight_bits = weight_bits
            elif isinstance(m, SeededDropout):
                m.p = dropout

    def set_generator(self, generator: torch.Generator) -> None:
        for m in self.modules():
            if isinstance(m, SeededDropout):
                m.generator = generator


def build_model(cfg: TrainConfig, step_shape: tuple[int, ...], n_classes: int,
                generator: torch.Generator | None = None) -> SpikingNet:
    """The network of ``cfg.model`` for inputs of ``step_shape`` per time step, initialised from ``generator``."""
    def lif():
        return LIFLayer(cfg.beta, cfg.threshold, learn_beta=cfg.learn_beta,
                        learn_threshold=cfg.learn_threshold, reset=cfg.reset)

    blocks: list[Block] = []
    if cfg.model == "conv":
        channels, h, w = step_shape
        for width in cfg.hidden:
            if min(h, w) < 6:
                raise ValueError(f"model='conv' with hidden={list(cfg.hidden)} needs larger images: "
                                 f"got {step_shape[1]}×{step_shape[2]} (each conv5×5 + pool2 needs ≥ 6 px)")
            layers = [QuantConv2d(channels, width, 5, bias=bool(blocks)), nn.AvgPool2d(2)]
            if cfg.batch_norm:  # one update per batch here = T per-step updates of P1's loop
                layers.append(nn.BatchNorm2d(width, momentum=1 - 0.9 ** cfg.num_steps))
            blocks.append(Block(nn.Sequential(*layers), lif(), fanout=width * 25))
            channels, h, w = width, (h - 4) // 2, (w - 4) // 2
        features = channels * h * w
    else:
        features = math.prod(step_shape)
        for width in cfg.hidden:
            recurrent = QuantLinear(width, width, bias=False) if cfg.model == "recurrent" else None
            fanout = width + (width if recurrent is not None else 0)
            blocks.append(Block(nn.Sequential(nn.Flatten(), QuantLinear(features, width)), lif(),
                                recurrent, fanout=fanout))
            features = width
    readout = Block(nn.Sequential(nn.Flatten(), SeededDropout(cfg.dropout),
                                  QuantLinear(features, n_classes)),
                    None if cfg.readout == "current" else lif(), fanout=n_classes)
    net = SpikingNet(blocks + [readout], cfg.readout)
    init_parameters(net, generator)
    return net


def init_parameters(net: nn.Module, generator: torch.Generator | None) -> None:
    """PyTorch's default init (Kaiming-uniform, a=√5), drawn from ``generator`` instead of the global RNG."""
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                bound = 1 / math.sqrt(m.weight[0].numel())  # 1/√fan_in
                with torch.no_grad():
                    m.bias.uniform_(-bound, bound, generator=generator)
