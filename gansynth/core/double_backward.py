"""A convolution and a leaky ReLU whose backward passes are built from the fast forward kernels, so that the
gradient penalty's double backward (the critic's loss depends on its input gradient) runs on them too.

PyTorch's own double backward of a convolution computes the weight's second-order term as one convolution
with the batch as channels and the whole feature map as its kernel (e.g. a 128x1024 kernel over [32, 4, 128,
1024] at the paper's top stage): oneDNN runs that shape far below its speed. Here the input gradient is a
transposed convolution of the output gradient, an ordinary differentiable op, so the penalty's backward
reaches the weights through a transposed convolution's regular weight-gradient kernel. The leaky ReLU's
own derivative w.r.t. its input is zero almost everywhere; autograd still fills a zero tensor for it in every
double backward, which this version skips. Both are exact (tests compare them with PyTorch's in float64);
they make the penalty's step through the paper critic's top block at 128x1024 1.6x faster (BENCHMARKS.md,
double_backward).
Under autocast the convolution runs in the autocast dtype, as ``F.conv2d`` would.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn


def _autocast_on(device: str) -> bool:
    return torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.get_autocast_dtype(x.device.type) if _autocast_on(x.device.type) else x.dtype


def no_autocast(device: str):
    """What runs inside runs in the dtypes it is given (the casts are made explicitly)."""
    return torch.autocast(device, enabled=False) if torch.amp.is_autocast_available(device) else contextlib.nullcontext()


def _pair(padding: int | tuple[int, int]) -> list[int]:
    return list(padding) if isinstance(padding, (tuple, list)) else [padding, padding]


class _Conv2d(torch.autograd.Function):
    """Stride 1, no dilation, no groups: every convolution a critic trains (G's first block convs upsample in a
    transposed conv of their own, `layers.EqualizedUpsamplingConv2d`; nothing differentiates G twice)."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        dtype = _compute_dtype(x)
        x = x.to(dtype)  # only the weight gradient reads it, under no_grad: the cast copy is enough
        ctx.save_for_backward(x, weight)  # the original weight: a double backward must reach the parameter
        ctx.dtype, ctx.padding, ctx.has_bias = dtype, _pair(padding), bias is not None
        with no_autocast(x.device.type):
            return F.conv2d(x, weight.to(dtype), None if bias is None else bias.to(dtype), padding=padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.to(ctx.dtype)
        grad_x = grad_weight = grad_bias = None
        with no_autocast(x.device.type):
            if ctx.needs_input_grad[0]:  # differentiable: the penalty's backward goes through here
                grad_x = F.conv_transpose2d(grad, weight.to(ctx.dtype), padding=ctx.padding)
                missing = (x.shape[-2] - grad_x.shape[-2], x.shape[-1] - grad_x.shape[-1])
                if any(missing):  # rows / columns a padded conv's last window never reached
                    grad_x = F.pad(grad_x, (0, missing[1], 0, missing[0]))
            with torch.no_grad():  # no loss depends on a weight gradient
                if ctx.needs_input_grad[1]:
                    grad_weight = torch.ops.aten.convolution_backward(
                        grad, x, weight.to(ctx.dtype), None, [1, 1], ctx.padding, [1, 1], False,
                        [0, 0], 1, [False, True, False])[1]
                if ctx.has_bias and ctx.needs_input_grad[2]:
                    grad_bias = grad.sum((0, 2, 3))
        return grad_x, grad_weight, grad_bias, None


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           padding: int | tuple[int, int] = 0) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1) with a fast double backward."""
    return _Conv2d.apply(x, weight, bias, padding)


class _LeakyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, slope):
        y = F.leaky_relu(x, slope)
        ctx.save_for_backward(y)  # y has x's sign (slope > 0)
        ctx.slope = slope
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return torch.ops.aten.leaky_relu_backward(grad, y.detach(), ctx.slope, False), None


class LeakyReLU(nn.Module):
    """``nn.LeakyReLU`` (slope > 0) for the critics, with a double backward that fills no zeros."""

    def __init__(self, slope: float) -> None:
        super().__init__()
        if not slope > 0:
            raise ValueError(f"LeakyReLU needs a slope > 0 (the output's sign is the input's), got {slope}")
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LeakyReLU.apply(x, self.slope)

    def extra_repr(self) -> str:
        return f"slope={self.slope}"
