"""Progressive generator and discriminator (ProGAN layout, GANSynth widths, optional SAGAN attention).

Each stage trains at its own resolution: with `stage_blocks = k`, G emits and D reads images of
`resolution(k)`. While block k fades in with weight `alpha`, G blends its new output with the 2x
nearest-neighbour upscaled output of block k-1, and D blends the path through block k with the
2x average-pooled input fed straight into block k-1. Both work in normalised units (G ends in tanh).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gansynth.core.errors import GANSynthError
from gansynth.core.double_backward import LeakyReLU
from gansynth.core.layers import (
    LEAKY_SLOPE,
    EqualizedCollapse,
    EqualizedConv2d,
    EqualizedLinear,
    EqualizedUpsamplingConv2d,
    LatentToGrid,
    MinibatchStddev,
    PixelNorm,
    SelfAttention2d,
    cat_channels,
    is_channels_last,
)


class NetworkError(GANSynthError):
    """A network was built with an inconsistent geometry or called with tensors of the wrong shape."""


def num_filters(block: int, fmap_base: float = 4096, fmap_decay: float = 1.0, fmap_max: int = 256) -> int:
    """Feature maps of block `block` (1-based; block 0 is D's final 1x1 feature vector)."""
    return int(min(fmap_base / 2 ** (block * fmap_decay), fmap_max))


def block_resolution(start_shape: tuple[int, int], block: int) -> tuple[int, int]:
    """(time, freq) size of block `block`'s feature maps: the start shape doubled block-1 times."""
    return start_shape[0] * 2 ** (block - 1), start_shape[1] * 2 ** (block - 1)


# How G's first layer sees [z, one-hot pitch]:
# - "magenta": pixel norm over the whole vector, then the start-shape conv with its conv fan-in gain (the original);
# - "dense": pixel norm over z alone, the one-hot kept at 1, and a dense gain (fan-in = vector length), so the
#   label's weights learn at the same rate as any other layer's instead of sqrt(h * w) times slower.
LATENT_INPUTS = ("magenta", "dense")
# How a skip G brings the coarser blocks' summed output up to the next resolution: nearest repeats each
# pixel (blocks of 2^k x 2^k in the final image that the top block has to cancel); bilinear is
# StyleGAN2's [1, 3, 3, 1] filter, which leaves no edges.
SKIP_UPSAMPLING = ("nearest", "bilinear")


def pool_to(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average-pool [B, C, T, F] images down to ``size`` (both axes divide exactly): how a lower stage
    sees the reals, and anything drawn to match them."""
    factor = (images.shape[-2] // size[0], images.shape[-1] // size[1])
    return F.avg_pool2d(images, factor) if factor != (1, 1) else images


def upsample(x: torch.Tensor, mode: str) -> torch.Tensor:
    """2x upsampling of [B, C, h, w] by ``mode`` (one of SKIP_UPSAMPLING)."""
    if mode == "nearest":
        return F.interpolate(x, scale_factor=2, mode="nearest")
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def latent_category(z: torch.Tensor, categories: int) -> torch.Tensor:
    """[B] which of z's first ``categories`` entries is largest: the discrete choice G reads from z [B, D]."""
    return z[:, :categories].argmax(dim=1)


def with_category(z: torch.Tensor, category: torch.Tensor, categories: int) -> torch.Tensor:
    """z [B, D] with two of its first ``categories`` entries swapped so the largest sits at ``category`` [B]: the
    latent drawn on condition that `Generator.category` picks ``category`` (swapping i.i.d. entries keeps their
    distribution)."""
    head = z[:, :categories].clone()  # [B, K]
    rows = torch.arange(z.shape[0], device=z.device)
    top = latent_category(head, categories)
    head[rows, top], head[rows, category] = head[rows, category], head[rows, top]
    return torch.cat([head, z[:, categories:]], dim=1)


def frame_positions(like: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[B, 1, h, w] (B, device and dtype of ``like``): each frame's place in the clip, -1 at the first frame,
    1 at the last. A convolution knows where it is in time only from the zero padding, and a note's onset
    and release sit at fixed frames."""
    frames = torch.linspace(-1.0, 1.0, h, device=like.device, dtype=like.dtype)
    return frames[None, None, :, None].expand(like.shape[0], 1, h, w)


def frame_levels(x: torch.Tensor, magnitude_scale: float, bands: int = 1) -> torch.Tensor:
    """[B, 2 ch, h, w] normalised [logmag, IF] pairs -> [B, ch * bands, h, 1] fp32: each frame's level, the log of
    its summed mel power in the magnitude's normalised units, per band of w / bands adjacent mel columns (channel
    c * bands + b: audio channel c, band b, lowest first). Summing power weights the loud harmonics as the ear
    does; a convolution over the log image sees a 6 dB dip of the fundamental as a small change in a few of its
    256 bins."""
    batch, _, frames, columns = x.shape
    magnitude = x[:, 0::2].float() / magnitude_scale  # [B, ch, h, w] log mel power plus a constant
    magnitude = magnitude.reshape(batch, -1, frames, bands, columns // bands)
    level = magnitude.logsumexp(-1) - math.log(columns // bands)  # [B, ch, h, bands]
    return magnitude_scale * level.transpose(2, 3).reshape(batch, -1, frames, 1)


def interleaved(magnitude: torch.Tensor, inst_freq: torch.Tensor) -> torch.Tensor:
    """[B, ch, h, w] magnitudes and [B, ch, h, w] IFs -> the image layout [B, 2 ch, h, w]: magnitude, IF per channel."""
    return torch.stack([magnitude, inst_freq], dim=2).flatten(1, 2)


def projected_scores(outputs: torch.Tensor, instruments: torch.Tensor | None, group: int, critic: str) -> torch.Tensor:
    """[N, 1 + K] outputs of a critic that scores groups of ``group`` notes -> [N] scores: the first column plus,
    with K > 0, the logit of each group's instrument (its notes share one; ``instruments`` [N * group]), a
    projection critic (Miyato & Koyama 2018) that judges a note against its instrument's notes alone."""
    if (instruments is None) != (outputs.shape[1] == 1):
        raise NetworkError(f"{critic}: instruments are given exactly when instrument_classes > 0")
    if instruments is None:
        return outputs[:, 0]
    return outputs[:, 0] + outputs[:, 1:].gather(1, instruments[::group, None]).squeeze(1)


def with_frame_levels(x: torch.Tensor, magnitude_scale: float) -> torch.Tensor:
    """[B, 2 ch, h, w] -> [B, 3 ch, h, w]: one more channel per audio channel holding each frame's level
    (`frame_levels`) across every column."""
    levels = frame_levels(x, magnitude_scale).to(x.dtype).expand_as(x[:, 0::2])
    return cat_channels([x, levels], is_channels_last(x))


class _ProgressiveNetwork(nn.Module):
    """Geometry shared by G and D: per-block resolution and width, attention placement, argument checks.
    Its constructor arguments are G's and D's (one network config builds both)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        num_blocks: int,
        start_shape: Sequence[int] = (2, 16),
        latent_dim: int = 256,
        num_pitches: int = 61,
        fmap_base: float = 4096,
        fmap_decay: float = 1.0,
        fmap_max: int = 256,
        attention_areas: Sequence[int] = (8192,),
        latent_input: str = "magenta",
        harmonic_coordinates: bool = False,
        subharmonic_combs: Sequence[int] = (),
        time_coordinates: bool = False,
        pitch_one_hot: bool = True,
        comb_if: bool = False,
        comb_phase: bool = False,
        harmonic_gains: bool = False,
        harmonic_profile: int = 0,
        skip_output: bool = False,
        zero_init_rgb: bool = False,
        skip_input: bool = False,
        skip_upsample: str = "nearest",
        block_latent_channels: int = 0,
        latent_categories: int = 0,
        critic_frame_level: bool = False,
        critic_pack: int = 1,
    ) -> None:
        super().__init__()
        self.latent_dim, self.num_pitches = latent_dim, num_pitches
        name = "model.network"  # the config both networks are built from; G's own geometry copy has no user-facing name
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise NetworkError(f"{name}: image_shape must be three positive ints (C, T, F), got {image_shape}")
        if len(start_shape) != 2 or min(start_shape) < 1:
            raise NetworkError(f"{name}: start_shape must be two positive ints (T, F), got {start_shape}")
        if num_blocks < 1:
            raise NetworkError(f"{name}: num_blocks must be >= 1, got {num_blocks}")
        if latent_dim < 1 or num_pitches < 1:
            raise NetworkError(f"{name}: latent_dim and num_pitches must be >= 1, got {latent_dim}, {num_pitches}")
        if latent_input not in LATENT_INPUTS:
            raise NetworkError(f"{name}: latent_input must be one of {', '.join(LATENT_INPUTS)}, got {latent_input!r}")
        self.latent_input = latent_input
        self.harmonic_coordinates = harmonic_coordinates
        if not all(isinstance(m, int) and m >= 2 for m in subharmonic_combs):
            raise NetworkError(f"{name}: subharmonic_combs must be integers >= 2 (every m-th harmonic), "
                               f"got {list(subharmonic_combs)}")
        if subharmonic_combs and not harmonic_coordinates:
            raise NetworkError(f"{name}: subharmonic_combs needs harmonic_coordinates (they extend its channels)")
        self.subharmonic_combs = tuple(subharmonic_combs)
        self.time_coordinates = time_coordinates
        self.pitch_one_hot = pitch_one_hot
        if not pitch_one_hot and not harmonic_coordinates:
            raise NetworkError(f"{name}: pitch_one_hot=false needs harmonic_coordinates, G's only other way to the pitch")
        self.comb_if = comb_if
        self.comb_phase = comb_phase
        self.skip_output = skip_output
        if harmonic_gains and not (harmonic_coordinates and skip_output):
            raise NetworkError(f"{name}: harmonic_gains needs harmonic_coordinates (the patterns it weighs) "
                               "and skip_output (each block adds to the sum)")
        self.harmonic_gains = harmonic_gains
        if not (isinstance(harmonic_profile, int) and harmonic_profile >= 0):
            raise NetworkError(f"{name}: harmonic_profile must be an int >= 0 (harmonics; 0: none), got {harmonic_profile!r}")
        if harmonic_profile and not skip_output:
            raise NetworkError(f"{name}: harmonic_profile needs skip_output (the profile is added to the sum before tanh)")
        self.harmonic_profile = harmonic_profile
        if zero_init_rgb and not skip_output:
            raise NetworkError(f"{name}: zero_init_rgb needs skip_output (a blended stage of zeros is silence)")
        self.zero_init_rgb = zero_init_rgb
        self.skip_input = skip_input
        if skip_upsample not in SKIP_UPSAMPLING:
            raise NetworkError(f"{name}: skip_upsample must be one of {', '.join(SKIP_UPSAMPLING)}, got {skip_upsample!r}")
        if skip_upsample != "nearest" and not skip_output:
            raise NetworkError(f"{name}: skip_upsample={skip_upsample} needs skip_output (a blending G has no skip path)")
        self.skip_upsample = skip_upsample
        if block_latent_channels < 0:
            raise NetworkError(f"{name}: block_latent_channels must be >= 0, got {block_latent_channels}")
        self.block_latent_channels = int(block_latent_channels)
        if not (isinstance(latent_categories, int) and (latent_categories == 0 or 2 <= latent_categories <= latent_dim)):
            raise NetworkError(f"{name}: latent_categories must be 0 or an integer in 2..latent_dim={latent_dim}, "
                               f"got {latent_categories!r}")
        self.latent_categories = latent_categories
        self.critic_frame_level = critic_frame_level
        if not (isinstance(critic_pack, int) and critic_pack >= 1):
            raise NetworkError(f"{name}: critic_pack must be an integer >= 1, got {critic_pack!r}")
        self.critic_pack = critic_pack
        self.image_channels, time, freq = (int(n) for n in image_shape)
        self.start_shape = (int(start_shape[0]), int(start_shape[1]))
        self.num_blocks = num_blocks
        final = block_resolution(self.start_shape, num_blocks)
        if final != (time, freq):
            raise NetworkError(
                f"{name}: {num_blocks} blocks from start {self.start_shape} end at {final}, "
                f"but image_shape is {time}x{freq}; change num_blocks or start_shape"
            )
        self.widths = [num_filters(i, fmap_base, fmap_decay, fmap_max) for i in range(num_blocks + 1)]
        if min(self.widths) < 1:
            raise NetworkError(
                f"{name}: fmap_base={fmap_base}, fmap_decay={fmap_decay}, fmap_max={fmap_max} "
                f"give block widths {self.widths}; every width must be >= 1"
            )
        self.attention_blocks = [
            i for i in range(1, num_blocks + 1) if self._area(i) in {int(a) for a in attention_areas}
        ]
        for block in self.attention_blocks:
            h, w = self.resolution(block)
            if h % 2 or w % 2:
                raise NetworkError(f"{name}: attention at block {block} needs even sides, got {h}x{w}")

    def _area(self, block: int) -> int:
        h, w = self.resolution(block)
        return h * w

    def resolution(self, blocks: int) -> tuple[int, int]:
        """(h, w) of images at a stage with `blocks` active blocks."""
        return block_resolution(self.start_shape, blocks)

    def _check_stage(self, stage_blocks: int, alpha: float) -> None:
        name = type(self).__name__
        if not 1 <= stage_blocks <= self.num_blocks:
            raise NetworkError(f"{name}: stage_blocks must be in 1..{self.num_blocks}, got {stage_blocks}")
        if not 0.0 <= alpha <= 1.0:
            raise NetworkError(f"{name}: alpha must be in [0, 1], got {alpha}")
        if stage_blocks == 1 and alpha != 1.0:
            raise NetworkError(f"{name}: block 1 has nothing to fade from; alpha must be 1.0, got {alpha}")


def _generator_conv(conv: nn.Module) -> list[nn.Module]:
    """conv 3x3 (with its bias) -> leaky ReLU -> pixel norm."""
    return [conv, nn.LeakyReLU(LEAKY_SLOPE), PixelNorm()]


class Generator(_ProgressiveNetwork):
    """z and a pitch label to a normalised spectrogram image at the stage's resolution.

    The input layer maps [z, one-hot pitch] to a start-shape grid (`LatentToGrid`); block 1 applies a
    3x3 conv to it, later blocks upsample 2x (nearest) and apply two 3x3 convs. With
    `harmonic_coordinates`, every block's input also gets the pitch's harmonic-coordinate channels at
    that block's width (`coordinates`: one [P, K, w] tensor per block, from `gansynth.core.harmonics`);
    with `comb_if`, also the IF image of the pitch's harmonic comb at the block's resolution (`comb_images`:
    one [P, 1, h, w] tensor per block); with `time_coordinates`, also the frame-position channel of
    `frame_positions`; with `block_latent_channels`, also that many channels of a linear map of z
    (one map per block). With `comb_phase`, G draws only the log-magnitude: every IF channel of its
    output is the comb's IF image of the asked-for pitch, in normalised units (`phase_images`, one
    [P, 1, h, w] tensor per block), the phase a pitched note's harmonics have by physics; the critic then
    sees the reals with the same IF (`with_comb_phase`). With `harmonic_gains` (a skip G), every block's output
    also adds its harmonic coordinates to each log-magnitude channel, weighed per pixel by gains its features
    draw (`weighed_harmonics`); with `harmonic_profile` H, the sum also gets a level per harmonic 1..H, a linear map
    of z, on each harmonic's columns (`profile_levels`; `profile_weights`: one [P, H, w] tensor per block).
    Attention follows the last conv of a block whose area is in `attention_areas`; G's attention always
    takes the fused path, since nothing differentiates G twice. Every block after the first is handed the coarse
    map and the extra channels apart, and upsamples inside its first convolution (`EqualizedUpsamplingConv2d`).
    """

    def __init__(self, *args, coordinates: Sequence[torch.Tensor] | None = None,
                 comb_images: Sequence[torch.Tensor] | None = None,
                 phase_images: Sequence[torch.Tensor] | None = None,
                 profile_weights: Sequence[torch.Tensor] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if bool(self.harmonic_profile) != (profile_weights is not None):
            raise NetworkError("Generator: harmonic_profile needs the profile weights of every block, and only then")
        for i, weights in enumerate(profile_weights or ()):
            self.register_buffer(f"profile_weights_{i}", weights.float(), persistent=False)  # [P, H, w_i]
        if self.harmonic_coordinates != (coordinates is not None):
            raise NetworkError("Generator: harmonic_coordinates needs the coordinates of every block, and only then")
        if self.comb_if != (comb_images is not None):
            raise NetworkError("Generator: comb_if needs the comb's IF image at every block, and only then")
        if self.comb_phase != (phase_images is not None):
            raise NetworkError("Generator: comb_phase needs the comb's normalised IF image at every block, and only then")
        extra = 0
        for name, images in (("comb_if", comb_images), ("phase", phase_images)):
            if images is None:
                continue
            expected = [self.resolution(i) for i in range(1, self.num_blocks + 1)]
            if [tuple(c.shape[-2:]) for c in images] != expected or images[0].shape[1] != 1:
                raise NetworkError(f"Generator: {name} images must be {self.num_blocks} tensors [P, 1, h, w] "
                                   f"with (h, w) {expected}")
            for i, image in enumerate(images):
                self.register_buffer(f"{name}_{i}", image.float(), persistent=False)  # [P, 1, h_i, w_i]
        if comb_images is not None:
            extra = 1
        if self.time_coordinates:
            extra += 1
        extra += self.block_latent_channels
        if coordinates is not None:
            expected = [self.resolution(i)[1] for i in range(1, self.num_blocks + 1)]
            if [c.shape[-1] for c in coordinates] != expected:
                raise NetworkError(f"Generator: coordinates must be {self.num_blocks} tensors [P, K, w] "
                                   f"with widths {expected}")
            extra += coordinates[0].shape[1]
            for i, table in enumerate(coordinates):
                self.register_buffer(f"coordinates_{i}", table.float(), persistent=False)  # [P, K, w_i]
        self.input_norm = PixelNorm()
        widths = self.widths
        self.input_layer = nn.Sequential(
            LatentToGrid(self.latent_dim + self.latent_categories + self.num_pitches * self.pitch_one_hot,
                         widths[1], self.start_shape,
                         conv_gain=self.latent_input == "magenta"),
            nn.LeakyReLU(LEAKY_SLOPE),
            PixelNorm(),
        )
        blocks = []
        for i in range(1, self.num_blocks + 1):
            if i == 1:
                layers = _generator_conv(EqualizedConv2d(widths[1] + extra, widths[1], 3, padding=1))
            else:
                layers = _generator_conv(EqualizedUpsamplingConv2d(widths[i - 1], extra, widths[i]))
                layers += _generator_conv(EqualizedConv2d(widths[i], widths[i], 3, padding=1))
            if i in self.attention_blocks:
                layers.append(SelfAttention2d(widths[i]))
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        # block_latent_channels: z also reaches every block directly, not only through the start grid, as
        # channels of one linear map of z per block, constant over the grid (docs/RESULTS.md).
        self.latent_maps = nn.ModuleList(
            EqualizedLinear(self.latent_dim + self.latent_categories, self.block_latent_channels, slope=1.0)
            for _ in range(self.num_blocks if self.block_latent_channels else 0))
        # With skip_output the blocks' linear outputs are summed (each upsampled) and tanh comes last, so a
        # new block adds detail to what the coarser ones already draw instead of replacing it (StyleGAN2's
        # skip generator); otherwise each stage's own to_rgb ends in tanh and a fade-in blends two images.
        self.to_rgb = nn.ModuleList(
            nn.Sequential(EqualizedConv2d(widths[i], self.image_channels, 1, slope=1.0),
                          *([] if self.skip_output else [nn.Tanh()]))
            for i in range(1, self.num_blocks + 1)
        )
        # zero_init_rgb: a new block's output starts at zero, so its fade-in begins exactly at the previous
        # stage's picture and the block learns only the detail that picture lacks (docs/RESULTS.md).
        if self.zero_init_rgb:
            for to_rgb in self.to_rgb[1:]:
                nn.init.zeros_(to_rgb[0].weight)
        # harmonic_gains: each block also weighs the harmonic-coordinate channels pixel by pixel into its
        # log-magnitude output, so a comb as sharp as the coordinates is one gain away, where convs drawing it
        # from features blur harmonics above ~2 kHz (docs/RESULTS.md). Zero at the start: the same G as without.
        self.comb_gains = nn.ModuleList(
            EqualizedConv2d(widths[i], (self.image_channels // 2) * coordinates[0].shape[1], 1, slope=1.0)
            for i in range(1, self.num_blocks + 1)) if self.harmonic_gains else nn.ModuleList()
        for gains in self.comb_gains:
            nn.init.zeros_(gains.weight)
        # harmonic_profile: one level per harmonic 1..H and audio channel, a linear map of z, added to the
        # log-magnitude on the columns of each harmonic: a latent's instrument keeps its harmonic levels (a
        # pluck's missing 8th) at every pitch, where per-pixel convs blur them (docs/RESULTS.md). Zero at the start.
        self.profile_map = None
        if self.harmonic_profile:
            self.profile_map = EqualizedLinear(self.latent_dim + self.latent_categories,
                                               (self.image_channels // 2) * self.harmonic_profile, slope=1.0)
            nn.init.zeros_(self.profile_map.weight)

    @classmethod
    def for_codec(cls, codec, vocab, **network) -> Generator:
        """G for a codec's images and a pitch vocabulary, with its harmonic coordinates and comb IF when
        asked for."""
        from gansynth.core.harmonics import comb_if, harmonic_coordinates, harmonic_profile_weights

        args = dict(network, image_shape=tuple(codec.image_shape), num_pitches=vocab.size)
        geometry = _ProgressiveNetwork(**args)
        shapes = [geometry.resolution(i) for i in range(1, geometry.num_blocks + 1)]
        coordinates = None
        if geometry.harmonic_coordinates:
            coordinates = [harmonic_coordinates(codec, vocab, w, geometry.subharmonic_combs) for _, w in shapes]
        profile_weights = None
        if geometry.harmonic_profile:
            profile_weights = [harmonic_profile_weights(codec, vocab, w, geometry.harmonic_profile) for _, w in shapes]
        combs = comb_if(codec, vocab, shapes) if geometry.comb_if or geometry.comb_phase else None
        phase_images = [codec.normalize_if(comb) for comb in combs] if geometry.comb_phase else None
        return cls(**args, coordinates=coordinates, comb_images=combs if geometry.comb_if else None,
                   phase_images=phase_images, profile_weights=profile_weights)

    def forward(self, z: torch.Tensor, pitch: torch.Tensor, stage_blocks: int, alpha: float) -> torch.Tensor:
        """z [B, latent_dim], pitch [B] class indices -> image [B, C, h, w] in [-1, 1]."""
        self._check_stage(stage_blocks, alpha)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise NetworkError(f"Generator: z must be [B, {self.latent_dim}], got {list(z.shape)}")
        if pitch.shape != z.shape[:1] or pitch.is_floating_point():
            raise NetworkError(
                f"Generator: pitch must be integer [{z.shape[0]}], got {pitch.dtype} {list(pitch.shape)}"
            )
        one_hot = F.one_hot(pitch, self.num_pitches).to(z.dtype)  # [B, P]
        latent = self.input_norm(z)  # [B, latent]
        if not self.pitch_one_hot:
            x = latent  # the pitch comes in through the harmonic coordinates alone
        elif self.latent_input == "magenta":
            x = self.input_norm(torch.cat([z, one_hot], dim=1))  # [B, latent + P]
        else:
            x = torch.cat([latent, one_hot], dim=1)  # [B, latent + P]
        if self.latent_categories:
            category = self.category(z)  # [B, K]
            latent, x = torch.cat([latent, category], dim=1), torch.cat([x, category], dim=1)
        x = self.input_layer(x)  # [B, width(1), start_h, start_w]
        previous, skip = x, None
        for i, block in enumerate(self.blocks[:stage_blocks]):
            extras = self.block_extras(i, pitch, latent, x)
            # block 0 reads the start grid as it is; later blocks' first conv upsamples x inside its convolution
            features = (x, extras) if i else cat_channels([x, *extras], is_channels_last(block[0].weight))
            previous, x = x, block(features)  # x: [B, width(i), resolution(i)]
            if self.skip_output:
                weight = alpha if i == stage_blocks - 1 else 1.0
                rgb = self.to_rgb[i](x)  # [B, C, resolution(i)]
                if self.harmonic_gains:
                    rgb = rgb + self.weighed_harmonics(i, pitch, x)
                rgb = weight * rgb
                skip = rgb if skip is None else upsample(skip, self.skip_upsample) + rgb
        if self.skip_output:
            if self.profile_map is not None:
                skip = skip + self.profile_levels(stage_blocks - 1, pitch, latent).to(skip.dtype)
            image = torch.tanh(skip)
        else:
            image = self.to_rgb[stage_blocks - 1](x)  # [B, C, h, w]
            if alpha < 1.0:
                faded = self.to_rgb[stage_blocks - 2](previous)  # [B, C, h/2, w/2]
                image = alpha * image + (1.0 - alpha) * F.interpolate(faded, scale_factor=2, mode="nearest")
        return self.with_comb_phase(image, pitch, stage_blocks) if self.comb_phase else image

    def category(self, z: torch.Tensor) -> torch.Tensor:
        """[B, K] one-hot of which of z's first K entries is largest: a discrete choice drawn with z (uniform
        over K), so G can jump between instruments where a smooth map of a Gaussian z must pass through
        notes between them (docs/RESULTS.md)."""
        return F.one_hot(latent_category(z, self.latent_categories), self.latent_categories).to(z.dtype)

    def block_extras(self, i: int, pitch: torch.Tensor, latent: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
        """The channels block ``i`` (0-based) gets beside the previous block's output ``x``, each [B, k, h, w] at
        the block's resolution in x's dtype, in the order of its conv's input channels: harmonic coordinates,
        comb IF, frame positions, the block's map of z."""
        h, w = self.resolution(i + 1)
        extras = []
        if self.harmonic_coordinates:
            table = getattr(self, f"coordinates_{i}")[pitch]  # [B, K, w]
            extras.append(table[:, :, None, :].expand(-1, -1, h, -1).to(x.dtype))
        if self.comb_if:
            extras.append(getattr(self, f"comb_if_{i}")[pitch].to(x.dtype))  # [B, 1, h, w]
        if self.time_coordinates:
            extras.append(frame_positions(x, h, w))
        if self.block_latent_channels:
            channels = self.latent_maps[i](latent).to(x.dtype)  # [B, block_latent_channels]
            extras.append(channels[:, :, None, None].expand(-1, -1, h, w))
        return extras

    def weighed_harmonics(self, i: int, pitch: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w]: block ``i``'s harmonic coordinates, weighed per pixel by gains drawn from its features
        ``x`` [B, width(i), h, w], summed into each magnitude channel (the IF channels get zeros)."""
        table = getattr(self, f"coordinates_{i}")[pitch].to(x.dtype)  # [B, K, w]
        k = table.shape[1]
        gains = self.comb_gains[i](x).unflatten(1, (-1, k))  # [B, audio channels, K, h, w]
        magnitude = (gains * table[:, None, :, None, :]).sum(2)  # [B, audio channels, h, w]
        return interleaved(magnitude, torch.zeros_like(magnitude))

    def profile_levels(self, i: int, pitch: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """[B, C, 1, w]: each note's harmonic profile, a map of its ``latent`` [B, latent + K], spread over the columns
        of block ``i`` by ``harmonic_profile_weights``, on every magnitude channel (the IF channels get zeros)."""
        levels = self.profile_map(latent).unflatten(1, (-1, self.harmonic_profile))  # [B, audio channels, H]
        magnitude = torch.einsum("bch,bhw->bcw", levels, getattr(self, f"profile_weights_{i}")[pitch])[:, :, None]
        return interleaved(magnitude, torch.zeros_like(magnitude))

    def with_comb_phase(self, image: torch.Tensor, pitch: torch.Tensor, stage_blocks: int) -> torch.Tensor:
        """image [B, C, h, w] normalised at the stage's resolution with each IF channel replaced by the comb's
        IF image of ``pitch`` [B]: G's output, and the reals the critic compares it with."""
        magnitude = image[:, 0::2]  # [B, audio channels, h, w]
        phase = getattr(self, f"phase_{stage_blocks - 1}")[pitch].to(image.dtype).expand_as(magnitude)
        return interleaved(magnitude, phase)


