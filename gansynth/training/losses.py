"""The GAN's losses, apart from the LightningModule that runs them: WGAN-GP with drift, an auxiliary
pitch classifier, the lazy gradient penalty, MSGAN's mode-seeking term, the harmonic phase pull and the
instrument balance.

``training_step`` calls these in a fixed order; every random number they take comes from the
step's generator, so the order of the calls is part of a run's reproducibility.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from gansynth.core.errors import GANSynthError


class SettingError(GANSynthError):
    """A model setting outside the range its formula needs."""


@dataclass(frozen=True)
class LossSettings:
    """``model.loss``, typed. The defaults are only for keys that older checkpoints do not have."""

    gp_weight: float
    gp_target: float
    drift: float
    aux_weight_g: float
    aux_weight_d: float
    gp_every: int = 1            # lazy penalty: every k-th critic step, weighted k×
    projection: bool = False     # the pitch head's logit for the asked-for pitch joins the critic score
    mode_seeking: float = 0.0    # weight of MSGAN's term
    harmonic_phase: float = 0.0  # weight of the pull of G's IF on its own spectral peaks to the comb's IF
    critic_floor_db: float | None = None  # the critics see magnitudes this far below a note's peak as flat
    gp_autocast: bool = False    # the penalty's critic pass in the trainer's autocast dtype (bf16-mixed) instead of fp32

    def __post_init__(self) -> None:
        if not self.mode_seeking >= 0:
            raise SettingError(f"model.loss.mode_seeking must be >= 0, got {self.mode_seeking}")
        if not self.harmonic_phase >= 0:
            raise SettingError(f"model.loss.harmonic_phase must be >= 0, got {self.harmonic_phase}")
        if self.critic_floor_db is not None and not self.critic_floor_db > 0:
            raise SettingError(f"model.loss.critic_floor_db must be > 0 dB or null, got {self.critic_floor_db}")
        if not isinstance(self.gp_autocast, bool):
            raise SettingError(f"model.loss.gp_autocast must be true or false, got {self.gp_autocast!r}")
        if not (isinstance(self.gp_every, int) and self.gp_every >= 1):
            raise SettingError(f"model.loss.gp_every must be an integer >= 1, got {self.gp_every}")


class GeneratorLoss(NamedTuple):
    total: torch.Tensor
    adversarial: torch.Tensor
    pitch: torch.Tensor


class CriticLoss(NamedTuple):
    total: torch.Tensor
    adversarial: torch.Tensor
    pitch: torch.Tensor


def generator_loss(score: torch.Tensor, logits: torch.Tensor, pitches: torch.Tensor, settings: LossSettings,
                   fake: torch.Tensor, z: torch.Tensor) -> GeneratorLoss:
    """Fool the critic, make the pitch head see the asked-for pitch, and (with ``mode_seeking``) make
    two latents of one pitch give different notes."""
    adversarial = -score.mean()
    pitch = F.cross_entropy(logits.float(), pitches)
    total = adversarial + settings.aux_weight_g * pitch
    if settings.mode_seeking:
        total = total + settings.mode_seeking * mode_seeking_loss(fake, z)
    return GeneratorLoss(total, adversarial, pitch)


def critic_loss(real_score: torch.Tensor, fake_score: torch.Tensor, real_logits: torch.Tensor,
                labels: torch.Tensor, settings: LossSettings) -> CriticLoss:
    """Wasserstein critic loss + drift (keeps real scores near 0) + pitch classification of the reals,
    without the gradient penalty (see ``lazy_gradient_penalty``)."""
    adversarial = fake_score.mean() - real_score.mean()
    pitch = F.cross_entropy(real_logits.float(), labels)
    drift = (real_score.float() ** 2).mean()
    total = adversarial + settings.drift * drift + settings.aux_weight_d * pitch
    return CriticLoss(total, adversarial, pitch)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, target: float,
                     generator: torch.Generator, autocast: bool = False) -> torch.Tensor:
    """Two-sided WGAN-GP on random interpolates, by default in fp32 (``autocast``: in the trainer's autocast
    dtype, e.g. bf16: 1.4-1.8x faster paper steps, BENCHMARKS.md, train_levers; its effect on learning is in
    docs/RESULTS.md). The slope is taken per score: a critic that scores packs of notes has one slope per
    pack."""
    u = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    mixed = (real.float() + u * (fake.float() - real.float())).requires_grad_(True)
    with contextlib.nullcontext() if autocast else torch.autocast(device_type=real.device.type, enabled=False):
        score = critic(mixed)
    (grad,) = torch.autograd.grad(score.float().sum(), mixed, create_graph=True)
    slope = grad.float().reshape(score.shape[0], -1).norm(dim=1)
    return ((slope / target - 1.0) ** 2).mean()


def penalty_due(images_seen: int, batch: int, every: int) -> bool:
    """Whether this critic step takes the lazy penalty (StyleGAN2): every ``every``-th step by image count."""
    return (images_seen // batch) % every == 0


def lazy_gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                          images_seen: int, settings: LossSettings, generator: torch.Generator,
                          view: Callable[[torch.Tensor], torch.Tensor] | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(term to add to the critic loss, the penalty itself) on the steps that take it, weighted
    ``gp_every``× so its average strength stays ``gp_weight``; None on the others (no random draw, and
    ``view``, what the critic sees of an image such as its level curves, is not computed)."""
    if not penalty_due(images_seen, real.shape[0], settings.gp_every):
        return None
    if view is not None:
        real, fake = view(real), view(fake)
    gp = gradient_penalty(critic, real, fake, settings.gp_target, generator, settings.gp_autocast)
    return settings.gp_every * settings.gp_weight * gp, gp


