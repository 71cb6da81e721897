"""The fast generate path (a frozen copy of G: scales folded in, channels_last; bf16 autocast on request)
against today's reference: the training modules in fp32, decoded the same way."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gansynth.core.networks import Generator
from gansynth.core.pitch import PitchVocab
from gansynth.core.spectral import SpecgramCodec
from gansynth.core.synth import Synth

LATENT = 32
# A tiny random model with attention (spectral norms to fold) at 8x64; 5 blocks reach 32x256.
NETWORK = dict(num_blocks=5, start_shape=(2, 16), latent_dim=LATENT, fmap_base=256, fmap_max=64,
               attention_areas=(512,))
PITCHES = [24, 40, 60, 61, 84]
# fp32 is the same maths in another order: channels_last convolutions sum their taps differently and
# the first layer adds its bias inside the matmul. Each layer rounds at float32's 6e-8 relative; the
# image differs by ~3e-5, and the decoder's phase (a cumulative sum of IF over the frames) carries that
# into the wave: 6e-5 of the clip's peak measured here. The bound, 3e-4 of the peak (-70 dB), leaves
# room for other seeds and CPUs and is far below anything audible.
FP32_RTOL = 3e-4
# bf16 keeps 8 significant bits (0.4 % relative per rounding) through a dozen layers, and a phase
# error moves the wave itself. Measured on this model: image error RMS 0.014, 99th percentile 0.054,
# a few pixels up to 0.6 (where the tanh is steep), so the bound is on the RMS, with 2x room, and the
# wave must stay correlated with the reference.
BF16_IMAGE_RMS = 0.03
BF16_MIN_CORRELATION = 0.9


def make_synth(precision: str, blocks: int, alpha: float, seed: int = 0, compile: bool = False) -> Synth:
    codec = SpecgramCodec(16000, 0.25, "stereo", n_fft=512, hop_length=128, n_frames=32)
    torch.manual_seed(seed)
    generator = Generator.for_codec(codec, PitchVocab(), **NETWORK).eval().requires_grad_(False)
    for layer in generator.modules():
        if hasattr(layer, "gamma"):
            layer.gamma.data.fill_(0.5)  # attention at work, not the identity it starts as
    return Synth(generator, codec, PitchVocab(), [1] * 61, blocks, alpha, LATENT, torch.device("cpu"),
                 batch_size=2, precision=precision, compile=compile)


def reference(synth: Synth, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Today's fp32 output: (image at full size, wave) from the training modules, before any folding."""
    index = torch.tensor([synth.vocab.index(p) for p in PITCHES])
    with torch.no_grad():
        image = synth.generator(z, index, synth.blocks, synth.alpha)
        image = F.interpolate(image, size=tuple(synth.codec.image_shape[1:]), mode="nearest")
        return image, synth.codec.decode(synth.codec.denormalize(image))


@pytest.mark.parametrize("blocks, alpha", [(5, 1.0), (4, 0.3)])
def test_fp32_fast_path_matches_the_training_modules(blocks, alpha):
    synth = make_synth("fp32", blocks, alpha)
    z = torch.randn(len(PITCHES), LATENT, generator=torch.Generator().manual_seed(1))
    _, wave = reference(synth, z)
    fast = synth.generate(PITCHES, z)
    assert fast.shape == wave.shape
    assert (fast - wave).abs().max() <= FP32_RTOL * wave.abs().max()


def test_bf16_fast_path_stays_close_to_fp32():
    synth = make_synth("bf16", 5, 1.0)
    z = torch.randn(len(PITCHES), LATENT, generator=torch.Generator().manual_seed(1))
    image, wave = reference(synth, z)
    index = torch.tensor([synth.vocab.index(p) for p in PITCHES])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        fast_image = synth.network(z, index, synth.blocks, synth.alpha).float()
    assert (fast_image - image).square().mean().sqrt() <= BF16_IMAGE_RMS
    fast = synth.generate(PITCHES, z)
    correlation = np.corrcoef(fast.ravel().numpy(), wave.ravel().numpy())[0, 1]
    assert correlation > BF16_MIN_CORRELATION


