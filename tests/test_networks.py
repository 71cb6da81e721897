"""Progressive G and D: shapes per stage, fade-in blending, attention, layer maths, parameter counts."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from gansynth.core.frozen import frozen_generator
from gansynth.core.layers import (
    EqualizedCollapse,
    EqualizedConv2d,
    EqualizedUpsamplingConv2d,
    LatentToGrid,
    LayerError,
    MinibatchStddev,
    PixelNorm,
    SelfAttention2d,
    upsampling_kernel,
)
from gansynth.core.networks import Discriminator, Generator, NetworkError, with_category, with_frame_levels

torch.set_num_threads(2)

PAPER = dict(image_shape=(2, 128, 1024), num_blocks=7, attention_areas=())
FORK = dict(image_shape=(4, 128, 1024), num_blocks=7)
TINY = dict(image_shape=(4, 32, 256), num_blocks=5, fmap_base=1024, fmap_max=128)
# attention moved to the 8x64 top block so gradient tests stay fast
SMALL_ATTENTION = dict(image_shape=(4, 8, 64), num_blocks=3, fmap_base=256, fmap_max=64, attention_areas=(512,))
# (blocks, alpha) for every stage of a 7-block schedule: stable stages alpha 1, fade-ins mid-way
STAGES_7 = [(1, 1.0)] + [(k, a) for k in range(2, 8) for a in (0.5, 1.0)]


def _latents(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 256, generator=generator), torch.randint(0, 61, (batch,), generator=generator)


@pytest.fixture(scope="module")
def paper_networks() -> tuple[Generator, Discriminator]:
    torch.manual_seed(0)
    return Generator(**PAPER).eval(), Discriminator(**PAPER).eval()


@pytest.fixture(scope="module")
def fork_networks_meta() -> tuple[Generator, Discriminator]:
    """Full-size stereo networks on the meta device: shapes propagate through the real code without compute."""
    with torch.device("meta"):
        return Generator(**FORK), Discriminator(**FORK)


@pytest.fixture(scope="module")
def tiny_networks() -> tuple[Generator, Discriminator]:
    torch.manual_seed(1)
    return Generator(**TINY), Discriminator(**TINY)


@pytest.mark.parametrize("blocks", range(1, 8))
def test_paper_stage_shapes(paper_networks, blocks):
    generator, discriminator = paper_networks
    alpha = 1.0 if blocks == 1 else 0.5  # a fade-in runs both the new and the previous block's path
    z, pitch = _latents(1)
    with torch.no_grad():
        image = generator(z, pitch, blocks, alpha)
        critic, logits = discriminator(image, blocks, alpha)
    assert image.shape == (1, 2, 2 * 2 ** (blocks - 1), 16 * 2 ** (blocks - 1))
    assert image.abs().max() <= 1.0
    assert critic.shape == (1,) and logits.shape == (1, 61)
    assert torch.isfinite(critic).all() and torch.isfinite(logits).all()


@pytest.mark.parametrize(("blocks", "alpha"), STAGES_7)
def test_fork_stage_shapes(fork_networks_meta, blocks, alpha):
    generator, discriminator = fork_networks_meta
    z, pitch = torch.empty(1, 256, device="meta"), torch.zeros(1, dtype=torch.long, device="meta")
    image = generator(z, pitch, blocks, alpha)
    critic, logits = discriminator(image, blocks, alpha)
    assert image.shape == (1, 4, 2 * 2 ** (blocks - 1), 16 * 2 ** (blocks - 1))
    assert critic.shape == (1,) and logits.shape == (1, 61)


def test_attention_sits_at_32x256_only(fork_networks_meta):
    generator, discriminator = fork_networks_meta
    g_attention = [name for name, m in generator.named_modules() if isinstance(m, SelfAttention2d)]
    d_attention = [m for m in discriminator.modules() if isinstance(m, SelfAttention2d)]
    assert generator.attention_blocks == [5] and discriminator.attention_blocks == [5]
    assert g_attention == ["blocks.4.6"]  # after block 5's second conv (7 layers: 2 x (conv, act, norm), attn)
    assert [m.query.out_features for m in d_attention] == [256 // 8]  # D: after conv1 -> nf(4) = 256
    assert generator.blocks[4][6].value.out_features == 128 // 2  # G: nf(5) = 128


def test_parameter_counts_match_paper():
    """facts 2.1: G ~ 7.31 M, D ~ 6.83 M; LatentToGrid has exactly the padded conv's parameter count."""
    generator, discriminator = Generator(**PAPER), Discriminator(**PAPER)
    g_count = sum(p.numel() for p in generator.parameters())
    d_count = sum(p.numel() for p in discriminator.parameters())
    assert abs(g_count - 7.31e6) < 5e3, g_count
    assert abs(d_count - 6.83e6) < 5e3, d_count


@pytest.mark.parametrize("blocks", range(2, 6))
def test_generator_alpha0_is_upsampled_previous_stage(tiny_networks, blocks):
    generator, _ = tiny_networks
    z, pitch = _latents(2)
    with torch.no_grad():
        faded = generator(z, pitch, blocks, 0.0)
        previous = generator(z, pitch, blocks - 1, 1.0)
    expected = previous.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.equal(faded, expected)


def test_generator_alpha1_ignores_previous_to_rgb(tiny_networks):
    generator, _ = tiny_networks
    z, pitch = _latents(2)
    with torch.no_grad():
        before = generator(z, pitch, 3, 1.0)
        half_before = generator(z, pitch, 3, 0.5)
        saved = generator.to_rgb[1][0].weight.clone()
        generator.to_rgb[1][0].weight.add_(1.0)
        after = generator(z, pitch, 3, 1.0)
        half_after = generator(z, pitch, 3, 0.5)
        generator.to_rgb[1][0].weight.copy_(saved)
    assert torch.equal(before, after)
    assert (half_before - half_after).abs().max() > 1e-2


def test_generator_fade_is_linear_in_alpha(tiny_networks):
    generator, _ = tiny_networks
    z, pitch = _latents(2)
    with torch.no_grad():
        old, new, quarter = (generator(z, pitch, 4, a) for a in (0.0, 1.0, 0.25))
    torch.testing.assert_close(quarter, 0.25 * new + 0.75 * old, atol=1e-6, rtol=0)


