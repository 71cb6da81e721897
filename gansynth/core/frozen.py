"""A frozen inference copy of G: what `Synth.generate` runs instead of the training modules.

Training's layers rescale their weights on every call (equalised LR: `weight * scale`; the spectral
norm of attention: `W / sigma`) so that the optimiser sees the raw parameters; for inference those
products are constants. The copy folds them into plain `nn.Conv2d`/`nn.Linear` weights once and keeps
the convolutions channels_last (oneDNN's fast layout on CPU, the tensor cores' on CUDA). Each leaky
ReLU and the pixel norm after it become one in-place step (`LeakyPixelNorm`): on CPU, rendering is
bound by memory passes and by the page faults of fresh buffers, not by the convolutions (a profile of
the paper G in bf16: convolutions 27% of the time, pixel norm 41%). Each block's 2x nearest upsampling
and the 3x3 conv after it become one stride-2 transposed conv (`UpsamplingConv2d`): 16 taps per coarse
pixel where the conv of the upsampled map takes 36, and no upsampled copy. The original generator is
left untouched, so training can go on updating it.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize, skip_init

from gansynth.core.layers import (EqualizedConv2d, EqualizedLinear, LatentToGrid, PixelNorm, cat_channels,
                                  is_channels_last, plain_linear)
from gansynth.core.networks import Generator

FOLDABLE = (EqualizedConv2d, EqualizedLinear, LatentToGrid)
# A 3x3 tap t of a conv over a 2x nearest-upsampled map, as taps k of a stride-2 transposed 4x4 kernel over
# the coarse map (padding 1): fine pixel 2i reads coarse rows i-1 (tap 0) and i (taps 1, 2), fine pixel
# 2i+1 reads rows i (taps 0, 1) and i+1 (tap 2); the transposed conv's tap k puts coarse row j at 2j + k - 1.
TRANSPOSED_TAPS = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # [k, t]


class UpsamplingConv2d(nn.Module):
    """A 3x3 conv (padding 1) of [2x nearest upsampling of x, extra channels at the fine resolution], given
    (x [B, C, h, w], extras: list of [B, k_i, 2h, 2w]) apart -> [B, out, 2h, 2w]. The coarse part is one
    transposed conv of x; the extras (harmonic coordinates, frame positions, ...) keep a 3x3 conv of
    their own, added in place."""

    def __init__(self, conv: nn.Conv2d, coarse_channels: int) -> None:
        super().__init__()
        if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.stride != (1, 1):
            raise ValueError(f"UpsamplingConv2d needs a 3x3 conv with padding 1, got {conv}")
        weight = conv.weight.detach()
        coarse = torch.einsum("kt,oits,ls->iokl", TRANSPOSED_TAPS.to(weight), weight[:, :coarse_channels],
                              TRANSPOSED_TAPS.to(weight))  # [C, out, 4, 4]
        self.register_buffer("coarse_weight", coarse.contiguous())
        self.register_buffer("bias", conv.bias.detach().clone())
        self.extra = None
        if weight.shape[1] > coarse_channels:
            self.extra = skip_init(nn.Conv2d, weight.shape[1] - coarse_channels, weight.shape[0], 3, padding=1,
                                   bias=False, device=weight.device).requires_grad_(False)
            self.extra.weight.copy_(weight[:, coarse_channels:])

    def forward(self, inputs: tuple[torch.Tensor, list[torch.Tensor]]) -> torch.Tensor:
        x, extras = inputs
        y = F.conv_transpose2d(x, self.coarse_weight, self.bias, stride=2, padding=1)  # [B, out, 2h, 2w]
        if self.extra is not None:
            y.add_(self.extra(cat_channels(extras, is_channels_last(y))))
        return y


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
    leaky ReLU + pixel norm pair fused in place, and each block's upsampling folded into its first conv."""
    frozen = copy.deepcopy(generator).eval().requires_grad_(False)
    for path, module in list(frozen.named_modules()):
        plain = _folded(module)
        if plain is not None:
            parent, _, name = path.rpartition(".")
            setattr(frozen.get_submodule(parent), name, plain)
    for module in list(frozen.modules()):
        if isinstance(module, nn.Sequential):
            _fuse_activation_norm(module)
    for i, block in enumerate(frozen.blocks):
        if i:  # block 0 reads the start grid as it is
            block[0] = UpsamplingConv2d(block[0], coarse_channels=frozen.widths[i])
    frozen.upsampling_convs = True
    return frozen.to(memory_format=torch.channels_last)


def _fuse_activation_norm(sequence: nn.Sequential) -> None:
    """In `sequence` (its own children only), every LeakyReLU that follows a conv or linear map and is
    followed by a PixelNorm becomes one LeakyPixelNorm, and that PixelNorm an identity."""
    layers = list(sequence)
    for i in range(1, len(layers) - 1):
        before, activation, norm = layers[i - 1: i + 2]
        if (type(activation) is nn.LeakyReLU and isinstance(norm, PixelNorm)
                and isinstance(before, (nn.Conv2d, nn.Linear, nn.Sequential))):
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
