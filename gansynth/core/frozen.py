"""A frozen inference copy of G: what `Synth.generate` runs instead of the training modules.

Training's layers rescale their weights on every call (equalised LR: `weight * scale`; the spectral
norm of attention: `W / sigma`) so that the optimiser sees the raw parameters; for inference those
products are constants. The copy folds them into plain `nn.Conv2d`/`nn.Linear` weights once and keeps
the convolutions channels_last (oneDNN's fast layout on CPU, the tensor cores' on CUDA). Each leaky
ReLU and the pixel norm after it become one in-place step (`LeakyPixelNorm`): on CPU, rendering is
bound by memory passes and by the page faults of fresh buffers, not by the convolutions (a profile of
the paper G in bf16: convolutions 27% of the time, pixel norm 41%). Each block's first conv, which
upsamples inside a stride-2 transposed conv in training too, keeps its folded kernels as constants
(`UpsamplingConv2d`). The original generator is left untouched, so training can go on updating it.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from torch.nn.utils import parametrize

from gansynth.core.layers import (EqualizedConv2d, EqualizedLinear, LatentToGrid, PixelNorm, UpsamplingConv2d,
                                  plain_linear)
from gansynth.core.networks import Generator

FOLDABLE = (EqualizedConv2d, EqualizedLinear, LatentToGrid)  # EqualizedUpsamplingConv2d is an EqualizedConv2d


class LeakyPixelNorm(nn.Module):
    """Leaky ReLU, then pixel norm, both in place on their input: inference only, and only after a layer
    whose output nothing else reads (a conv or linear map). The channel norm is taken in x's own dtype
    (the reduction accumulates in fp32 either way; asking for an fp32 result copies the whole map
    first, measured 12x slower in bf16), the small per-pixel scale is computed in fp32."""

    def __init__(self, slope: float, eps: float) -> None:
        super().__init__()
        self.slope, self.eps = slope, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, C, ...] -> the same tensor, activated and normalised over C
        x = torch.nn.functional.leaky_relu_(x, self.slope)
        norm = torch.linalg.vector_norm(x, dim=1, keepdim=True).float()  # [B, 1, ...]
        return x.mul_(norm.square_().div_(x.shape[1]).add_(self.eps).rsqrt_().to(x.dtype))


def frozen_generator(generator: Generator) -> Generator:
    """A detached eval-mode copy of `generator` with every rescaling folded in, channels_last, each
    leaky ReLU + pixel norm pair fused in place."""
    frozen = copy.deepcopy(generator).eval().requires_grad_(False)
    for path, module in list(frozen.named_modules()):
        plain = _folded(module)
        if plain is not None:
            parent, _, name = path.rpartition(".")
            setattr(frozen.get_submodule(parent), name, plain)
    for module in list(frozen.modules()):
        if isinstance(module, nn.Sequential):
            _fuse_activation_norm(module)
    return frozen.to(memory_format=torch.channels_last)


def _fuse_activation_norm(sequence: nn.Sequential) -> None:
    """In `sequence` (its own children only), every LeakyReLU that follows a conv or linear map and is
    followed by a PixelNorm becomes one LeakyPixelNorm, and that PixelNorm an identity."""
    layers = list(sequence)
    for i in range(1, len(layers) - 1):
        before, activation, norm = layers[i - 1: i + 2]
        if (type(activation) is nn.LeakyReLU and isinstance(norm, PixelNorm)
                and isinstance(before, (nn.Conv2d, nn.Linear, nn.Sequential, UpsamplingConv2d))):
            sequence[i] = LeakyPixelNorm(activation.negative_slope, norm.eps)
            sequence[i + 1] = nn.Identity()


def _folded(module: nn.Module) -> nn.Module | None:
    """The plain layer computing what `module` computes now, or None when it rescales nothing."""
    if isinstance(module, FOLDABLE):
        return module.folded()
    if isinstance(module, nn.Linear) and parametrize.is_parametrized(module, "weight"):
        return plain_linear(module.weight, module.bias)  # spectral norm: eval mode's W / sigma, once
    return None


class CompiledOrEager(nn.Module):
    """The frozen G through ``torch.compile`` (inductor fuses each leaky ReLU + pixel norm and the small ops
    around the convolutions into fewer memory passes), or, where compiling fails (no C++ compiler, an op
    it cannot lower), the eager copy with one warning. Compiling takes tens of seconds, once per loaded
    model and batch shape, so it pays only on long renders (README, Rendering)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self._compiled = torch.compile(network.forward, dynamic=False)

    def forward(self, *inputs):
        if self._compiled is not None:
            try:
                return self._compiled(*inputs)
            except Exception as error:  # compile errors surface at the first call; a real input error recurs below
                reason = (str(error).strip().splitlines() or [""])[0][:200]
                warnings.warn(f"torch.compile failed ({type(error).__name__}: {reason}); rendering without it",
                              stacklevel=2)
                self._compiled = None
        return self.network(*inputs)