def test_generator_output_depends_on_pitch(tiny_networks):
    generator, _ = tiny_networks
    z, _ = _latents(1)
    with torch.no_grad():
        low = generator(z, torch.tensor([0]), 3, 1.0)
        high = generator(z, torch.tensor([60]), 3, 1.0)
    assert (low - high).abs().mean() > 1e-3


def _tiny_codec_and_vocab():
    from gansynth.core.pitch import PitchVocab
    from gansynth.core.spectral import SpecgramCodec

    codec = SpecgramCodec(audio_length=0.25, channel_mode="stereo", n_fft=512, hop_length=128, n_frames=32,
                          mel=False)
    return codec, PitchVocab(24, 84)


def test_harmonic_coordinates_mark_harmonics_of_the_asked_for_pitch():
    """At full width, comb cos is ~1 on the columns nearest k * f0 and the advance channels read the
    phase a steady harmonic advances per hop; coarse stages get the same channels at their centres."""
    from gansynth.core.harmonics import column_frequencies, harmonic_coordinates

    codec, vocab = _tiny_codec_and_vocab()
    table = harmonic_coordinates(codec, vocab, 256)  # [61, 5, 256]
    assert table.shape == (61, 5, 256)
    hz = column_frequencies(codec)
    a3 = vocab.index(57)  # 220 Hz: harmonics 2, 4, 6 at 440, 880, 1320 Hz
    for harmonic in (2, 4, 6):
        column = int((hz - 220.0 * harmonic).abs().argmin())
        assert table[a3, 0, column] > 0.9
        advance = 2 * torch.pi * harmonic * 220.0 * 128 / 16000
        torch.testing.assert_close(table[a3, 2, column], torch.tensor(advance).cos().float())
    assert table[a3, 0].min() < -0.9  # half-way between harmonics
    assert harmonic_coordinates(codec, vocab, 64).shape == (61, 5, 64)


def test_subharmonic_combs_tell_odd_harmonics_from_even_and_every_third():
    """The m = 2 comb reads -1 on odd harmonics and +1 on even ones, the m = 3 comb +1 on 3, 6, 9 only:
    the harmonic number that the first comb, equal on every harmonic, does not give."""
    from gansynth.core.harmonics import column_frequencies, harmonic_coordinates

    codec, vocab = _tiny_codec_and_vocab()
    table = harmonic_coordinates(codec, vocab, 256, subharmonic_combs=(2, 3))
    assert table.shape == (61, 9, 256)
    hz, a3 = column_frequencies(codec), vocab.index(57)
    for harmonic in range(1, 10):
        column = int((hz - 220.0 * harmonic).abs().argmin())
        assert table[a3, 0, column] > 0.9  # the first comb: every harmonic alike
        assert table[a3, 5, column] == pytest.approx((-1.0) ** harmonic, abs=0.1)
        assert (table[a3, 7, column] > 0.9) == (harmonic % 3 == 0)
    torch.testing.assert_close(table[:, :5], harmonic_coordinates(codec, vocab, 256))
    with pytest.raises(NetworkError, match="subharmonic_combs must be integers >= 2"):
        Generator(**TINY, harmonic_coordinates=True, subharmonic_combs=[1])
    with pytest.raises(NetworkError, match="subharmonic_combs needs harmonic_coordinates"):
        Generator(**TINY, subharmonic_combs=[2])


def test_generator_with_harmonic_coordinates_builds_from_the_codec():
    codec, vocab = _tiny_codec_and_vocab()
    network = dict(num_blocks=5, fmap_base=1024, fmap_max=128, latent_dim=256, harmonic_coordinates=True)
    generator = Generator.for_codec(codec, vocab, **network)
    z, pitch = _latents(2)
    for blocks, alpha in ((1, 1.0), (3, 0.5), (5, 1.0)):
        assert generator(z, pitch, blocks, alpha).shape == (2, 4, *generator.resolution(blocks))
    assert not any("coordinates" in key for key in generator.state_dict())  # rebuilt from the codec, not saved
    with pytest.raises(NetworkError, match="harmonic_coordinates"):
        Generator(**TINY, harmonic_coordinates=True)


def test_generator_without_the_one_hot_takes_the_pitch_from_the_harmonic_coordinates_alone():
    codec, vocab = _tiny_codec_and_vocab()
    network = dict(num_blocks=5, fmap_base=1024, fmap_max=128, latent_dim=256, harmonic_coordinates=True)
    generator = Generator.for_codec(codec, vocab, **network, pitch_one_hot=False)
    assert generator.input_layer[0].weight.shape[1] == 256  # z only
    z, _ = _latents(1)
    low, high = (generator(z, torch.tensor([p]), 5, 1.0) for p in (10, 30))
    assert (low - high).abs().max() > 1e-3  # the coordinates still tell G the pitch
    with pytest.raises(NetworkError, match="pitch_one_hot=false needs harmonic_coordinates"):
        Generator(**TINY, pitch_one_hot=False)


def test_block_latent_channels_give_every_block_its_own_map_of_z():
    """z reaches the top block directly: changing only the top block's map of z changes the full-size
    picture and leaves the coarser stages as they were."""
    torch.manual_seed(0)
    generator = Generator(**TINY, block_latent_channels=16)
    for with_latent, without in zip(generator.blocks, Generator(**TINY).blocks):
        assert with_latent[0].weight.shape[1] == without[0].weight.shape[1] + 16
    z, pitch = _latents(2)
    before = [generator(z, pitch, blocks, 1.0) for blocks in (4, 5)]
    with torch.no_grad():
        generator.latent_maps[4].weight.normal_()
    assert torch.equal(generator(z, pitch, 4, 1.0), before[0])
    assert (generator(z, pitch, 5, 1.0) - before[1]).abs().max() > 1e-3
    # the render path folds the maps like every linear layer
    torch.testing.assert_close(frozen_generator(generator)(z, pitch, 5, 1.0), generator(z, pitch, 5, 1.0),
                               atol=1e-4, rtol=0)
    assert not Generator(**TINY).latent_maps  # off by default: no parameters, older checkpoints load
    with pytest.raises(NetworkError, match="block_latent_channels must be >= 0"):
        Generator(**TINY, block_latent_channels=-1)


