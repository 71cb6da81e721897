"""Building blocks of the progressive G and D: equalised-LR layers, pixel norm, minibatch stddev, attention.

Equalised learning rate (ProGAN): weights are drawn from N(0, 1) and scaled at run time by
sqrt(2 / ((1 + slope^2) * fan_in)), so Adam's per-parameter step size means the same thing for every layer.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init
from torch.nn.utils.parametrizations import spectral_norm

from gansynth.core.double_backward import conv2d, no_autocast
from gansynth.core.errors import GANSynthError

LEAKY_SLOPE = 0.2


class LayerError(GANSynthError):
    """A layer was built with an impossible shape."""


def equalized_gain(fan_in: int, slope: float) -> float:
    """He gain for a layer followed by a leaky ReLU of `slope` (slope 1 means a linear output)."""
    return math.sqrt(2.0 / ((1.0 + slope**2) * fan_in))


class EqualizedConv2d(nn.Module):
    """Conv with N(0, 1) weights scaled at run time; `padding` as in `F.conv2d` (1 for a SAME 3x3)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        slope: float = 0.0,
        padding: int = 0,
    ) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = equalized_gain(in_channels * kh * kw, slope)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, C_in, H, W] -> [B, C_out, H', W']
        return conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def folded(self) -> nn.Conv2d:
        """The same map as a plain conv with the scale multiplied into the weight once (inference)."""
        out_channels, in_channels, *kernel = self.weight.shape
        conv = skip_init(nn.Conv2d, in_channels, out_channels, tuple(kernel), padding=self.padding,
                         device=self.weight.device)
        return constant_copy(conv, self.weight * self.scale, self.bias)


class EqualizedCollapse(EqualizedConv2d):
    """An equalised VALID conv whose kernel covers its whole input map: D's last conv, from the start grid to one
    feature vector per note, computed as one matmul. As a convolution, oneDNN's weight gradient converts the
    [out, C, h, w] weight between layouts twice in every backward (8 MB copies for the paper's 256x256x2x16):
    its forward, gradient penalty and backward took 47 ms on 2 cores, the matmul 15. Built as
    ``EqualizedCollapse(in_channels, out_channels, (h, w))``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, C, h, w] (h, w: the kernel's) -> [B, out, 1, 1]
        weight = self.weight * self.scale
        if is_channels_last(weight):  # flattened in (h, w, C) order, a view of channels_last tensors
            weight, x = weight.permute(0, 2, 3, 1), x.permute(0, 2, 3, 1)
        return F.linear(x.flatten(1), weight.flatten(1), self.bias)[:, :, None, None]


# A 3x3 tap t of a conv over a 2x nearest-upsampled map, as taps k of a stride-2 transposed 4x4 kernel over
# the coarse map (padding 1): fine pixel 2i reads coarse rows i-1 (tap 0) and i (taps 1, 2), fine pixel
# 2i+1 reads rows i (taps 0, 1) and i+1 (tap 2); the transposed conv's tap k puts coarse row j at 2j + k - 1.
TRANSPOSED_TAPS = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # [k, t]


def upsampling_kernel(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 conv weight [out, C, 3, 3] -> the [C, out, 4, 4] kernel of the stride-2 transposed conv (padding 1)
    that computes that conv of x's 2x nearest upsampling from x itself."""
    taps = TRANSPOSED_TAPS.to(weight)
    with no_autocast(weight.device.type):  # summed in the weight's dtype; the conv casts the sum once
        return torch.einsum("kt,oits,ls->iokl", taps, weight, taps)


def upsampling_conv(x: torch.Tensor, extras: list[torch.Tensor], kernel: torch.Tensor, extra_weight: torch.Tensor,
                    bias: torch.Tensor) -> torch.Tensor:
    """The 3x3 conv (padding 1) of [x upsampled 2x (nearest), extras] without the upsampled map: x [B, C, h, w]
    through one transposed conv (`upsampling_kernel`; 16 taps per coarse pixel where the conv of the upsampled
    map takes 36), the extras [B, k_i, 2h, 2w] (harmonic coordinates, frame positions, ...) through a 3x3 conv
    of their own (`extra_weight` [out, sum k_i, 3, 3]), added in place -> [B, out, 2h, 2w]."""
    y = F.conv_transpose2d(x, kernel, bias, stride=2, padding=1)
    if extras:
        y = y.add_(F.conv2d(cat_channels(extras, is_channels_last(y)), extra_weight, padding=1))
    return y


