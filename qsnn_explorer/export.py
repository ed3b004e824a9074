"""Export a trained network to plain torch + snntorch modules, for users who carry on in snnTorch.

Quantized weights are baked in (the exported layers hold the quantized float values), each LIF
layer becomes ``snn.Leaky`` (``snn.RLeaky`` for recurrent layers) with the same β, θ, reset and
surrogate, and ``forward`` loops over time as snntorch's tutorials do. Outputs equal the engine's.
"""
from __future__ import annotations

import copy

import snntorch as snn
import torch
from snntorch import surrogate as snn_surrogate
from torch import Tensor, nn

from .models import LIFLayer, QuantConv2d, QuantLinear, SeededDropout
from .quant import quantize_weight
from .surrogates import Surrogate


def snntorch_spike_grad(s: Surrogate):
    """snntorch's own surrogate when it is the same function, else the engine's surrogate object."""
    if s.name == "fast_sigmoid" and s.dampening == 1:
        return snn_surrogate.fast_sigmoid(slope=s.sharpness)
    if s.name == "atan" and s.dampening == 1:
        return snn_surrogate.atan(alpha=s.sharpness)
    return s


def _plain_synapse(module: nn.Module) -> nn.Module:
    """Copy with quantization baked in and seeded dropout replaced by nn.Dropout."""
    module = copy.deepcopy(module)
    for name, child in list(module.named_children()):
        if isinstance(child, QuantLinear):
            plain = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
        elif isinstance(child, QuantConv2d):
            plain = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                              child.padding, bias=child.bias is not None)
        elif isinstance(child, SeededDropout):
            setattr(module, name, nn.Dropout(child.p))
            continue
        else:
            setattr(module, name, _plain_synapse(child))
            continue
        with torch.no_grad():
            plain.weight.copy_(quantize_weight(child.weight, child.weight_bits))
            if child.bias is not None:
                plain.bias.copy_(child.bias)
        setattr(module, name, plain)
    return module


def _leaky(layer: LIFLayer, recurrent: nn.Module | None) -> nn.Module:
    if layer.mem_bits != 32:
        raise ValueError("membrane quantization (mem_bits < 32) has no snntorch equivalent; export with 32")
    kwargs = dict(beta=layer.beta.detach().clone(), threshold=layer.threshold.detach().clone(),
                  spike_grad=snntorch_spike_grad(layer.surrogate), reset_mechanism=layer.reset,
                  learn_beta=isinstance(layer.beta, nn.Parameter),
                  learn_threshold=isinstance(layer.threshold, nn.Parameter))
    if recurrent is None:
        return snn.Leaky(**kwargs)
    if layer.reset != "subtract":
        raise ValueError("snn.RLeaky resets to zero differently from snn.Leaky; export recurrent nets "
                         "trained with reset='subtract'")
    width = recurrent.out_features
    neuron = snn.RLeaky(linear_features=width, all_to_all=True, **kwargs)
    with torch.no_grad():
        neuron.recurrent.weight.copy_(quantize_weight(recurrent.weight, recurrent.weight_bits))
        neuron.recurrent.bias.zero_()
    return neuron


class SnnTorchNet(nn.Module):
    """synapse_i → snn.Leaky_i for each layer, run step by step.

    ``forward(x)`` takes the input sequence [T, B, ...] and returns (spikes, membrane) of the
    output layer, each [T, B, classes]; for a non-spiking readout, (None, output current).
    """

    def __init__(self, synapses: list[nn.Module], neurons: list[nn.Module | None]):
        super().__init__()
        self.synapses = nn.ModuleList(synapses)
        self.neurons = nn.ModuleList([n if n is not None else nn.Identity() for n in neurons])
        self.spiking = [n is not None for n in neurons]

    def forward(self, x: Tensor) -> tuple[Tensor | None, Tensor]:
        states = [None] * len(self.neurons)
        spk_rec, mem_rec = [], []
        for x_t in x:
            h = x_t
            for i, (synapse, neuron) in enumerate(zip(self.synapses, self.neurons)):
                cur = synapse(h)
                if not self.spiking[i]:
                    h, mem = None, cur
                elif isinstance(neuron, snn.RLeaky):
                    spk0, mem0 = states[i] or (torch.zeros_like(cur), torch.zeros_like(cur))
                    h, mem = neuron(cur, spk0, mem0)
                    states[i] = (h, mem)
                else:
                    mem0 = states[i] if states[i] is not None else torch.zeros_like(cur)
                    h, mem = neuron(cur, mem0)
                    states[i] = mem
            spk_rec.append(h)
            mem_rec.append(mem)
        spikes = torch.stack(spk_rec) if self.spiking[-1] else None
        return spikes, torch.stack(mem_rec)


def to_snntorch(trainer) -> SnnTorchNet:
    """Build the snntorch twin of ``trainer.model`` (on CPU, in eval mode)."""
    synapses, neurons = [], []
    for block in trainer.model.blocks:
        synapses.append(_plain_synapse(block.synapse))
        neurons.append(None if block.neuron is None else _leaky(block.neuron, block.recurrent))
    return SnnTorchNet(synapses, neurons).cpu().eval()