def test_latent_categories_let_g_jump_where_z_moves_a_hair():
    """The category is the argmax of z's first K entries, fed one-hot beside z: moving z by 0.02 across the
    point where entries 0 and 1 tie changes the picture far more than the same step anywhere else. Without
    categories (the control) both steps change it alike: a smooth G of a Gaussian z has no such edge."""
    z = torch.zeros(3, 256)
    z[:, 1] = 1.0
    z[:, 0] = torch.tensor([0.97, 0.99, 1.01])  # the argmax moves from entry 1 to entry 0 between the last two
    pitch = torch.zeros(3, dtype=torch.long)
    jumps = {}
    for categories in (0, 4):
        torch.manual_seed(0)
        generator = Generator(**TINY, latent_categories=categories, block_latent_channels=8)
        with torch.no_grad():
            image = generator(z, pitch, 5, 1.0)
        jumps[categories] = ((image[2] - image[1]).abs().mean() / (image[1] - image[0]).abs().mean()).item()
    assert jumps[4] > 5 and 0.5 < jumps[0] < 2  # measured 9.2 and 1.0
    # the render path folds the category's weights like z's (generator: the one with categories)
    torch.testing.assert_close(frozen_generator(generator)(z, pitch, 5, 1.0), image, atol=1e-4, rtol=0)
    with pytest.raises(NetworkError, match="latent_categories must be 0 or an integer in 2..latent_dim=256"):
        Generator(**TINY, latent_categories=1)


def test_with_category_puts_the_largest_entry_at_the_asked_category_and_keeps_the_draws():
    """Swapping two of K i.i.d. entries keeps their joint law, so the latent is a draw on condition of its
    category: each category's mean of z's first K entries is the same up to where the maximum sits."""
    torch.manual_seed(0)
    z, category = torch.randn(30000, 8), torch.randint(0, 3, (30000,))
    moved = with_category(z, category, 3)
    assert torch.equal(moved[:, :3].argmax(1), category) and torch.equal(moved[:, 3:], z[:, 3:])
    assert torch.equal(moved[:, :3].sort(1).values, z[:, :3].sort(1).values)  # the same three numbers
    top = moved[category == 2, :3].mean(0)  # the expected maximum of three normals is 0.846
    assert top[2].item() == pytest.approx(0.846, abs=0.03) and top[:2].mean().item() == pytest.approx(-0.423, abs=0.03)


def test_the_instrument_projection_scores_a_note_by_the_instrument_it_claims():
    torch.manual_seed(0)
    discriminator = Discriminator(**TINY, instrument_classes=3)
    image = torch.randn(2, 4, 32, 256).clamp(-1, 1)
    with torch.no_grad():
        as_0 = discriminator(image, 5, 1.0, instruments=torch.tensor([0, 0]))[0]
        as_2 = discriminator(image, 5, 1.0, instruments=torch.tensor([2, 2]))[0]
    assert (as_0 - as_2).abs().min() > 1e-3  # the same notes, another instrument: another score
    with pytest.raises(NetworkError, match="instruments are given exactly when instrument_classes > 0"):
        discriminator(image, 5, 1.0)
    with pytest.raises(NetworkError, match="instruments are given exactly when instrument_classes > 0"):
        Discriminator(**TINY)(image, 5, 1.0, instruments=torch.tensor([0, 0]))