def _discriminator_conv(in_channels: int, out_channels: int, kernel: int | tuple[int, int], padding: int) -> nn.Module:
    """conv -> bias -> leaky ReLU (D has no normalisation layers)."""
    return nn.Sequential(EqualizedConv2d(in_channels, out_channels, kernel, padding=padding), LeakyReLU(LEAKY_SLOPE))


class _DiscriminatorBlock(nn.Module):
    """Block i >= 2: conv 3x3 -> width(i), conv 3x3 -> width(i-1), [attention], 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int, attention: bool) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            _discriminator_conv(in_channels, in_channels, 3, padding=1),
            _discriminator_conv(in_channels, out_channels, 3, padding=1),
        )
        self.attention = SelfAttention2d(out_channels) if attention else None

    def forward(self, x: torch.Tensor, double_backward: bool) -> torch.Tensor:
        # [B, width(i), h, w] -> [B, width(i-1), h/2, w/2]
        x = self.convs(x)
        if self.attention is not None:
            x = self.attention(x, double_backward)
        return F.avg_pool2d(x, 2)


class _DiscriminatorStem(nn.Module):
    """Block 1: minibatch stddev, conv 3x3, [attention], start-shape VALID conv to one feature vector (`EqualizedCollapse`)."""

    def __init__(self, channels: int, out_features: int, start_shape: tuple[int, int], attention: bool) -> None:
        super().__init__()
        self.stddev = MinibatchStddev()
        self.conv = _discriminator_conv(channels + 1, channels, 3, padding=1)
        self.attention = SelfAttention2d(channels) if attention else None
        self.collapse = nn.Sequential(EqualizedCollapse(channels, out_features, start_shape), LeakyReLU(LEAKY_SLOPE))

    def forward(self, x: torch.Tensor, double_backward: bool) -> torch.Tensor:
        # [B, width(1), start_h, start_w] -> [B, width(0)]
        x = self.conv(self.stddev(x))
        if self.attention is not None:
            x = self.attention(x, double_backward)
        return self.collapse(x).flatten(1)


class Discriminator(_ProgressiveNetwork):
    """Normalised image at the stage's resolution to a WGAN critic score and 61-way pitch logits.

    Takes the same constructor arguments as `Generator` (those of `_ProgressiveNetwork`) so one config
    builds both; `latent_dim` and `latent_input` only shape G. With `skip_input` every block's output is
    added to the from_rgb of the image pooled to its resolution (StyleGAN2's input-skip D), and each
    block's last conv starts at zero: a fade-in begins with exactly the previous stage's critic, which
    keeps judging the coarse picture while the new block learns the detail. With `critic_frame_level` each
    from_rgb also reads every frame's level (`with_frame_levels`), so the critic judges the envelope as
    summed power, the way the ear and the envelope metric weigh it. With `critic_pack` k > 1 the critic
    scores k consecutive notes of the batch at once, stacked along channels (PacGAN, Lin et al. 2018): a
    pack from a G that under-makes one instrument lacks it more often than a pack of real notes. The
    pitch head still names every note's pitch, k × num_pitches logits per pack. With `instrument_classes`
    K > 0 the critic is also told each note's instrument (a projection on K learned embeddings, Miyato &
    Koyama 2018): the reals' from their names, the fakes' from G's latent category, so a fake of category
    k is judged against instrument k's notes alone.
    """

    def __init__(self, *args, magnitude_scale: float | None = None, instrument_classes: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        num_blocks = self.num_blocks
        widths = self.widths
        if self.critic_frame_level and magnitude_scale is None:
            raise NetworkError("Discriminator: critic_frame_level needs magnitude_scale, the codec's slope for "
                               "normalised log-magnitude (the levels sum power)")
        self.magnitude_scale = magnitude_scale
        in_channels = self.critic_pack * (self.image_channels * 3 // 2 if self.critic_frame_level
                                          else self.image_channels)
        self.from_rgb = nn.ModuleList(
            _discriminator_conv(in_channels, widths[i], 1, padding=0) for i in range(1, num_blocks + 1)
        )
        # self.blocks[i - 2] is block i, for i = 2..num_blocks
        self.blocks = nn.ModuleList(
            _DiscriminatorBlock(widths[i], widths[i - 1], attention=i in self.attention_blocks)
            for i in range(2, num_blocks + 1)
        )
        if self.skip_input:
            for block in self.blocks:
                nn.init.zeros_(block.convs[-1][0].weight)
        self.stem = _DiscriminatorStem(widths[1], widths[0], self.start_shape, attention=1 in self.attention_blocks)
        self.critic = EqualizedLinear(widths[0], 1, slope=1.0)
        self.pitch_head = EqualizedLinear(widths[0], self.critic_pack * self.num_pitches, slope=1.0)
        self.instrument_head = None
        if instrument_classes:
            self.instrument_head = EqualizedLinear(widths[0], self.critic_pack * instrument_classes, slope=1.0)

    def _from_rgb(self, blocks: int, x: torch.Tensor) -> torch.Tensor:
        """Image at resolution(blocks) -> [B, width(blocks), h, w]; levels are taken at that resolution, so
        a critic on a pooled image is the same function at every stage."""
        if self.critic_frame_level:
            x = with_frame_levels(x, self.magnitude_scale)  # [B, 3 ch, h, w]
        return self.from_rgb[blocks - 1](x)

    def forward(
        self, x: torch.Tensor, stage_blocks: int, alpha: float, fused_attention: bool = False,
        instruments: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, C, h, w] -> (critic [B / critic_pack], pitch_logits [B, num_pitches]); with
        ``instrument_classes``, ``instruments`` [B] are the notes' classes, and the critic adds each one's logit.

        Attention takes its explicit path by default, because a gradient penalty differentiates D twice
        and the fused kernels' backward cannot be differentiated. `fused_attention=True` saves memory on
        passes that are differentiated once (real and fake scores); never use it for the penalty's pass.
        """
        double_backward = not fused_attention
        self._check_stage(stage_blocks, alpha)
        expected = (self.image_channels, *self.resolution(stage_blocks))
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise NetworkError(
                f"Discriminator: input must be [B, {', '.join(map(str, expected))}] "
                f"at {stage_blocks} blocks, got {list(x.shape)}"
            )
        batch, pack = x.shape[0], self.critic_pack
        if batch % pack:
            raise NetworkError(f"Discriminator: a batch of {batch} does not split into packs of {pack}")
        x = x.reshape(batch // pack, pack * x.shape[1], *x.shape[2:])  # notes i*k .. i*k+k-1 form pack i
        features = self._from_rgb(stage_blocks, x)  # [B, width(k), h, w]
        if self.skip_input:
            for i in range(stage_blocks, 1, -1):  # block i: resolution(i) -> resolution(i - 1)
                x = F.avg_pool2d(x, 2)
                weight = alpha if i == stage_blocks else 1.0
                features = weight * self.blocks[i - 2](features, double_backward) + self._from_rgb(i - 1, x)
        elif stage_blocks > 1:
            features = self.blocks[stage_blocks - 2](features, double_backward)  # [B, width(k-1), h/2, w/2]
            if alpha < 1.0:
                skipped = self._from_rgb(stage_blocks - 1, F.avg_pool2d(x, 2))  # [B, width(k-1), h/2, w/2]
                features = alpha * features + (1.0 - alpha) * skipped
            for block in reversed(self.blocks[: stage_blocks - 2]):
                features = block(features, double_backward)
        features = self.stem(features, double_backward)  # [B / pack, width(0)]
        score = self.critic(features).squeeze(1)  # [B / pack]
        if (instruments is None) != (self.instrument_head is None):
            raise NetworkError("Discriminator: instruments are given exactly when instrument_classes > 0")
        if instruments is not None:
            logits = self.instrument_head(features).reshape(batch, -1)  # [B, instrument_classes]
            score = score + logits.gather(1, instruments[:, None]).reshape(batch // pack, pack).sum(1)
        return score, self.pitch_head(features).reshape(batch, self.num_pitches)
