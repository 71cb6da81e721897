"""A frozen inference copy of G: what `Synth.generate` runs instead of the training modules.

Training's layers rescale their weights on every call (equalised LR: `weight * scale`; the spectral
norm of attention: `W / sigma`) so that the optimiser sees the raw parameters; for inference those
products are constants. The copy folds them into plain `nn.Conv2d`/`nn.Linear` weights once and keeps
the convolutions channels_last (oneDNN's fast layout on CPU, the tensor cores' on CUDA). The original
generator is left untouched, so training can go on updating it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from gansynth.core.layers import EqualizedConv2d, EqualizedLinear, LatentToGrid, plain_linear
from gansynth.core.networks import Generator

FOLDABLE = (EqualizedConv2d, EqualizedLinear, LatentToGrid)


def frozen_generator(generator: Generator) -> Generator:
    """A detached eval-mode copy of `generator` with every rescaling folded in, channels_last."""
    frozen = copy.deepcopy(generator).eval().requires_grad_(False)
    for path, module in list(frozen.named_modules()):
        plain = _folded(module)
        if plain is not None:
            parent, _, name = path.rpartition(".")
            setattr(frozen.get_submodule(parent), name, plain)
    return frozen.to(memory_format=torch.channels_last)


def _folded(module: nn.Module) -> nn.Module | None:
    """The plain layer computing what `module` computes now, or None when it rescales nothing."""
    if isinstance(module, FOLDABLE):
        return module.folded()
    if isinstance(module, nn.Linear) and parametrize.is_parametrized(module, "weight"):
        return plain_linear(module.weight, module.bias)  # spectral norm: eval mode's W / sigma, once
    return None