def _harmonic_note(codec, midi: int) -> torch.Tensor:
    """[1, ch, n] a decaying note with a 1/k harmonic roll-off and its own phases: not the flat comb."""
    t = torch.arange(codec.n_samples, dtype=torch.float64) / codec.sample_rate
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    k = torch.arange(1, int(codec.sample_rate / 2 // f0) + 1, dtype=torch.float64)[:, None]
    wave = (torch.sin(2 * torch.pi * f0 * k * t + k * k) / k).sum(0) * torch.exp(-6.0 * t)
    return (0.5 * wave / wave.abs().max()).float().expand(codec.audio_channels, -1)[None]


def test_comb_if_is_the_phase_a_harmonic_note_of_that_pitch_needs():
    """A note decoded with its magnitude and the comb's IF of its own pitch keeps its harmonics clean
    (noisiness within 3 dB of the note's own round trip); the comb of the next semitone smears it."""
    from gansynth.core.harmonics import comb_if
    from gansynth.core.pitch import PitchVocab
    from gansynth.core.spectral import SpecgramCodec
    from gansynth.evaluation.timbre import timbre_features

    codec = SpecgramCodec(audio_length=0.25, n_fft=512, hop_length=128, n_frames=32, mel_matrix="independent")
    vocab = PitchVocab(48, 72)
    combs = comb_if(codec, vocab, [(32, 256), (8, 64)])
    assert [tuple(c.shape) for c in combs] == [(25, 1, 32, 256), (25, 1, 8, 64)]
    image = codec.encode(_harmonic_note(codec, 60))  # [1, 2, 32, 256]

    def noisiness(comb_pitch: int | None) -> float:
        swapped = image.clone()
        if comb_pitch is not None:
            swapped[:, 1:] = combs[0][vocab.index(comb_pitch)]
        return float(timbre_features(codec.decode(swapped), torch.tensor([60]), codec.sample_rate)[0, -1])

    own = noisiness(None)
    assert own < -15.0  # energy between the harmonics, dB relative to on them
    assert noisiness(60) < own + 3.0
    assert noisiness(61) > own + 15.0


def test_generator_with_comb_if_reads_the_comb_of_the_asked_for_pitch():
    codec, vocab = _tiny_codec_and_vocab()
    network = dict(num_blocks=5, fmap_base=1024, fmap_max=128, latent_dim=256, comb_if=True)
    generator = Generator.for_codec(codec, vocab, **network).eval()
    assert [tuple(generator.get_buffer(f"comb_if_{i}").shape[-2:]) for i in range(5)] == \
        [generator.resolution(b) for b in range(1, 6)]
    assert not any("comb_if" in key for key in generator.state_dict())  # rebuilt from the codec, not saved
    z, pitch = _latents(2)
    before = generator(z, pitch, 5, 1.0)
    generator.get_buffer("comb_if_4")[pitch] += 1.0
    assert (generator(z, pitch, 5, 1.0) - before).abs().max() > 1e-3
    with pytest.raises(NetworkError, match="comb_if"):
        Generator(**TINY, comb_if=True)


def test_time_coordinates_give_every_block_its_frames_place_in_the_clip():
    """Each block's first conv gets one more input channel, which reads -1 at the first frame and 1 at the
    last, the same for every frequency column and every note; without the option the block sees none."""
    torch.manual_seed(0)
    plain, timed = Generator(**TINY), Generator(**TINY, time_coordinates=True)
    seen = {}
    for i, block in enumerate(timed.blocks):
        block[0].register_forward_hook(lambda module, args, out, i=i: seen.__setitem__(i, args[0]))
        assert block[0].weight.shape[1] == plain.blocks[i][0].weight.shape[1] + 1
    z, pitch = _latents(3)
    timed(z, pitch, 5, 1.0)
    for i, features in seen.items():
        h, w = timed.resolution(i + 1)
        expected = torch.linspace(-1.0, 1.0, h)[None, :, None].expand(3, h, w)
        last_channel = features[1][-1][:, -1] if i else features[:, -1]  # later blocks get (x, extras) apart
        torch.testing.assert_close(last_channel, expected)


class ConvolutionInputs(TorchDispatchMode):
    """Records the input of every convolution run inside it (plain or transposed, a layer's or a functional call)."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution.default:
            self.inputs.append(args[0])
        return func(*args, **(kwargs or {}))


def test_a_channels_last_generator_feeds_every_conv_channels_last():
    """Each block's conv reads its features joined with the coordinate maps; ``torch.cat`` made that join NCHW
    beside a channels_last map, and the conv then transposed all of it (6 % of the time in
    a profile of tiny training steps). In training and in the render copy, every conv input stays channels_last."""
    codec, vocab = _tiny_codec_and_vocab()
    network = dict(num_blocks=5, fmap_base=1024, fmap_max=128, latent_dim=256, harmonic_coordinates=True,
                   time_coordinates=True, block_latent_channels=16)
    generator = Generator.for_codec(codec, vocab, **network).to(memory_format=torch.channels_last)
    z, pitch = _latents(2)
    for network in (generator, frozen_generator(generator)):
        with torch.no_grad(), ConvolutionInputs() as convolutions:
            network(z, pitch, 5, 1.0)
        maps = [x for x in convolutions.inputs if x.shape[1] > 1 and x.shape[2] * x.shape[3] > 1]  # layout-ambiguous ones aside
        assert len(maps) >= 9 and all(x.is_contiguous(memory_format=torch.channels_last) for x in maps)


@pytest.mark.parametrize("blocks, alpha", [(5, 1.0), (3, 0.5)])
def test_comb_phase_generator_draws_the_magnitude_and_takes_the_combs_phase(blocks, alpha):
    """Every IF channel of G's output is the normalised comb IF of the asked-for pitch at the stage's
    resolution, whatever z; the magnitudes are G's own, and only they carry a gradient back into G."""
    from gansynth.core.harmonics import comb_if

    codec, vocab = _tiny_codec_and_vocab()
    network = dict(num_blocks=5, fmap_base=1024, fmap_max=128, latent_dim=256, comb_phase=True)
    generator = Generator.for_codec(codec, vocab, **network)
    assert not any("phase" in key for key in generator.state_dict())  # rebuilt from the codec, not saved
    z, pitch = _latents(2)
    image = generator(z, pitch, blocks, alpha)  # [2, 4, h, w]
    comb = comb_if(codec, vocab, [generator.resolution(blocks)])[0][pitch]  # [2, 1, h, w] raw IF
    expected = codec.normalize_if(comb)
    for channel in (1, 3):
        torch.testing.assert_close(image[:, channel: channel + 1], expected)
    other = generator(torch.randn_like(z), pitch, blocks, alpha)  # other latents, the same pitches
    assert (other[:, 0::2] - image[:, 0::2]).abs().mean() > 1e-3 and torch.equal(other[:, 1::2], image[:, 1::2])
    image[:, 1::2].sum().backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in generator.parameters())
    real = torch.rand(2, 4, *generator.resolution(blocks))
    swapped = generator.with_comb_phase(real, pitch, blocks)
    assert torch.equal(swapped[:, 0::2], real[:, 0::2]) and torch.equal(swapped[:, 1::2], image[:, 1::2].detach())
    with pytest.raises(NetworkError, match="comb_phase"):
        Generator(**TINY, comb_phase=True)


def test_dense_latent_input_keeps_the_one_hot_at_one_and_uses_a_dense_gain():
    magenta = Generator(**TINY)
    dense = Generator(**TINY, latent_input="dense")
    layer = dense.input_layer[0]
    assert layer.scale == pytest.approx((2.0 / (256 + 61)) ** 0.5)
    assert magenta.input_layer[0].scale == pytest.approx((2.0 / ((256 + 61) * 2 * 16)) ** 0.5)
    with pytest.raises(NetworkError, match="latent_input"):
        Generator(**TINY, latent_input="mapping")


@pytest.mark.parametrize("blocks", range(2, 6))
def test_discriminator_alpha0_is_previous_stage_on_pooled_input(tiny_networks, blocks):
    _, discriminator = tiny_networks
    h, w = discriminator.resolution(blocks)
    x = torch.rand(2, 4, h, w, generator=torch.Generator().manual_seed(blocks)) * 2 - 1
    with torch.no_grad():
        faded = discriminator(x, blocks, 0.0)
        previous = discriminator(F.avg_pool2d(x, 2), blocks - 1, 1.0)
    assert torch.equal(faded[0], previous[0]) and torch.equal(faded[1], previous[1])


def test_discriminator_alpha1_ignores_previous_from_rgb(tiny_networks):
    _, discriminator = tiny_networks
    x = torch.rand(2, 4, 8, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        before, half_before = discriminator(x, 3, 1.0)[0], discriminator(x, 3, 0.5)[0]
        saved = discriminator.from_rgb[1][0].weight.clone()
        discriminator.from_rgb[1][0].weight.add_(1.0)
        after, half_after = discriminator(x, 3, 1.0)[0], discriminator(x, 3, 0.5)[0]
        discriminator.from_rgb[1][0].weight.copy_(saved)
    assert torch.equal(before, after)
    assert (half_before - half_after).abs().max() > 1e-3


def test_attention_is_identity_at_init():
    attention = SelfAttention2d(32)
    x = torch.randn(2, 32, 8, 16)
    assert attention.gamma.item() == 0.0
    assert torch.equal(attention(x), x) and torch.equal(attention(x, double_backward=True), x)


def _active_attention(channels: int) -> SelfAttention2d:
    torch.manual_seed(3)
    attention = SelfAttention2d(channels)
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    return attention.eval()  # eval: no power iteration, so both calls see the same normalised weights


def test_fused_and_explicit_attention_agree_fp32():
    attention = _active_attention(64)
    x = torch.randn(2, 64, 16, 64)
    with torch.no_grad():
        fused, explicit = attention(x), attention(x, double_backward=True)
    assert (fused - x).abs().mean() > 1e-2  # the branch contributes
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)


def test_fused_and_explicit_attention_agree_bf16_autocast():
    attention = _active_attention(64)
    x = torch.randn(2, 64, 16, 64)
    with torch.no_grad():
        reference = attention(x, double_backward=True) - x
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fused = attention(x).float() - x
            explicit = attention(x, double_backward=True).float() - x
    scale = reference.abs().max()
    assert (fused - reference).abs().max() < 0.03 * scale
    assert (explicit - reference).abs().max() < 0.03 * scale


def _autograd_node_names(tensor: torch.Tensor) -> set[str]:
    names, stack, seen = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(node.name())
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def test_fused_attention_reaches_flash_kernel_on_cpu():
    """Guards against SDPA's silent fallback to the materialising math path (unequal widths, strides)."""
    attention = _active_attention(64)
    x = torch.randn(1, 64, 16, 64, requires_grad=True)
    names = _autograd_node_names(attention(x))
    assert any("FlashAttentionForCpu" in name for name in names), sorted(names)


def test_gradient_penalty_double_backward_through_attention_by_default():
    torch.manual_seed(4)
    discriminator = Discriminator(**SMALL_ATTENTION)
    attention = discriminator.blocks[1].attention
    with torch.no_grad():
        attention.gamma.fill_(0.5)  # at gamma = 0 only gamma itself would get a gradient
    x_hat = torch.randn(2, 4, 8, 64, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    critic, _ = discriminator(x_hat, 3, 0.5)
    (slopes,) = torch.autograd.grad(critic.sum(), x_hat, create_graph=True)
    penalty = ((slopes.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
    penalty.backward()
    grads = {name: p.grad for name, p in attention.named_parameters()}
    assert len(grads) == 5  # gamma + four spectrally normalised convs
    for name, grad in grads.items():
        assert grad is not None and torch.isfinite(grad).all(), name
        assert grad.abs().max() > 0, name


def test_discriminator_fused_attention_gives_the_same_scores():
    torch.manual_seed(7)
    discriminator = Discriminator(**SMALL_ATTENTION).eval()  # eval: spectral norm stops its power iteration
    with torch.no_grad():
        discriminator.blocks[1].attention.gamma.fill_(1.0)
        x = torch.rand(2, 4, 8, 64, generator=torch.Generator().manual_seed(8)) * 2 - 1
        explicit_critic, explicit_logits = discriminator(x, 3, 1.0)
        fused_critic, fused_logits = discriminator(x, 3, 1.0, fused_attention=True)
    torch.testing.assert_close(fused_critic, explicit_critic, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fused_logits, explicit_logits, atol=1e-5, rtol=1e-5)


def test_networks_with_attention_run_under_bf16_autocast():
    torch.manual_seed(6)
    generator, discriminator = Generator(**SMALL_ATTENTION), Discriminator(**SMALL_ATTENTION)
    z, pitch = _latents(2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        image = generator(z, pitch, 3, 0.5)
        critic, logits = discriminator(image, 3, 0.5)
    assert image.shape == (2, 4, 8, 64)
    assert torch.isfinite(critic.float()).all() and torch.isfinite(logits.float()).all()


def test_latent_to_grid_equals_padded_valid_conv():
    """The linear first layer reproduces Magenta's zero-padded (h, w) VALID conv, weights and gain included."""
    torch.manual_seed(0)
    layer = LatentToGrid(in_features=5, channels=3, shape=(2, 4))
    with torch.no_grad():
        layer.bias.normal_()
        x = torch.randn(2, 5)
        kernel = layer.weight.view(3, 2, 4, 5).permute(0, 3, 1, 2).flip(2, 3)  # [C, in, h, w]
        padded = F.pad(x[:, :, None, None], (3, 3, 1, 1))  # [B, in, 2h-1, 2w-1]
        expected = F.conv2d(padded, kernel * (2.0 / (2 * 4 * 5)) ** 0.5, layer.bias)
        torch.testing.assert_close(layer(x), expected, atol=1e-6, rtol=1e-5)


def test_equalized_conv_has_he_gain():
    """N(0, 1) weights times sqrt(2 / fan_in): unit-variance input gives output variance 2."""
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 256, 3, padding=1)
    output = conv(torch.randn(4, 64, 16, 16))[:, :, 1:-1, 1:-1]  # skip zero-padded borders
    assert abs(output.var().item() - 2.0) < 0.1


@pytest.mark.parametrize("extra_channels, height, width", [(0, 4, 8), (3, 4, 8), (2, 1, 3), (1, 3, 5)])
def test_upsampling_conv_is_the_conv_of_the_upsampled_map_with_the_same_gradients(extra_channels, height, width):
    """G's first block conv takes the coarse map and the extra channels apart; its output and the gradients of
    its weight, bias and both inputs equal those of the equalised 3x3 conv of [x upsampled 2x, extras]."""
    torch.manual_seed(0)
    layer = EqualizedUpsamplingConv2d(6, extra_channels, 5)
    reference = EqualizedConv2d(6 + extra_channels, 5, 3, padding=1)
    with torch.no_grad():
        layer.bias.normal_()
        reference.load_state_dict(layer.state_dict())  # the same parameters, the same checkpoint keys
    x = torch.randn(2, 6, height, width, requires_grad=True)
    extras = [torch.randn(2, 1, 2 * height, 2 * width, requires_grad=True) for _ in range(extra_channels)]
    target = torch.randn(2, 5, 2 * height, 2 * width)
    folded = layer((x, extras))
    (folded * target).sum().backward()
    gradients = [t.grad.clone() for t in (x, *extras, layer.weight, layer.bias)]
    for t in (x, *extras):
        t.grad = None
    expected = reference(torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), *extras], dim=1))
    (expected * target).sum().backward()
    torch.testing.assert_close(folded, expected, atol=1e-5, rtol=1e-5)
    for got, want in zip(gradients, [t.grad for t in (x, *extras, reference.weight, reference.bias)]):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)
    frozen = layer.folded()
    with torch.no_grad():
        torch.testing.assert_close(frozen((x, extras)), expected, atol=1e-5, rtol=1e-5)


