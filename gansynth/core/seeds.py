"""Training's random numbers as pure functions of (run seed, what they are for, where in the run).

Each training step draws its latents, the generator's pitches and the gradient penalty's mixing
weights from a generator seeded by (seed, rank, images seen); the real notes come in an order
seeded by (seed, pass over the data). Nothing depends on how many numbers a global generator has
handed out before, so ranks draw different numbers, the same seed and world size repeat a run, and
a run resumed from a checkpoint draws what the uninterrupted run drew: the image count in the
checkpoint is all the state the streams need.
"""
from __future__ import annotations

import numpy as np
import torch

DATA_ORDER = 0  # stream tags: the data order and the step noise never share a seed
STEP_NOISE = 1
PAIRING = 2  # which note of the same instrument partners each note (data.instrument_pairs)


def derive_seed(*keys: int) -> int:
    """A 64-bit seed hashed from non-negative ints; unlike ``seed + rank``, neighbouring keys
    give unrelated streams."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0])


def seeded_generator(device: torch.device | str, *keys: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(derive_seed(*keys))