def harmonic_phase_loss(fake: torch.Tensor, comb_if: torch.Tensor, loud: float) -> torch.Tensor:
    """Mean |IF - comb IF| over the fake's own spectral peaks: bands louder than both neighbours and
    within ``loud`` (normalised log-magnitude) of the note's loudest band, where a harmonic note's phase
    advances as the ideal comb's does. Real notes sit 0.016 (median, normalised units) from the comb on
    their peaks within 20 dB; the shipped G's 0.14, which smears its harmonics (docs/RESULTS.md).

    fake [B, C, h, w] normalised ([logmag, IF] per audio channel); comb_if [B, 1, h, w] normalised."""
    magnitude, inst_freq = fake[:, 0::2].detach().float(), fake[:, 1::2].float()
    below = F.pad(magnitude, (1, 1), value=-float("inf"))
    peak = ((magnitude >= below[..., :-2]) & (magnitude >= below[..., 2:])
            & (magnitude > magnitude.amax(dim=(-2, -1), keepdim=True) - loud))
    error = (inst_freq - comb_if.float()).abs()
    return (error * peak).sum() / peak.sum().clamp_min(1)


def instrument_balance_loss(logits: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """KL(share || the batch's mean instrument probabilities): how far the mix of instruments an
    instrument classifier hears in G's notes [B, I] lies from the data's shares [I]. An instrument G
    leaves out costs; a note the classifier cannot place costs nothing (unlike an auxiliary classifier's
    loss, this does not reward notes for being easy to classify)."""
    mix = logits.float().softmax(1).mean(0)
    return (share * (share.clamp_min(1e-12).log() - mix.clamp_min(1e-12).log())).sum()


def mode_seeking_loss(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """MSGAN's term (Mao et al. 2019) against a conditional G that ignores its latent: two notes
    of one pitch should differ in proportion to their latents. Pairs are the batch's two halves."""
    h = fake.shape[0] // 2
    image_gap = (fake[:h] - fake[h: 2 * h]).float().abs().mean(dim=(1, 2, 3))
    latent_gap = (z[:h] - z[h: 2 * h]).abs().mean(dim=1)
    return (1.0 / (image_gap / latent_gap + 1e-5)).mean()