def test_the_upsampling_kernel_is_summed_in_fp32_under_bf16_autocast():
    """Each transposed tap sums up to four weights; summed in bf16 it would round once more than the conv it
    replaces (which casts each weight once), so the fold runs outside autocast and the conv casts the sum."""
    weight = torch.randn(5, 6, 3, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kernel = upsampling_kernel(weight)
    assert kernel.dtype == torch.float32
    torch.testing.assert_close(kernel, upsampling_kernel(weight))


@pytest.mark.parametrize("channels_last", [False, True])
def test_collapse_is_the_valid_conv_with_the_same_penalty_gradients(channels_last):
    """D's last conv as one matmul: the same scores as the VALID conv over the whole map, the same input
    gradient, and the same weight and bias gradients of a gradient penalty built on that input gradient."""
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    layer = EqualizedCollapse(6, 5, (2, 4)).double().to(memory_format=layout)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(3, 6, 2, 4, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_(True)

    def penalty_step(conv):
        score = conv(x)
        (grad,) = torch.autograd.grad(score.square().sum(), x, create_graph=True)
        (grad.square().sum() + score.sum()).backward()
        gradients = [layer.weight.grad.clone(), layer.bias.grad.clone()]
        layer.zero_grad()
        return score, grad, gradients

    collapsed = penalty_step(layer)
    expected = penalty_step(lambda x: F.conv2d(x, layer.weight * layer.scale, layer.bias))
    assert collapsed[0].shape == (3, 5, 1, 1)
    for got, want in zip([collapsed[0], collapsed[1], *collapsed[2]], [expected[0], expected[1], *expected[2]]):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_pixel_norm_gives_unit_mean_square():
    x = torch.randn(3, 16, 4, 4) * torch.tensor([0.1, 5.0, 30.0]).view(3, 1, 1, 1)
    mean_square = PixelNorm()(x).square().mean(dim=1)
    torch.testing.assert_close(mean_square, torch.ones_like(mean_square), atol=1e-5, rtol=0)


def test_minibatch_stddev_appends_mean_batch_stddev():
    x = torch.tensor([[[[1.0, 2.0]]], [[[3.0, 6.0]]]])  # [2, 1, 1, 2]: batch stddevs 1 and 2
    out = MinibatchStddev(eps=0.0)(x)
    assert out.shape == (2, 2, 1, 2)
    torch.testing.assert_close(out[:, 1], torch.full((2, 1, 2), 1.5))
    wide = torch.randn(4, 8, 2, 16).to(memory_format=torch.channels_last)  # D's last block: its conv reads NHWC
    assert MinibatchStddev()(wide).is_contiguous(memory_format=torch.channels_last)


def test_attention_rejects_channels_not_multiple_of_8():
    with pytest.raises(LayerError, match="multiple of 8"):
        SelfAttention2d(12)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(image_shape=(2, 128, 1000)), "image_shape is 128x1000"),
        (dict(num_blocks=6), "end at"),
        (dict(start_shape=(2,)), "start_shape"),
        (dict(fmap_base=64, fmap_max=256), "width must be >= 1"),
    ],
)
def test_inconsistent_geometry_is_rejected(overrides, message):
    with pytest.raises(NetworkError, match=message):
        Generator(**{**PAPER, **overrides})


