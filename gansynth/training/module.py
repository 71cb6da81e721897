"""The LightningModule: a progressive WGAN-GP with an auxiliary pitch classifier.

Training runs each stage at its own resolution (the usual PGGAN layout): G emits the current
resolution and the real images are average-pooled to it, blended across a fade-in exactly like
the fakes. The schedule is driven by ``images_seen`` (a buffer, so it lives in the checkpoint),
never by ``trainer.global_step``, which counts both optimizers' steps. So are the random numbers
and the data order (``gansynth.core.seeds``): a resumed run repeats the uninterrupted one exactly.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from gansynth.core.augment import augment, check_policy
from gansynth.core.errors import GANSynthError
from gansynth.core.networks import Discriminator, Generator, pool_to, upsample, with_category
from gansynth.core.envelope_critic import EnvelopeCritic
from gansynth.core.pair_critic import HarmonicPairCritic
from gansynth.core.profile_critic import HarmonicProfileCritic
from gansynth.core.pitch import PitchVocab
from gansynth.core.schedule import Schedule, per_stage
from gansynth.core.seeds import STEP_NOISE, seeded_generator
from gansynth.core.spectral import SpecgramCodec, saved_mel_matrix
from gansynth.core.synth import CheckpointError, Synth
from gansynth.training.losses import (LossSettings, SettingError, critic_loss, generator_loss,
                                      harmonic_phase_loss, instrument_balance_loss, lazy_gradient_penalty)


@dataclass(frozen=True)
class OptimSettings:
    """``model.optim``, typed: one Adam per network. The defaults are for keys older checkpoints lack."""

    lr: tuple[float, ...]  # one per stage (``gansynth.core.schedule.per_stage``)
    betas: tuple[float, float]
    eps: float = 1e-8
    reset_on_stage: bool = True  # forget Adam's moments at each stage boundary, as the original did

    def adam_arguments(self, stage: int) -> dict:
        # fused: one kernel updates every parameter (CPU and CUDA), where Adam's default loops over them on a CPU:
        # the paper's G and D updated 1.7-2.0x faster on 2 cores, ~20 ms less a step (BENCHMARKS.md, train_parts_adam)
        return dict(lr=self.lr[stage], betas=self.betas, eps=self.eps, fused=True)


class TrainingDiverged(GANSynthError):
    """A loss became NaN or inf; the last checkpoint on disk is the last good state."""


def fade_reals(images: torch.Tensor, size: tuple[int, int], alpha: float, mode: str = "nearest") -> torch.Tensor:
    """Reals at the current stage: pooled to ``size``, blended with the previous resolution
    (pooled by 2 and upsampled as G upsamples, ``mode``) by ``1 - alpha``, the same low-pass the fakes
    go through."""
    x = pool_to(images, size)
    if alpha < 1.0:
        coarse = upsample(F.avg_pool2d(x, 2), mode)
        x = alpha * x + (1.0 - alpha) * coarse
    return x


FLOOR_LEAK = 0.1  # below the critics' floor a magnitude still moves their view this much, so G is never stuck there


def floor_quiet_magnitudes(x: torch.Tensor, floor_db: float, units_per_db: float) -> torch.Tensor:
    """Normalised images [B, 2 ch, h, w] with each magnitude more than ``floor_db`` below its note's loudest
    pixel (per audio channel) pulled up to that floor, keeping FLOOR_LEAK of its distance below it.

    In a log spectrogram every pixel weighs the same, and most of a clean note's pixels are silence far
    under its peak: on the third dataset 77 % of the real pixels lie over 40 dB down, and so does 72 % of the
    squared difference between generated and real images (58 % over 50 dB down). A critic held to a gradient
    norm of 1 spends its judgement where nobody hears. Real and fake are floored alike."""
    magnitude = x[:, 0::2]
    floor = magnitude.detach().amax((-2, -1), keepdim=True) - units_per_db * floor_db
    floored = torch.where(magnitude < floor, floor + FLOOR_LEAK * (magnitude - floor), magnitude)
    return torch.stack([floored, x[:, 1::2]], dim=2).flatten(1, 2)


class GANSynth(pl.LightningModule):
    """Generator, discriminator, EMA generator and codec, with every hyperparameter primitive so
    checkpoints load with ``weights_only=True`` and rendering needs nothing but the checkpoint.
    ``seed`` (non-negative) seeds the training steps' random numbers, per rank. With
    ``instrument_pairs`` (``data.instrument_pairs``: each batch is pairs of one instrument at two
    pitches) G plays each pair's two pitches from one latent and the critic scores pairs (a packing D,
    or the ``HarmonicPairCritic`` of ``pair_critic_harmonics`` harmonics added to the sum of the pair's
    per-note scores), so a latent that turns into another instrument from one pitch to the next can be
    told apart from a real instrument. With pairs, ``instrument_counts`` (notes per instrument, from the
    data scan) and ``instrument_balance`` > 0, a classifier learns the real notes' instruments from their
    harmonic grids, and G pays ``instrument_balance`` × the distance of the mix it hears in G's batch from
    the data's shares (``losses.instrument_balance_loss``). With pairs and ``instrument_projection``, G's
    latent categories (``network.latent_categories``) are the data's instruments: the critics (main and pair)
    are told each note's instrument (the reals' from their names, the fakes' from their latent's category), and the
    fakes of a step take the real batch's instruments, as they take its pitches; ``instrument_names`` (by index)
    go into the checkpoint, so a render can ask for an instrument by name. With ``instrument_projection`` and
    ``instrument_aux`` > 0, G also pays ``instrument_aux`` × the cross-entropy of that classifier (learnt on
    real notes only) on its fakes against their latent's category: an auxiliary classifier (Odena et al.
    2017) for the instrument, a direct per-note push for category k to sound like instrument k."""

    def __init__(
        self,
        codec: dict,
        pitch: dict,
        network: dict,
        schedule: dict,
        loss: dict,
        optim: dict,
        ema_decay: float = 0.999,
        ema_rampup: float | None = None,
        augment: list | tuple = (),
        seed: int = 0,
        instrument_pairs: bool = False,
        pair_critic_harmonics: int = 0,
        envelope_critic: float = 0.0,
        envelope_bands: int = 1,
        decibel_instruments: bool = False,
        profile_critic: float = 0.0,
        instrument_balance: float = 0.0,
        instrument_counts: list | tuple = (),
        instrument_projection: bool = False,
        instrument_names: list | tuple = (),
        instrument_aux: float = 0.0,
        channels_last: bool = True,
    ):
        super().__init__()
        if instrument_projection:  # saved with the hyperparameters, so a render builds the same G
            if not instrument_pairs:
                raise SettingError("model.instrument_projection needs data.instrument_pairs=true (instruments from "
                                   "the file names)")
            if len(instrument_counts) < 2:
                raise SettingError("model.instrument_projection needs at least 2 instruments in the data, got "
                                   f"{len(instrument_counts)}")
            if network["latent_categories"] not in (0, len(instrument_counts)):
                raise SettingError(f"model.instrument_projection makes the data's {len(instrument_counts)} instruments "
                                   f"G's latent categories; model.network.latent_categories must be 0 or "
                                   f"{len(instrument_counts)}, got {network['latent_categories']}")
            network = dict(network, latent_categories=len(instrument_counts))
        if not isinstance(channels_last, bool):
            raise SettingError(f"model.channels_last must be true or false, got {channels_last!r}")
        if not (ema_rampup is None or ema_rampup > 0):
            raise SettingError(f"model.ema_rampup must be > 0 or null (a fixed decay), got {ema_rampup}")
        self.loss_settings = LossSettings(**loss)
        try:
            self.augment_policy = check_policy(augment)
        except ValueError as error:
            raise SettingError(f"model.augment: {error}") from None
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.codec = SpecgramCodec.from_dict(codec)
        self.vocab = PitchVocab(pitch["low"], pitch["high"])
        self.schedule = Schedule(**schedule)
        rates = per_stage("model.optim.lr", optim["lr"], self.schedule.num_stages, float)
        self.optim_settings = OptimSettings(**dict(optim, lr=tuple(rates), betas=tuple(optim["betas"])))
        net_args = dict(network, start_shape=tuple(network["start_shape"]),
                        attention_areas=tuple(network["attention_areas"]))
        # The magnitude channel is log mel power or log linear magnitude: its normalised units per dB.
        per_neper = float(self.codec.channel_scale[0])
        self.magnitude_units_per_db = per_neper * math.log(10.0) / (10.0 if self.codec.mel else 20.0)
        self.generator = Generator.for_codec(self.codec, self.vocab, **net_args)
        instrument_classes = len(instrument_counts) if instrument_projection else 0  # the critics' projection heads
        self.discriminator = Discriminator(**net_args, image_shape=tuple(self.codec.image_shape),
                                           num_pitches=self.vocab.size, magnitude_scale=per_neper,
                                           instrument_classes=instrument_classes)
        self.ema_generator = copy.deepcopy(self.generator).requires_grad_(False).eval()
        pack = self.discriminator.critic_pack
        if any(size % pack for size in self.schedule.batch_sizes):
            raise SettingError(f"model.schedule.batch_sizes {list(self.schedule.batch_sizes)} must split into "
                               f"packs of model.network.critic_pack={pack}")
        if pair_critic_harmonics and not instrument_pairs:
            raise SettingError("model.pair_critic_harmonics needs data.instrument_pairs=true (real pairs of one "
                               "instrument at two pitches)")
        if instrument_pairs and pack != 2 and not pair_critic_harmonics:
            raise SettingError(f"data.instrument_pairs needs a critic of pairs: model.network.critic_pack=2 "
                               f"(got {pack}) or model.pair_critic_harmonics > 0")
        if instrument_pairs and pack not in (1, 2):
            raise SettingError(f"data.instrument_pairs needs model.network.critic_pack 1 or 2, got {pack}")
        self.pair_critic = None
        widths = [self.generator.resolution(b)[1] for b in range(1, self.generator.num_blocks + 1)]
        if pair_critic_harmonics:
            self.pair_critic = HarmonicPairCritic(self.codec, self.vocab, widths, pair_critic_harmonics,
                                                  instrument_classes)
        for key, weight in (("envelope_critic", envelope_critic), ("profile_critic", profile_critic)):
            if not weight >= 0:
                raise SettingError(f"model.{key} must be >= 0 (its score per dB; 0: none), got {weight}")
        notes_per_score = 2 if instrument_pairs else pack  # the decibel critics score what the main critic does
        first_columns = self.generator.resolution(1)[1]  # the fewest mel columns a stage has
        if not (isinstance(envelope_bands, int) and envelope_bands >= 1 and first_columns % envelope_bands == 0):
            raise SettingError(f"model.envelope_bands must be a positive int that divides the first stage's "
                               f"{first_columns} mel columns, got {envelope_bands}")
        if decibel_instruments and not ((envelope_critic or profile_critic) and instrument_projection):
            raise SettingError("model.decibel_instruments needs model.envelope_critic or model.profile_critic > 0 and "
                               "model.instrument_projection=true (the instruments they are told)")
        told_classes = instrument_classes if decibel_instruments else 0  # the decibel critics' projection heads
        self.envelope_critic = None
        if envelope_critic:
            self.envelope_critic = EnvelopeCritic(self.codec.audio_channels, per_neper, self.magnitude_units_per_db,
                                                  notes_per_score=notes_per_score, bands=envelope_bands,
                                                  instrument_classes=told_classes)
        self.profile_critic = None
        if profile_critic:
            self.profile_critic = HarmonicProfileCritic(self.codec, self.vocab, widths, self.magnitude_units_per_db,
                                                        notes_per_score=notes_per_score, instrument_classes=told_classes)
        self.instrument_classifier = None
        for key, weight in (("instrument_balance", instrument_balance), ("instrument_aux", instrument_aux)):
            if not weight >= 0:
                raise SettingError(f"model.{key} must be >= 0 (0: none), got {weight}")
        if instrument_aux and not instrument_projection:
            raise SettingError("model.instrument_aux needs model.instrument_projection=true (a fake's instrument "
                               "is its latent's category)")
        if instrument_balance or instrument_aux:
            if not instrument_pairs or len(instrument_counts) < 2:
                raise SettingError("model.instrument_balance needs data.instrument_pairs=true (instruments from "
                                   f"the file names) and at least 2 instruments, got {len(instrument_counts)}")
            self.instrument_classifier = HarmonicProfileCritic(self.codec, self.vocab, widths,
                                                               self.magnitude_units_per_db,
                                                               outputs=len(instrument_counts))
            counts = torch.tensor(instrument_counts, dtype=torch.float)
            self.register_buffer("instrument_share", counts / counts.sum(), persistent=False)
        if self.loss_settings.harmonic_phase and not self.generator.comb_if:
            raise SettingError("model.loss.harmonic_phase needs model.network.comb_if=true (the comb's IF images)")
        self.loud_peaks = math.log(100.0) * per_neper  # 20 dB, normalised log-magnitude
        self.vocab.check_counts(pitch["counts"])
        counts = torch.tensor(pitch["counts"], dtype=torch.float)
        self.register_buffer("pitch_weights", counts / counts.sum(), persistent=False)
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))
        self._optim_stage: int | None = None  # the stage whose Adam moments the optimizers hold
        self._clock: tuple[float, int] | None = None

    # ----------------------------------------------------------------- schedule
    @property
    def stage(self) -> int:
        return self.schedule.stage(int(self.images_seen))

    def blocks_and_alpha(self) -> tuple[int, float]:
        return self.schedule.blocks_and_alpha(int(self.images_seen))

    def current_size(self, blocks: int) -> tuple[int, int]:
        return self.generator.resolution(blocks)

    def batch_size_at(self, images_seen: int) -> int:
        return self.schedule.batch_size(self.schedule.stage(images_seen))

    def _enter_stage(self, stage: int) -> None:
        """At a stage boundary, forget Adam's moments as the original did (``optim.reset_on_stage``),
        and take the stage's learning rate."""
        if self.optim_settings.reset_on_stage:
            for opt in self.optimizers():
                opt.optimizer.state.clear()
        self._apply_optim_settings(stage)
        self._optim_stage = stage

    def _apply_optim_settings(self, stage: int) -> None:
        for opt in self.optimizers():
            for group in opt.optimizer.param_groups:
                group.update(self.optim_settings.adam_arguments(stage))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """A checkpoint taken on a stage boundary holds the old stage's Adam moments; saying so
        lets the resumed run's first step reset them, as the uninterrupted run's does."""
        checkpoint["optim_stage"] = self._optim_stage

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore which stage the Adam moments belong to (older checkpoints do not say: take the stage
        of their image count, so no reset on resume). A resume builds the codec from the run's config,
        not the checkpoint's: weights trained on one mel matrix would silently continue on the other,
        so that is refused."""
        fallback = self.schedule.stage(int(checkpoint["state_dict"]["images_seen"]))
        self._optim_stage = checkpoint.get("optim_stage", fallback)
        saved = saved_mel_matrix(checkpoint.get("hyper_parameters", {}).get("codec", {}))
        if self.codec.mel and saved != self.codec.mel_matrix:
            raise CheckpointError(f"codec.mel_matrix: the checkpoint was trained with {saved!r}, this run "
                                  f"asks for {self.codec.mel_matrix!r}; resume with codec.mel_matrix={saved}")

    def on_fit_start(self) -> None:
        """Point the DataModule at this model's image count and batch-size schedule (the count is
        read when each epoch's loader is built, after a resume has restored it)."""
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "follow"):
            datamodule.follow(lambda: int(self.images_seen), self.batch_size_at)

    def on_train_start(self) -> None:
        """Also apply ``model.optim`` to the optimizers: a resume restores Adam's state with the
        checkpoint's learning rate and betas, which would silently override the command line's."""
        self._clock = (time.perf_counter(), int(self.images_seen))
        self._apply_optim_settings(self.stage)

    # ----------------------------------------------------------------- training
    def sample_pitches(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Generator labels follow the training set's own pitch histogram."""
        return torch.multinomial(self.pitch_weights, n, replacement=True, generator=generator)

    def step_generator(self) -> torch.Generator:
        """This rank's random numbers for the step at the current image count (``gansynth.core.seeds``)."""
        return seeded_generator(self.device, self.hparams.seed, STEP_NOISE, self.global_rank, int(self.images_seen))

    def latents(self, instruments: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """[n, latent_dim] step latents for a batch of ``instruments`` [n]; with ``instrument_pairs`` each pair of
        notes shares one, and with ``instrument_projection`` each one's latent category is its instrument."""
        z = torch.randn(instruments.shape[0], self.generator.latent_dim, device=self.device, generator=generator)
        if self.hparams.get("instrument_pairs"):
            z[1::2] = z[0::2]
        if self.hparams.get("instrument_projection"):
            z = with_category(z, instruments, self.generator.latent_categories)
        return z

    def _fake(self, pitches: torch.Tensor, instruments: torch.Tensor, blocks: int, alpha: float,
              generator: torch.Generator) -> torch.Tensor:
        return self.generator(self.latents(instruments, generator), pitches, blocks, alpha)

    def decibel_critics(self, pitches: torch.Tensor,
                        instruments: torch.Tensor) -> list[tuple[str, float, Callable, Callable]]:
        """(name, weight, critic, view) of each critic that judges a view of the image in dB under its own gradient
        penalty (``envelope_critic``: level curves; ``profile_critic``: the harmonic grid of ``pitches``), each told
        ``instruments`` with ``decibel_instruments``."""
        critics = []
        told = instruments if self.hparams.get("decibel_instruments") else None
        if self.envelope_critic is not None:
            critics.append(("envelope", self.hparams.envelope_critic,
                            lambda curves: self.envelope_critic(curves, told), self.envelope_critic.curves))
        if self.profile_critic is not None:
            critics.append(("profile", self.hparams.profile_critic, lambda grid: self.profile_critic(grid, told),
                            lambda x: self.profile_critic.view(x, pitches)))
        return critics

    def instrument_logits(self, x: torch.Tensor, pitches: torch.Tensor) -> torch.Tensor:
        """[B, instruments]: the instrument classifier's logits of normalised images at ``pitches``."""
        return self.instrument_classifier(self.instrument_classifier.view(x, pitches))

    def _critic(self, x: torch.Tensor, pitches: torch.Tensor, instruments: torch.Tensor, blocks: int, alpha: float,
                generator: torch.Generator, decibel: bool = True):
        """(critic score [B], pitch logits [B, P]) of ``x`` after ``model.augment``'s transforms. With
        ``loss.projection`` the score also gets the pitch head's logit for the asked-for pitch (a
        projection discriminator that shares the head's weights), so a fake whose spectrum does not
        match its pitch scores low even when the head can be fooled. The score also gets each decibel critic's,
        times its weight (``decibel``: whether to add them; D's gradient penalty leaves them out, as each takes
        its own on its view in dB)."""
        if self.loss_settings.critic_floor_db is not None:
            x = floor_quiet_magnitudes(x, self.loss_settings.critic_floor_db, self.magnitude_units_per_db)
        x = augment(x, self.augment_policy, generator)
        told = instruments if self.hparams.get("instrument_projection") else None  # the instruments the critics see
        score, logits = self.discriminator(x, blocks, alpha, instruments=told)
        if self.loss_settings.projection:  # a pack of notes (network.critic_pack) adds each note's logit
            score = score + logits.gather(1, pitches[:, None]).reshape(score.shape[0], -1).sum(1)
        if self.pair_critic is not None:  # one score per pair: its notes' scores and the pair critic's
            score = score.reshape(x.shape[0] // 2, -1).sum(1) + self.pair_critic(x, pitches, told)
        if decibel:  # each Lipschitz in dB of its view by its own penalty
            for _, weight, critic, view in self.decibel_critics(pitches, instruments):
                score = score + weight * critic(view(x))
        return score, logits

    def comb_if_normalized(self, pitches: torch.Tensor, blocks: int) -> torch.Tensor:
        """[B, 1, h, w] the comb's IF of each pitch at the stage's resolution, in G's output units."""
        return self.codec.normalize_if(getattr(self.generator, f"comb_if_{blocks - 1}")[pitches])

    def training_step(self, batch, batch_idx):
        """One generator step, then one critic step, on the step's own random numbers (drawn in this
        order: G's pitches, latents, augmentation; D's fake latents, augmentations, penalty mix)."""
        images, labels, instruments = batch
        stage = self.stage
        if stage != self._optim_stage:
            self._enter_stage(stage)
        blocks, alpha = self.blocks_and_alpha()
        noise = self.step_generator()
        real = fade_reals(self.codec.normalize(images), self.current_size(blocks), alpha, self.generator.skip_upsample)
        if self.hparams.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        if self.generator.comb_phase:  # the critic compares magnitudes: every IF is the comb's of the note's pitch
            real = self.generator.with_comb_phase(real, labels, blocks)
        n = real.shape[0]
        settings = self.loss_settings
        opt_g, opt_d = self.optimizers()

        self.toggle_optimizer(opt_g)
        fake_pitch = self.sample_pitches(n, noise)
        if self.hparams.get("instrument_pairs"):  # pairs of pitches one instrument has
            fake_pitch = labels.clone()
        if settings.mode_seeking:  # the second half asks for the first half's pitches, from other latents
            fake_pitch[n // 2: 2 * (n // 2)] = fake_pitch[: n // 2]
        z = self.latents(instruments, noise)
        fake = self.generator(z, fake_pitch, blocks, alpha)
        g = generator_loss(*self._critic(fake, fake_pitch, instruments, blocks, alpha, noise), fake_pitch, settings,
                           fake, z)
        g_total = g.total
        if settings.harmonic_phase:
            phase = harmonic_phase_loss(fake, self.comb_if_normalized(fake_pitch, blocks), self.loud_peaks)
            g_total = g_total + settings.harmonic_phase * phase
        g_instrument = {}  # the instrument terms G pays, logged as g_balance, g_instrument
        if self.instrument_classifier is not None:
            heard = self.instrument_logits(fake, fake_pitch)  # [B, instruments]
            if self.hparams.instrument_balance:
                g_instrument["g_balance"] = instrument_balance_loss(heard, self.instrument_share)
                g_total = g_total + self.hparams.instrument_balance * g_instrument["g_balance"]
            if self.hparams.instrument_aux:  # the fakes' instruments are their latents' categories
                g_instrument["g_instrument"] = F.cross_entropy(heard.float(), instruments)
                g_total = g_total + self.hparams.instrument_aux * g_instrument["g_instrument"]
        self._optimizer_step(opt_g, g_total, "generator loss")

        # The fakes take the real batch's pitches, so real, fake and their interpolates share one label.
        self.toggle_optimizer(opt_d)
        with torch.no_grad():
            fake = self._fake(labels, instruments, blocks, alpha, noise)
        real_score, real_logits = self._critic(real, labels, instruments, blocks, alpha, noise)
        fake_score, _ = self._critic(fake, labels, instruments, blocks, alpha, noise)
        d = critic_loss(real_score, fake_score, real_logits, labels, settings)
        penalty = lazy_gradient_penalty(lambda x: self._critic(x, labels, instruments, blocks, alpha, noise, decibel=False)[0],
                                        real, fake, int(self.images_seen), settings, noise)
        d_loss = d.total if penalty is None else d.total + penalty[0]
        decibel_penalties = {}  # logged as gp_envelope, gp_profile
        for name, _, critic, view in self.decibel_critics(labels, instruments):
            critic_penalty = lazy_gradient_penalty(critic, real, fake, int(self.images_seen), settings, noise, view=view)
            if critic_penalty is not None:
                d_loss = d_loss + critic_penalty[0]
                decibel_penalties[f"gp_{name}"] = critic_penalty[1]
        if self.instrument_classifier is not None:  # learns the real notes' instruments, never the fakes'
            instrument_logits = self.instrument_logits(real, labels)
            d_loss = d_loss + F.cross_entropy(instrument_logits.float(), instruments)
        self._optimizer_step(opt_d, d_loss, "discriminator loss")

        self._update_ema(n * self.trainer.world_size)
        self.images_seen += n * self.trainer.world_size
        losses = dict(g_loss=g_total, g_adv=g.adversarial, g_aux=g.pitch, d_loss=d_loss, d_adv=d.adversarial,
                      d_aux=d.pitch, real_pitch_acc=(real_logits.argmax(1) == labels).float().mean())
        if settings.harmonic_phase:
            losses["g_phase"] = phase
        if penalty is not None:  # otherwise the logs keep the last penalty actually computed
            losses["gp"] = penalty[1]
        losses.update(decibel_penalties)
        losses.update(g_instrument)
        if self.instrument_classifier is not None:
            losses["real_instrument_acc"] = (instrument_logits.argmax(1) == instruments).float().mean()
        self._log_step(losses, stage, alpha)

    def _optimizer_step(self, optimizer, loss: torch.Tensor, name: str) -> None:
        """Check the loss, then backward and step the optimizer toggled for it, and untoggle it."""
        self._check_finite(loss, name)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        self.untoggle_optimizer(optimizer)

    def _check_finite(self, loss: torch.Tensor, name: str) -> None:
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"{name} is {loss.item()} at {int(self.images_seen)} images (stage {self.stage}); "
                "training stopped, the last checkpoint on disk is the last good state"
            )

    def ema_decay_now(self, batch: int) -> float:
        """``ema_decay`` per step, or with ``ema_rampup`` a shorter memory early in each stage: the EMA's
        half-life (in images) is at most ``ema_rampup`` × the images seen since the stage began
        (StyleGAN2-ADA ramps it up once per run). Without it the EMA still averages the new blocks'
        untrained weights of the fade-in for a thousand steps: measured at 8×64 just after a fade,
        the EMA G scored PA 0.23 and mix entropy 0.01 where the raw G scored 0.60 and 0.60."""
        decay, rampup = self.hparams.ema_decay, self.hparams.get("ema_rampup")
        if not rampup or decay <= 0.0:
            return decay
        stage = self.stage
        into_stage = int(self.images_seen) - (self.schedule.stage_end(stage - 1) if stage else 0)
        half_life = min(batch * math.log(0.5) / math.log(decay), rampup * max(into_stage, batch))
        return 0.5 ** (batch / half_life)

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        decay = self.ema_decay_now(batch)
        for ema_p, p in zip(self.ema_generator.parameters(), self.generator.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.ema_generator.buffers(), self.generator.buffers()):
            ema_b.copy_(b)

    def _log_step(self, losses: dict, stage: int, alpha: float) -> None:
        now, seen = time.perf_counter(), int(self.images_seen)
        start, start_seen = self._clock or (now, seen)
        rate = (seen - start_seen) / max(now - start, 1e-9)
        self.log_dict({f"loss/{k}": v.detach().float() for k, v in losses.items()})
        self.log_dict(
            {"stage": float(stage), "alpha": float(alpha), "images_per_s": rate, "images_seen": float(seen)},
            prog_bar=True,
        )

    def configure_optimizers(self):
        kwargs = self.optim_settings.adam_arguments(self.stage)
        critics = [c for c in (self.discriminator, self.pair_critic, self.envelope_critic, self.profile_critic,
                               self.instrument_classifier) if c is not None]
        return (torch.optim.Adam(self.generator.parameters(), **kwargs),
                torch.optim.Adam([p for critic in critics for p in critic.parameters()], **kwargs))

    # ----------------------------------------------------------------- sampling
    def synth(self) -> Synth:
        """The EMA generator at the current stage, as rendering sees it (samples, evaluation)."""
        blocks, alpha = self.blocks_and_alpha()
        return Synth(generator=self.ema_generator, codec=self.codec, vocab=self.vocab,
                     pitch_counts=self.hparams.pitch["counts"], blocks=blocks, alpha=alpha,
                     latent_dim=self.generator.latent_dim, device=self.device, batch_size=64,
                     instruments=tuple(self.hparams.instrument_names) if self.hparams.instrument_projection else ())

    def latent(self, n: int, seed: int = 0) -> torch.Tensor:
        return torch.randn(n, self.generator.latent_dim, generator=torch.Generator().manual_seed(seed))