@pytest.mark.parametrize("blocks, alpha", [(5, 1.0), (3, 0.4)])
def test_upsampling_folded_into_the_first_conv_matches_the_tiny_generator(blocks, alpha):
    """Every block after the first takes the coarse map into a transposed conv instead of upsampling it;
    with the tiny experiment's extra channels at every block (harmonic coordinates with combs, frame
    positions, maps of z), its skip output, harmonic gains and profile, the fp32 image is the training modules' to
    float rounding."""
    from gansynth.core.frozen import frozen_generator
    from gansynth.core.layers import UpsamplingConv2d

    codec = SpecgramCodec(16000, 0.25, "mono", n_fft=512, hop_length=128, n_frames=32)
    torch.manual_seed(0)
    generator = Generator.for_codec(
        codec, PitchVocab(), num_blocks=5, start_shape=(2, 16), latent_dim=LATENT, fmap_base=256, fmap_max=64,
        harmonic_coordinates=True, subharmonic_combs=[2, 3], time_coordinates=True, block_latent_channels=4,
        pitch_one_hot=False, skip_output=True, skip_upsample="bilinear", comb_phase=True, harmonic_gains=True,
        harmonic_profile=8).eval()
    for conv in [rgb[0] for rgb in generator.to_rgb] + list(generator.comb_gains) + [generator.profile_map]:  # not zeros
        torch.nn.init.normal_(conv.weight)
    frozen = frozen_generator(generator)
    assert [type(block[0]) for block in frozen.blocks] == [torch.nn.Conv2d] + [UpsamplingConv2d] * 4
    z = torch.randn(len(PITCHES), LATENT, generator=torch.Generator().manual_seed(1))
    index = torch.tensor([PitchVocab().index(p) for p in PITCHES])
    with torch.inference_mode():
        expected = generator(z, index, blocks, alpha)
        torch.testing.assert_close(frozen(z, index, blocks, alpha), expected, rtol=0, atol=1e-4)  # measured 2e-5
    assert expected[:, 0].std() > 0.1  # a picture, not a constant


def test_the_compiled_path_matches_eager_with_a_short_last_batch():
    """compile=True renders the same notes as the eager copy (5 notes in batches of 2: the last batch is
    padded to the compiled shape and cut back)."""
    eager = make_synth("fp32", 5, 1.0)
    z = torch.randn(len(PITCHES), LATENT, generator=torch.Generator().manual_seed(1))
    expected = eager.generate(PITCHES, z)
    compiled = make_synth("fp32", 5, 1.0, compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to eager would warn, and would not test compiling
        got = compiled.generate(PITCHES, z)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= FP32_RTOL * expected.abs().max()


def test_a_failed_compile_falls_back_to_eager_with_one_warning(monkeypatch):
    def compile_that_fails(function, **options):
        def compiled(*inputs):
            raise RuntimeError("InductorError: no C++ compiler\nmore lines")
        return compiled

    monkeypatch.setattr(torch, "compile", compile_that_fails)
    z = torch.randn(len(PITCHES), LATENT, generator=torch.Generator().manual_seed(1))
    synth = make_synth("fp32", 5, 1.0, compile=True)
    with pytest.warns(UserWarning, match=r"torch.compile failed \(RuntimeError: InductorError: no C\+\+ "
                                         r"compiler\); rendering without it") as caught:
        got = synth.generate(PITCHES, z)
    assert len(caught) == 1
    expected = make_synth("fp32", 5, 1.0).generate(PITCHES, z)  # the last batch unpadded: rounding differs
    assert (got - expected).abs().max() <= FP32_RTOL * expected.abs().max()


def test_the_frozen_copy_leaves_the_training_generator_alone():
    synth = make_synth("fp32", 5, 1.0)
    before = {k: v.clone() for k, v in synth.generator.state_dict().items()}
    synth.generate(PITCHES, torch.zeros(len(PITCHES), LATENT))
    after = synth.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert synth.network is not synth.generator
    assert not any(p.requires_grad for p in synth.network.parameters())
    conv = next(m for m in synth.network.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_building_a_synth_draws_nothing_from_the_global_rng():
    make_synth("fp32", 5, 1.0, seed=3)
    drawn = torch.rand(1)
    torch.manual_seed(3)
    Generator.for_codec(SpecgramCodec(16000, 0.25, "stereo", n_fft=512, hop_length=128, n_frames=32),
                        PitchVocab(), **NETWORK)
    assert torch.equal(torch.rand(1), drawn)


@pytest.mark.parametrize("latent_input", ["magenta", "dense"])
def test_the_in_place_steps_leave_the_callers_latents_alone(latent_input):
    """The frozen copy activates and normalises in place; only conv and linear outputs may be overwritten,
    never the latents handed in (the dense input normalises z itself)."""
    from gansynth.core.frozen import LeakyPixelNorm

    codec = SpecgramCodec(16000, 0.25, "stereo", n_fft=512, hop_length=128, n_frames=32)
    torch.manual_seed(0)
    generator = Generator.for_codec(codec, PitchVocab(), **dict(NETWORK, latent_input=latent_input)).eval()
    synth = Synth(generator, codec, PitchVocab(), [1] * 61, 5, 1.0, LATENT, torch.device("cpu"), batch_size=8)
    fused = [m for m in synth.network.modules() if isinstance(m, LeakyPixelNorm)]
    assert len(fused) == 1 + 1 + 2 * 4  # the input layer's, block 1's one conv, two per later block
    assert not any(type(m) is torch.nn.LeakyReLU for m in synth.network.modules())
    z = torch.randn(len(PITCHES), LATENT, generator=torch.Generator().manual_seed(1))
    kept = z.clone()
    synth.generate(PITCHES, z)
    assert torch.equal(z, kept)