@pytest.mark.parametrize(("blocks", "alpha", "message"), [(0, 1.0, "stage_blocks"), (6, 1.0, "stage_blocks"),
                                                           (3, 1.5, "alpha"), (1, 0.5, "nothing to fade")])
def test_bad_stage_arguments_are_rejected(tiny_networks, blocks, alpha, message):
    generator, _ = tiny_networks
    z, pitch = _latents(1)
    with pytest.raises(NetworkError, match=message):
        generator(z, pitch, blocks, alpha)


def test_discriminator_rejects_wrong_resolution(tiny_networks):
    _, discriminator = tiny_networks
    with pytest.raises(NetworkError, match=r"input must be \[B, 4, 8, 64\]"):
        discriminator(torch.zeros(1, 4, 16, 128), 3, 1.0)


def test_generator_rejects_wrong_latent_size(tiny_networks):
    generator, _ = tiny_networks
    with pytest.raises(NetworkError, match=r"z must be \[B, 256\]"):
        generator(torch.zeros(1, 100), torch.zeros(1, dtype=torch.long), 2, 1.0)


@pytest.mark.parametrize("blocks", range(2, 6))
def test_skip_generator_fades_in_a_block_by_adding_its_detail(blocks):
    """skip_output: at alpha 0 the new block adds nothing (the previous stage, upsampled); at alpha 1 it
    adds its own output to the coarser blocks' sum, so the coarse picture is kept, not replaced."""
    torch.manual_seed(3)
    generator = Generator(**TINY, skip_output=True)
    z, pitch = _latents(2)
    with torch.no_grad():
        previous = generator(z, pitch, blocks - 1, 1.0)
        torch.testing.assert_close(generator(z, pitch, blocks, 0.0), F.interpolate(previous, scale_factor=2))
        assert (generator(z, pitch, blocks, 1.0) - generator(z, pitch, blocks, 0.0)).abs().mean() > 1e-3


@pytest.mark.parametrize("blocks", range(2, 6))
def test_zero_init_rgb_starts_every_new_block_at_the_previous_picture(blocks):
    """zero_init_rgb: an untrained block adds nothing even at alpha 1, so a fade-in cannot lose what the
    coarser stages draw (without it the same block changes the picture: the previous test)."""
    torch.manual_seed(3)
    generator = Generator(**TINY, skip_output=True, zero_init_rgb=True)
    z, pitch = _latents(2)
    with torch.no_grad():
        previous = generator(z, pitch, blocks - 1, 1.0)
        torch.testing.assert_close(generator(z, pitch, blocks, 1.0), F.interpolate(previous, scale_factor=2))
    assert previous.abs().mean() > 1e-2  # the first block still draws


