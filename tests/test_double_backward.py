"""The critics' convolution and leaky ReLU (gansynth.core.double_backward) against PyTorch's own, through the
gradient penalty's double backward: the same numbers, in float64."""

import pytest
import torch
import torch.nn.functional as F

from gansynth.core.double_backward import LeakyReLU, conv2d


def critic_gradients(x, weights, biases, paddings, conv, leaky):
    """(input gradient, weight gradients of a WGAN-GP penalty) of a small critic: conv, leaky ReLU, ... (the
    biases move only where the leaky ReLUs bend, so the penalty's gradient for them is zero)."""
    x = x.clone().requires_grad_(True)
    h = x
    for weight, bias, padding in zip(weights, biases, paddings):
        h = leaky(conv(h, weight, bias, padding))
    (grad,) = torch.autograd.grad(h.sum(), x, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
    return grad.detach(), torch.autograd.grad(penalty, weights)


@pytest.mark.parametrize("paddings", [(1, 1, 0), ((1, 0), (1, 0), 0)])
def test_the_penalty_reaches_every_weight_as_with_pytorchs_convolution(paddings):
    torch.manual_seed(0)
    shapes = [(6, 3), (5, 6), (2, 5)]
    kernels = [(3, 3), (3, 3), (4, 8)] if paddings[0] == 1 else [(3, 1), (3, 1), (4, 8)]
    weights = [torch.randn(o, i, *k, dtype=torch.float64, requires_grad=True) for (o, i), k in zip(shapes, kernels)]
    biases = [torch.randn(o, dtype=torch.float64, requires_grad=True) for o, _ in shapes]
    x = torch.randn(4, 3, 4, 8, dtype=torch.float64)
    ours = critic_gradients(x, weights, biases, paddings, conv2d, LeakyReLU(0.2))
    theirs = critic_gradients(x, weights, biases, paddings, lambda h, w, b, p: F.conv2d(h, w, b, padding=p),
                              lambda h: F.leaky_relu(h, 0.2))
    torch.testing.assert_close(ours[0], theirs[0], rtol=1e-12, atol=1e-12)
    for a, b in zip(ours[1], theirs[1]):
        assert b.abs().max() > 1e-3  # the penalty does depend on every weight
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_first_order_gradients_match_pytorchs_in_channels_last():
    torch.manual_seed(1)
    x = torch.randn(2, 8, 6, 10).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    weight = torch.randn(4, 8, 3, 3).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    bias = torch.randn(4, requires_grad=True)
    out_grad = torch.randn(2, 4, 6, 10)
    ours = torch.autograd.grad((conv2d(x, weight, bias, 1) * out_grad).sum(), [x, weight, bias])
    theirs = torch.autograd.grad((F.conv2d(x, weight, bias, padding=1) * out_grad).sum(), [x, weight, bias])
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_under_bf16_autocast_the_convolution_runs_in_bf16_as_pytorchs_does():
    torch.manual_seed(2)
    x, weight, bias = torch.randn(2, 16, 8, 8), torch.randn(8, 16, 3, 3), torch.randn(8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, theirs = conv2d(x, weight, bias, 1), F.conv2d(x, weight, bias, padding=1)
    assert ours.dtype == theirs.dtype == torch.bfloat16
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    exact = F.conv2d(x, weight, bias, padding=1)
    assert (ours.float() - exact).abs().max() / exact.abs().max() < 2e-2  # bf16, not fp32


def test_leaky_relu_needs_a_positive_slope():
    with pytest.raises(ValueError, match="slope > 0"):
        LeakyReLU(0.0)