class EqualizedUpsamplingConv2d(EqualizedConv2d):
    """An equalised 3x3 conv (padding 1) of [x upsampled 2x, extras], handed ``(x, extras)`` apart: the first conv
    of every G block after the first. The same parameters (and checkpoint keys) as the `EqualizedConv2d` of
    the joined map; `upsampling_conv` computes it. G's forward + backward: 1.16-1.21x faster than upsampling and
    convolving on 2 cores (fp32; BENCHMARKS.md, train_parts), and no upsampled copy kept for the backward."""

    def __init__(self, coarse_channels: int, extra_channels: int, out_channels: int) -> None:
        super().__init__(coarse_channels + extra_channels, out_channels, 3, padding=1)
        self.coarse_channels = coarse_channels

    def kernels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(the transposed kernel of x [C, out, 4, 4], the extras' 3x3 weight [out, k, 3, 3]), scale included."""
        weight = self.weight * self.scale
        return upsampling_kernel(weight[:, :self.coarse_channels]), weight[:, self.coarse_channels:]

    def forward(self, inputs: tuple[torch.Tensor, list[torch.Tensor]]) -> torch.Tensor:
        x, extras = inputs
        return upsampling_conv(x, extras, *self.kernels(), self.bias)

    def folded(self) -> "UpsamplingConv2d":
        """The same map with the scale and the upsampling folded into constant kernels once (inference)."""
        return UpsamplingConv2d(*self.kernels(), self.bias)


class UpsamplingConv2d(nn.Module):
    """`EqualizedUpsamplingConv2d` frozen: its kernels as constant buffers, for the inference copy of G."""

    def __init__(self, kernel: torch.Tensor, extra_weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("kernel", kernel.detach().contiguous())
        self.register_buffer("extra_weight", extra_weight.detach().clone())
        self.register_buffer("bias", bias.detach().clone())

    def forward(self, inputs: tuple[torch.Tensor, list[torch.Tensor]]) -> torch.Tensor:
        x, extras = inputs
        return upsampling_conv(x, extras, self.kernel, self.extra_weight, self.bias)


class EqualizedLinear(nn.Module):
    """Linear layer with N(0, 1) weights scaled at run time."""

    def __init__(self, in_features: int, out_features: int, slope: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = equalized_gain(in_features, slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, in] -> [B, out]
        return F.linear(x, self.weight * self.scale, self.bias)

    def folded(self) -> nn.Linear:
        """The same map as a plain linear layer with the scale multiplied in once (inference)."""
        return plain_linear(self.weight * self.scale, self.bias)


class LatentToGrid(nn.Module):
    """G's first layer: a vector [B, in] to a [B, C, h, w] grid, as a linear map with a per-channel bias.

    Magenta zero-pads the 1x1 input to (2h-1, 2w-1) and applies an (h, w) VALID conv; each output position
    then sees the input through its own kernel tap, which is exactly this linear map (same parameter
    count). With `conv_gain` the gain uses that conv's fan-in (h * w * in), so the effective learning rate
    matches too; without it, a dense layer's fan-in (in).
    """

    def __init__(self, in_features: int, channels: int, shape: tuple[int, int], conv_gain: bool = True) -> None:
        super().__init__()
        self.shape = (channels, *shape)
        self.weight = nn.Parameter(torch.randn(channels * shape[0] * shape[1], in_features))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.scale = equalized_gain(in_features * (shape[0] * shape[1] if conv_gain else 1), slope=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, in] -> [B, C, h, w]
        grid = F.linear(x, self.weight * self.scale).unflatten(1, self.shape)
        return grid + self.bias[:, None, None]

    def folded(self) -> nn.Sequential:
        """The same map as a plain linear layer (scale multiplied in, the per-channel bias repeated
        over the grid) reshaped to the grid: one matmul with its bias, nothing rescaled per call."""
        height, width = self.shape[1:]
        linear = plain_linear(self.weight * self.scale, self.bias.repeat_interleave(height * width))
        return nn.Sequential(linear, nn.Unflatten(1, self.shape))


def constant_copy(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """`layer` (built by `skip_init`: no draw from the global RNG) holding constant copies of
    `weight` and `bias`: the plain form of a layer that rescales its weights per call."""
    layer.requires_grad_(False)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def plain_linear(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Linear:
    """A constant `nn.Linear` computing `x @ weight.T + bias`."""
    out_features, in_features = weight.shape
    linear = skip_init(nn.Linear, in_features, out_features, bias=bias is not None, device=weight.device)
    return constant_copy(linear, weight, bias)


def is_channels_last(tensor: torch.Tensor) -> bool:
    """Whether a 4-d tensor is laid out channels_last (NHWC) and not also plain NCHW."""
    return (tensor.dim() == 4 and tensor.is_contiguous(memory_format=torch.channels_last)
            and not tensor.is_contiguous())


def cat_channels(maps: list[torch.Tensor], channels_last: bool) -> torch.Tensor:
    """[B, k_i, h, w] maps joined along channels, channels_last where asked. ``torch.cat`` returns NCHW as soon as
    its inputs' layouts differ, as expanded coordinate maps beside a channels_last map do, and the
    channels_last conv that reads the join then transposes all of it (58 channels at 32x256, batch 16: 20 ms
    a call on 2 cores: 0.51 s of 8.3 s in a profile of 8 tiny training steps at that stage)."""
    if channels_last:
        return torch.cat([m.permute(0, 2, 3, 1) for m in maps], dim=3).permute(0, 3, 1, 2)
    return torch.cat(maps, dim=1)


class PixelNorm(nn.Module):
    """Scale every position's feature vector to unit mean square, which keeps G's magnitudes from escalating."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, C, ...] -> same shape, normalised over C
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


class MinibatchStddev(nn.Module):
    """Append one constant channel holding the batch's mean feature stddev, so D can see a lack of variety.

    Whole batch as one group, population variance (Magenta's choice).
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, C, H, W] -> [B, C + 1, H, W]
        variance = x.var(dim=0, unbiased=False)  # [C, H, W]
        stddev = torch.sqrt(variance + self.eps).mean()  # scalar
        return cat_channels([x, stddev.expand(x.shape[0], 1, *x.shape[2:])], is_channels_last(x))


def _spectral_projection(in_features: int, out_features: int) -> nn.Linear:
    """A bias-free 1x1 conv written as a per-position linear map (no cuDNN conv workspace in double backward)."""
    projection = nn.Linear(in_features, out_features, bias=False)
    nn.init.xavier_uniform_(projection.weight)
    return spectral_norm(projection, n_power_iterations=1)


def _max_pool_2x2(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """2x2 max pool of row-major positions: [B, H*W, E] -> [B, H*W/4, E]."""
    grid = tokens.unflatten(1, (height // 2, 2, width // 2, 2))  # [B, H/2, 2, W/2, 2, E]
    return grid.amax(dim=(2, 4)).flatten(1, 2)


class SelfAttention2d(nn.Module):
    """SAGAN self-attention with 2x2 max-pooled keys and values (the BigGAN variant), `x + gamma * o`.

    gamma starts at 0, so a freshly added attention layer is the identity. The four 1x1 convs are
    bias-free and spectrally normalised; nothing else in the networks is. They are applied as linear
    maps over positions: the same maths, and on CUDA the fp32 double backward of cuDNN 1x1 convs
    reserved ~15 GB of workspace at 32x256 (batch 2), against ~1.6 GB this way.

    Two computations of the same attention:
    - fused (default): `scaled_dot_product_attention` never materialises the [B, H*W, H*W/4] score matrix.
      Query and key are zero-padded from C/8 to the value's C/2 channels, because the flash kernels (CPU
      and CUDA) need equal widths; otherwise SDPA silently falls back to its materialising math path.
      (Splitting the value into four C/8-wide heads instead was ~1.5-2x slower on CPU: four times the exps.)
    - explicit (`double_backward=True`): matmul + softmax. The fused kernels' backward is not itself
      differentiable (torch 2.13 CPU: "derivative for aten::_scaled_dot_product_flash_attention_for_cpu_backward
      is not implemented"; CUDA: the same for the efficient and cuDNN kernels), so a gradient penalty
      (create_graph=True) must use this path.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 8 or channels % 8:
            raise LayerError(f"SelfAttention2d: channels must be a positive multiple of 8, got {channels}")
        self.query = _spectral_projection(channels, channels // 8)
        self.key = _spectral_projection(channels, channels // 8)
        self.value = _spectral_projection(channels, channels // 2)
        self.output = _spectral_projection(channels // 2, channels)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, double_backward: bool = False) -> torch.Tensor:
        # x: [B, C, H, W] with even H and W
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise LayerError(f"SelfAttention2d: feature map {h}x{w} must have even sides for the 2x2 key pooling")
        tokens = x.flatten(2).transpose(1, 2)  # [B, HW, C]
        query = self.query(tokens)  # [B, HW, C/8]
        key = _max_pool_2x2(self.key(tokens), h, w)  # [B, HW/4, C/8]
        value = _max_pool_2x2(self.value(tokens), h, w)  # [B, HW/4, C/2]
        attend = _attend_explicit if double_backward else _attend_fused
        attended = self.output(attend(query, key, value))  # [B, HW, C]
        return x + self.gamma * attended.transpose(1, 2).reshape(b, c, h, w)


def _attend_explicit(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Unscaled dot-product attention through differentiable ops; softmax in fp32 even under bf16 autocast."""
    scores = query @ key.transpose(1, 2)  # [B, L, S]
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32)  # [B, L, S]
    return weights.to(value.dtype) @ value  # [B, L, C/2]


def _attend_fused(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Same as `_attend_explicit` through SDPA, with query and key zero-padded to the value's width.

    Zero features add nothing to the dot products, so the result is unchanged.
    """
    width = value.shape[-1]
    query = F.pad(query, (0, width - query.shape[-1])).unsqueeze(1)  # [B, 1, L, C/2]
    key = F.pad(key, (0, width - key.shape[-1])).unsqueeze(1)  # [B, 1, S, C/2]
    attended = F.scaled_dot_product_attention(query, key, value.unsqueeze(1), scale=1.0)  # [B, 1, L, C/2]
    return attended.squeeze(1)