def test_bilinear_skip_leaves_no_blocks_from_the_coarse_stages():
    """A new zero-initialised block shows the coarse picture upsampled: nearest repeats every pixel in
    2x2 blocks, bilinear (skip_upsample) does not."""
    z, pitch = _latents(2)
    pictures = {}
    for mode in ("nearest", "bilinear"):
        torch.manual_seed(3)
        generator = Generator(**TINY, skip_output=True, zero_init_rgb=True, skip_upsample=mode)
        with torch.no_grad():
            pictures[mode] = (torch.atanh(generator(z, pitch, 5, 1.0)), torch.atanh(generator(z, pitch, 4, 1.0)))
    for mode, (fine, coarse) in pictures.items():
        expected = F.interpolate(coarse, scale_factor=2, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
        torch.testing.assert_close(fine, expected, atol=1e-4, rtol=1e-4)
    steps = {mode: (fine[..., 0::2, :] - fine[..., 1::2, :]).abs().mean() for mode, (fine, _) in pictures.items()}
    assert steps["nearest"] < 1e-6 < 1e-3 < steps["bilinear"]


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_reals_fade_in_as_the_skip_generator_upsamples(mode):
    """At a fade's start the reals are their coarse picture upsampled the way G upsamples its coarse
    picture, so D cannot tell them apart by the upsampling alone; at its end they are themselves."""
    from gansynth.training.module import fade_reals

    x = torch.randn(2, 4, 8, 64)
    coarse = F.avg_pool2d(x, 2)
    torch.testing.assert_close(fade_reals(x, (8, 64), 0.0, mode),
                               F.interpolate(coarse, scale_factor=2, mode=mode,
                                             **({} if mode == "nearest" else {"align_corners": False})))
    torch.testing.assert_close(fade_reals(x, (8, 64), 1.0, mode), x)
    other = "bilinear" if mode == "nearest" else "nearest"
    assert (fade_reals(x, (8, 64), 0.0, mode) - fade_reals(x, (8, 64), 0.0, other)).abs().mean() > 0.1


def _skip_generator_and_twin(**option):
    """(codec, vocab, G, G with ``option``): a tiny-codec skip G with harmonic coordinates, and the same G built from
    the same seed with one more option, whose own weights start where it adds nothing."""
    codec, vocab = _tiny_codec_and_vocab()
    network = dict(num_blocks=5, fmap_base=1024, fmap_max=128, latent_dim=256, harmonic_coordinates=True,
                   skip_output=True)
    torch.manual_seed(0)
    plain = Generator.for_codec(codec, vocab, **network)
    torch.manual_seed(0)
    return codec, vocab, plain, Generator.for_codec(codec, vocab, **network, **option)


def test_harmonic_gains_weigh_the_coordinates_into_the_magnitudes_only():
    """harmonic_gains: untrained, G is the same G as without it (its gains start at zero); with gains, each
    magnitude channel of a one-block G moves by exactly its block's coordinates weighed by those gains
    before tanh, and no IF channel moves."""
    from gansynth.core.harmonics import harmonic_coordinates

    codec, vocab, plain, weighed = _skip_generator_and_twin(harmonic_gains=True)
    z, pitch = _latents(2)
    with torch.no_grad():
        torch.testing.assert_close(weighed(z, pitch, 5, 1.0), plain(z, pitch, 5, 1.0), rtol=0, atol=0)
        gains = weighed.comb_gains[0]
        torch.nn.init.zeros_(gains.weight)
        gains.bias.copy_(torch.linspace(-1, 1, len(gains.bias)))  # [audio channels x K] constant gains
        table = harmonic_coordinates(codec, vocab, weighed.resolution(1)[1])[pitch]  # [2, K, w]
        shift = torch.einsum("ak,bkw->baw", gains.bias.view(2, -1), table)[:, :, None, :]  # [2, 2 ch, 1, w]
        moved = torch.atanh(weighed(z, pitch, 1, 1.0)) - torch.atanh(plain(z, pitch, 1, 1.0))  # [2, 4, 2, 16]
    torch.testing.assert_close(moved[:, 0::2], shift.expand_as(moved[:, 0::2]), atol=1e-4, rtol=1e-4)
    assert moved[:, 1::2].abs().max() < 1e-5 < 0.1 < moved[:, 0::2].abs().max()
    with pytest.raises(NetworkError, match="harmonic_gains needs harmonic_coordinates"):
        Generator(**TINY, skip_output=True, harmonic_gains=True)


def test_harmonic_profile_adds_each_harmonics_level_on_its_columns_of_the_magnitudes_only():
    """harmonic_profile: untrained, G is the same G as without it (its map starts at zero). A profile whose level
    is 0.01 h at harmonic h = 1..8 (minus that on the second audio channel) moves each magnitude column at f by
    0.01 f / f0 up to the 8th harmonic, as the levels are interpolated between harmonics and fade below the
    fundamental; from 8 to 9 f0 it fades to 0, above it nothing moves, and no IF channel moves."""
    from gansynth.core.harmonics import column_frequencies
    from gansynth.core.pitch import midi_to_hz

    codec, vocab, plain, profiled = _skip_generator_and_twin(harmonic_profile=8)
    z, pitch = _latents(2)
    with torch.no_grad():
        torch.testing.assert_close(profiled(z, pitch, 5, 1.0), plain(z, pitch, 5, 1.0), rtol=0, atol=0)
        profiled.profile_map.bias.copy_(torch.cat([0.01 * torch.arange(1.0, 9.0), -0.01 * torch.arange(1.0, 9.0)]))
        before, after = plain(z, pitch, 5, 1.0), profiled(z, pitch, 5, 1.0)  # [2, 4, 32, 256]
    ratio = column_frequencies(codec)[None, :] / midi_to_hz(torch.tensor(vocab.low) + pitch.double())[:, None]
    shift = 0.01 * torch.where(ratio <= 8, ratio, 8 * (9 - ratio).clamp_min(0)).float()[:, None, :]  # [2, 1, 256]
    for channel, sign in ((0, 1.0), (2, -1.0)):  # compared after tanh, where atanh of a saturated pixel is not
        torch.testing.assert_close(after[:, channel], torch.tanh(torch.atanh(before[:, channel]) + sign * shift),
                                   atol=2e-5, rtol=0)
    torch.testing.assert_close(after[:, 1::2], before[:, 1::2], rtol=0, atol=0)
    assert (ratio > 9).any() and (after[:, 0] - before[:, 0]).abs().max() > 0.01
    with pytest.raises(NetworkError, match="harmonic_profile needs skip_output"):
        Generator(**TINY, harmonic_profile=8)


def test_projected_scores_add_the_logit_of_each_groups_instrument():
    """Groups of 2 notes: score column 0 plus the column of the group's instrument (its first note's), 1-based."""
    from gansynth.core.networks import projected_scores

    outputs = torch.tensor([[1.0, 10.0, 20.0, 30.0], [2.0, 40.0, 50.0, 60.0]])
    torch.testing.assert_close(projected_scores(outputs, torch.tensor([2, 2, 0, 0]), 2, "C"), torch.tensor([31.0, 42.0]))
    torch.testing.assert_close(projected_scores(outputs[:, :1], None, 2, "C"), torch.tensor([1.0, 2.0]))
    with pytest.raises(NetworkError, match="C: instruments are given exactly when instrument_classes > 0"):
        projected_scores(outputs, None, 2, "C")


def test_skip_upsample_needs_a_skip_generator():
    with pytest.raises(NetworkError, match="skip_upsample=bilinear needs skip_output"):
        Generator(**TINY, skip_upsample="bilinear")


def test_zero_init_rgb_needs_a_skip_generator():
    with pytest.raises(NetworkError, match="zero_init_rgb needs skip_output"):
        Generator(**TINY, zero_init_rgb=True)


@pytest.mark.parametrize("frame_level", [False, True])
@pytest.mark.parametrize("blocks", range(2, 6))
def test_input_skip_critic_starts_every_new_block_as_the_previous_critic(blocks, frame_level):
    """skip_input: an untrained block adds nothing, so at any alpha the stage's critic scores an image as
    the previous stage's critic scores it pooled; once the blocks draw, the score changes (the control).
    With frame levels too: each stage takes them from its own pooled image."""
    torch.manual_seed(3)
    critic = Discriminator(**TINY, skip_input=True, critic_frame_level=frame_level, magnitude_scale=0.066)
    x = torch.randn(3, 4, *critic.resolution(blocks))
    with torch.no_grad():
        previous = critic(F.avg_pool2d(x, 2), blocks - 1, 1.0)
        for alpha in (0.0, 1.0):
            for got, want in zip(critic(x, blocks, alpha), previous):
                torch.testing.assert_close(got, want)
        for block in critic.blocks[: blocks - 1]:  # blocks 2..k all draw (lower ones feed the stem)
            torch.nn.init.normal_(block.convs[-1][0].weight)
        assert (critic(x, blocks, 1.0)[0] - previous[0]).abs().mean() > 1e-3


def test_frame_level_critic_needs_the_codecs_magnitude_scale():
    with pytest.raises(NetworkError, match="critic_frame_level needs magnitude_scale"):
        Discriminator(**TINY, critic_frame_level=True)


def test_frame_levels_are_the_normalised_log_of_each_frames_mean_mel_power():
    """The level channel is a * log(mean_f exp(L)) + b for normalised magnitude a L + b: a 20 dB dip of one
    loud bin moves it by about the dip, the same dip in a quiet bin barely moves it, and IF is ignored."""
    scale, shift = 0.066, 0.11
    torch.manual_seed(0)
    log_power = torch.randn(2, 2, 4, 16)  # [B, audio channels, frames, bins]
    log_power[..., 3] = 8.0  # one loud harmonic
    def levels(log_power):
        pairs = torch.stack([scale * log_power + shift, torch.rand_like(log_power)], dim=2).flatten(1, 2)
        out = with_frame_levels(pairs, scale)
        assert out.shape == (2, 6, 4, 16) and torch.equal(out[:, :4], pairs)
        return out[:, 4:]
    want = scale * log_power.exp().mean(-1, keepdim=True).log() + shift
    torch.testing.assert_close(levels(log_power), want.expand_as(log_power))
    dip = math.log(100.0)  # 20 dB of power
    loud_dip, quiet_dip = log_power.clone(), log_power.clone()
    loud_dip[..., 3] -= dip
    quiet_dip[..., 0] -= dip
    assert (levels(log_power) - levels(loud_dip)).mean() > 0.6 * scale * dip
    assert (levels(log_power) - levels(quiet_dip)).abs().max() < 0.01 * scale * dip


def test_a_packing_critic_scores_consecutive_notes_together_and_names_each_notes_pitch():
    """critic_pack=2: one score per pair of consecutive notes, which changes when either note of its own
    pair changes and not when a note of the other pair does (with the minibatch stddev, the one statistic
    shared by the batch, held at zero); the pitch head answers per note."""
    class NoStddev(torch.nn.Module):
        def forward(self, x):
            return torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)

    torch.manual_seed(4)
    critic = Discriminator(**TINY, critic_pack=2, critic_frame_level=True, magnitude_scale=0.066)
    critic.stem.stddev = NoStddev()
    x = torch.randn(4, 4, *critic.resolution(2))
    with torch.no_grad():
        score, logits = critic(x, 2, 1.0)
        assert score.shape == (2,) and logits.shape == (4, 61)
        for note in range(4):
            changed = x.clone()
            changed[note] += 1.0
            new_score, new_logits = critic(changed, 2, 1.0)
            moved = (new_score - score).abs()
            assert moved[note // 2] > 1e-4 and moved[1 - note // 2] == 0
            others = [n for n in range(4) if n // 2 != note // 2]
            torch.testing.assert_close(new_logits[others], logits[others])


@pytest.mark.parametrize("pack, batch, message", [
    (0, 4, "^model.network: critic_pack must be an integer >= 1, got 0"),  # the config key, not a class
    (2, 3, "a batch of 3 does not split into packs of 2"),
])
def test_a_packing_critic_refuses_a_pack_size_that_does_not_fit(pack, batch, message):
    with pytest.raises(NetworkError, match=message):
        critic = Discriminator(**TINY, critic_pack=pack)
        critic(torch.randn(batch, 4, *critic.resolution(1)), 1, 1.0)
