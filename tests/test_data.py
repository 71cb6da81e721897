"""The folder DataModule: mixed real files load right, bad folders fail with every bad file named,
and the spectrogram cache encodes each file exactly once per codec geometry."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf
import torch

from gansynth.training.data import AudioFolderDataModule, DatasetError, InstrumentPairs, StreamBatchSampler
from gansynth.core.spectral import SpecgramCodec

LOG_FLOOR = float(np.log(1e-6))


def write_tone(path: Path, midi: int, sample_rate: int = 16000, seconds: float = 0.28, channels: int = 1,
               subtype: str = "PCM_16", amplitude: float = 0.5) -> Path:
    """A sine at a MIDI pitch, written with soundfile in the requested format."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    tone = amplitude * np.sin(2 * np.pi * 440.0 * 2 ** ((midi - 69) / 12) * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.tile(tone[:, None], (1, channels)), sample_rate, subtype=subtype)
    return path


def module(path: Path, codec: dict, **kwargs) -> AudioFolderDataModule:
    return AudioFolderDataModule(str(path), codec, labels=kwargs.pop("labels", {"source": "nsynth"}), **kwargs)


def images_of(dm: AudioFolderDataModule) -> dict[str, np.ndarray]:
    """File name -> cached image [C, T, F], after prepare_data and setup."""
    dm.prepare_data()
    dm.setup("fit")
    return {f.name: dm._dataset[i][0].numpy() for i, f in enumerate(dm.scan().files)}


def count_encoded(dm: AudioFolderDataModule) -> int:
    """Clips passed through SpecgramCodec.encode while prepare_data runs."""
    original = SpecgramCodec.encode
    with mock.patch.object(SpecgramCodec, "encode", autospec=True, side_effect=original) as encode:
        dm.prepare_data()
    return sum(call.args[1].shape[0] for call in encode.call_args_list)


@pytest.fixture
def notes_copy(synthetic_notes, tmp_path) -> Path:
    """A private copy for tests that build a cache or change files (the shared folder stays clean)."""
    return Path(shutil.copytree(synthetic_notes, tmp_path / "notes"))


# ------------------------------------------------------------------------------------ loading


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """Rates 16k/22.05k/44.1k, PCM_16/PCM_24/FLOAT, mono/stereo, short and full-length clips,
    names with spaces and unicode, a subfolder and a stray text file."""
    root = tmp_path / "mixed"
    write_tone(root / "piano_000-060-100.wav", 60)
    write_tone(root / "a b" / "voix été_001-062-090.flac", 62, 22050, 0.2, 2, "PCM_24")
    write_tone(root / "sub" / "clé_002-064-080.wav", 64, 44100, 0.28, 2, "FLOAT")
    write_tone(root / "quiet tone_003-067-070.aiff", 67, 44100, 0.1, 1, "PCM_16")
    (root / "notes.txt").write_text("not audio")
    return root


def test_mixed_folder_loads_every_audio_file(mixed_folder, tiny_codec):
    dm = module(mixed_folder, tiny_codec, batch_size=4)
    report = dm.scan()
    dm.prepare_data()
    images, pitches, _ = next(iter(dm.train_dataloader()))
    assert (len(report.files), report.skipped_count) == (4, 1)
    assert dict(report.sample_rates) == {16000: 1, 22050: 1, 44100: 2}
    assert dict(report.channel_counts) == {1: 2, 2: 2}
    assert images.shape == (4, 2, 32, 256) and images.dtype == torch.float32
    assert sorted(pitches.tolist()) == [36, 38, 40, 43] and pitches.dtype == torch.long


def test_short_clips_are_zero_padded_at_the_end(mixed_folder, tiny_codec):
    image = images_of(module(mixed_folder, tiny_codec))["quiet tone_003-067-070.aiff"]
    # 0.1 s = 1600 samples at 16 kHz; frame t covers samples [128 t, 128 t + 512), so t >= 13 is padding.
    assert image[0, :9].max() > 0 and image[0, 14:].max() < LOG_FLOOR + 1e-3


def test_bit_depths_give_the_same_levels(tmp_path, tiny_codec):
    for i, subtype in enumerate(("PCM_16", "PCM_24", "FLOAT")):
        write_tone(tmp_path / f"tone_00{i}-069-100.wav", 69, subtype=subtype)
    a, b, c = images_of(module(tmp_path, tiny_codec)).values()
    loud = a[0] > -5  # bins carrying the tone
    assert loud.sum() > 100
    assert max(np.abs(a[0] - b[0])[loud].max(), np.abs(a[0] - c[0])[loud].max()) < 0.01


def test_sample_rates_are_converted_to_the_codec_rate(tmp_path, tiny_codec):
    for i, rate in enumerate((16000, 22050, 44100)):
        write_tone(tmp_path / f"tone_00{i}-069-100.wav", 69, sample_rate=rate)
    images = list(images_of(module(tmp_path, tiny_codec)).values())
    peaks = [int(image[0, 16].argmax()) for image in images]  # loudest mel bin mid-clip
    levels = [float(image[0, 16].max()) for image in images]
    assert len(set(peaks)) == 1 and max(levels) - min(levels) < 0.05


def test_stereo_codec_duplicates_mono_files(notes_copy, tiny_codec):
    image = next(iter(images_of(module(notes_copy, {**tiny_codec, "channel_mode": "stereo"})).values()))
    assert image.shape == (4, 32, 256) and np.array_equal(image[:2], image[2:])


def test_pitch_counts_follow_the_scanned_files(synthetic_notes, tiny_codec):
    counts = module(synthetic_notes, tiny_codec).pitch_counts
    assert len(counts) == 61 and sum(counts) == 8
    assert counts[58 - 24 : 62 - 24] == [2, 2, 2, 2]


def test_the_fingerprint_names_the_render_and_changes_with_any_file(notes_copy, tiny_codec):
    """A cache or a skipped file leave the fingerprint alone; one changed sample or a renamed file change it."""
    before = module(notes_copy, tiny_codec).scan().fingerprint()
    (notes_copy / "README.txt").write_text("not audio")
    module(notes_copy, tiny_codec).prepare_data()
    assert module(notes_copy, tiny_codec).scan().fingerprint() == before and len(before) == 64
    first = sorted(notes_copy.glob("*.wav"))[0]
    audio, rate = sf.read(first)
    audio[100] = -audio[100] + 0.01
    sf.write(first, audio, rate)
    changed = module(notes_copy, tiny_codec).scan().fingerprint()
    first.rename(first.with_name("renamed_" + first.name))
    assert len({before, changed, module(notes_copy, tiny_codec).scan().fingerprint()}) == 3


def test_out_of_vocabulary_pitches_are_skipped_and_counted(synthetic_notes, tiny_codec):
    report = module(synthetic_notes, tiny_codec, pitch_low=30, pitch_high=59).scan()
    assert (len(report.files), report.skipped_count) == (4, 4)
    assert report.skip_reasons == {"pitch outside vocabulary 30..59": 4}


def test_batch_size_changes_take_effect_at_the_next_loader(notes_copy, tiny_codec):
    dm = module(notes_copy, tiny_codec, batch_size=2)
    dm.prepare_data()
    first = dm.train_dataloader()
    dm.set_batch_size(4)
    second = dm.train_dataloader()
    assert (len(first), len(second)) == (4, 2) and next(iter(second))[0].shape[0] == 4


def test_two_workers_deliver_every_kept_item_once(notes_copy, tiny_codec):
    dm = module(notes_copy, tiny_codec, batch_size=3, num_workers=2)
    dm.prepare_data()
    batches = list(dm.train_dataloader())
    images = torch.cat([b[0] for b in batches])  # [6, 2, 32, 256]
    distinct = {image.sum().item() for image in images}
    assert len(batches) == 2 and images.shape[0] == 6 and len(distinct) == 6


def stream(start: int, rank: int, seed: int = 0) -> list[list[int]]:
    """One epoch of rank ``rank`` of 2 over 12 items, 3 per rank per batch, 2 from image 18 on."""
    return list(StreamBatchSampler(12, start, lambda images: 3 if images < 18 else 2, seed, rank, world_size=2))


def test_stream_sampler_gives_ranks_disjoint_shards_of_each_pass():
    rank0, rank1 = stream(0, 0), stream(0, 1)  # an epoch is 12 // (3 * 2) = 2 batches
    assert [len(b) for b in rank0 + rank1] == [3, 3, 3, 3]
    assert sorted(sum(rank0 + rank1, [])) == list(range(12))
    later = sum(stream(12, 0) + stream(12, 1), [])  # the second pass (images 12 to 21), reshuffled
    assert len(set(later)) == 10 and later != sum(rank0 + rank1, [])[:10]
    assert stream(0, 0, seed=1) != rank0


def test_stream_sampler_continues_from_any_image_count():
    for rank in (0, 1):
        assert stream(6, rank)[0] == stream(0, rank)[1]  # a loader built at 6 images (e.g. a resume)
        assert stream(18, rank)[0] == stream(12, rank)[1]
    # The batch size follows the schedule at the exact image count, not at the next epoch.
    assert [len(b) for b in stream(12, 0)] == [3, 2]


def test_fitted_normalizer_maps_the_cached_range_to_plus_minus_0_8(synthetic_notes, tiny_codec, tmp_path):
    dm = module(synthetic_notes, tiny_codec, fit_normalizer=True, cache_dir=str(tmp_path / "cache"))
    codec = dm.codec
    normalized = codec.normalize(torch.from_numpy(np.stack(list(images_of(dm).values()))))
    assert torch.allclose(normalized.amin(dim=(0, 2, 3)), torch.tensor(-0.8), atol=1e-5)
    assert torch.allclose(normalized.amax(dim=(0, 2, 3)), torch.tensor(0.8), atol=1e-5)


# ------------------------------------------------------------------------------------ bad folders


def test_empty_folder_is_an_error(tmp_path, tiny_codec):
    with pytest.raises(DatasetError, match="no usable audio files$"):
        module(tmp_path, tiny_codec).scan()


def test_folder_of_skipped_files_says_why_in_one_line(tmp_path, tiny_codec):
    (tmp_path / "readme.txt").write_text("notes")
    write_tone(tmp_path / "low_000-020-100.wav", 20)
    write_tone(tmp_path / "high_000-090-100.wav", 90)
    with pytest.raises(DatasetError) as caught:
        module(tmp_path, tiny_codec).scan()
    assert str(caught.value) == (f"{tmp_path}: no usable audio files (skipped: 1 not an audio file, "
                                 "2 pitch outside vocabulary 24..84)")


def test_missing_folder_is_an_error(tmp_path, tiny_codec):
    with pytest.raises(DatasetError, match="nowhere: data folder does not exist"):
        module(tmp_path / "nowhere", tiny_codec).scan()


def test_unlabelled_files_are_all_named(tmp_path, tiny_codec):
    write_tone(tmp_path / "foo.wav", 60)
    write_tone(tmp_path / "bar baz.wav", 62)
    with pytest.raises(DatasetError) as caught:
        module(tmp_path, tiny_codec).scan()
    message = str(caught.value)
    assert "(2 files)" in message
    assert "foo.wav: no pitch label" in message and "bar baz.wav: no pitch label" in message


def test_too_long_files_are_rejected_with_length_and_ceiling(tmp_path, tiny_codec):
    write_tone(tmp_path / "a_000-060-100.wav", 60, seconds=0.5)
    write_tone(tmp_path / "b_000-061-100.wav", 61, seconds=0.3, sample_rate=44100)
    with pytest.raises(DatasetError) as caught:
        module(tmp_path, tiny_codec).scan()
    message = str(caught.value)
    assert "a_000-060-100.wav: too long: 0.500 s" in message and "b_000-061-100.wav: too long: 0.300 s" in message
    assert message.count("exceeds the clip length 0.280 s (4480 samples)") == 2


def test_crop_mode_keeps_the_first_clip_length(tmp_path, tiny_codec):
    long = write_tone(tmp_path / "long" / "a_000-060-100.wav", 60, seconds=0.5)
    short = tmp_path / "short" / "a_000-060-100.wav"
    short.parent.mkdir()
    sf.write(short, sf.read(long, dtype="int16")[0][:4480], 16000, subtype="PCM_16")
    cropped = images_of(module(long.parent, tiny_codec, too_long="crop"))
    assert np.array_equal(cropped[long.name], images_of(module(short.parent, tiny_codec))[short.name])


def test_corrupt_file_is_named(synthetic_notes, tmp_path, tiny_codec):
    shutil.copytree(synthetic_notes, tmp_path, dirs_exist_ok=True)
    (tmp_path / "broken_000-060-100.wav").write_bytes(os.urandom(2000))
    with pytest.raises(DatasetError, match=r"files: broken_000-060-100.wav: not a readable audio file \([^\n]+\)$"):
        module(tmp_path, tiny_codec).scan()


@pytest.mark.parametrize("name, reason", [
    ("cut_000-060-100.wav", "the header promises 8960 bytes of audio, the file holds 7959"),
    ("cut_000-060-100.aiff", "the header promises 8968 bytes of audio, the file holds 7967"),  # SSND: + 8 bytes
    ("cut_000-060-100.flac", "the header promises 4480 frames but the last cannot be read: "
                             "Internal psf_fseek() failed."),
])
def test_scan_finds_truncated_files(name, reason, synthetic_notes, tmp_path, tiny_codec):
    shutil.copytree(synthetic_notes, tmp_path, dirs_exist_ok=True)
    whole = write_tone(tmp_path / name, 60).read_bytes()  # 4480 frames of 16-bit mono: 8960 bytes
    (tmp_path / name).write_bytes(whole[:-1001])
    with pytest.raises(DatasetError) as caught:
        module(tmp_path, tiny_codec).scan()
    assert str(caught.value) == f"{tmp_path}: bad audio files: {name}: truncated or corrupt ({reason})"


def test_every_bad_file_is_listed_in_one_error(tmp_path, tiny_codec):
    write_tone(tmp_path / "good_000-060-100.wav", 60)
    write_tone(tmp_path / "unlabelled.wav", 60)
    write_tone(tmp_path / "long_000-061-100.wav", 61, seconds=1.0)
    write_tone(tmp_path / "six_000-062-100.wav", 62, channels=3)
    (tmp_path / "junk_000-063-100.flac").write_bytes(b"\0" * 100)
    with pytest.raises(DatasetError) as caught:
        module(tmp_path, tiny_codec).scan()
    lines = str(caught.value).splitlines()
    assert lines[0].endswith("bad audio files (4 files):") and len(lines) == 5
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "junk_000-063-100.flac", "long_000-061-100.wav", "six_000-062-100.wav", "unlabelled.wav"]


def test_three_channel_files_need_downmix(tmp_path, tiny_codec):
    write_tone(tmp_path / "six_000-062-100.wav", 62, channels=3)
    with pytest.raises(DatasetError, match="has 3 channels; pass downmix=True"):
        module(tmp_path, tiny_codec).scan()
    assert len(images_of(module(tmp_path, tiny_codec, downmix=True))) == 1


def test_bad_codec_settings_fail_at_construction(tmp_path, tiny_codec):
    with pytest.raises(DatasetError, match="bad data settings: unknown codec settings: hop"):
        module(tmp_path, {**tiny_codec, "hop": 64})


def test_bad_label_settings_name_the_folder(tmp_path, tiny_codec):
    write_tone(tmp_path / "60.wav", 60)
    with pytest.raises(DatasetError, match=r"labels.source=regex needs labels.pattern"):
        module(tmp_path, tiny_codec, labels={"source": "regex"}).scan()


def test_too_few_files_for_one_batch_is_an_error(notes_copy, tiny_codec):
    dm = module(notes_copy, tiny_codec, batch_size=9)
    dm.prepare_data()
    with pytest.raises(DatasetError, match="8 usable files cannot fill one batch of 9"):
        dm.train_dataloader()


@pytest.mark.parametrize("kwargs, message", [
    (dict(too_long="trim"), "too_long='trim'"), (dict(batch_size=0), "batch_size must be a positive"),
    (dict(labels={"sorce": "nsynth"}), "unknown keys"), (dict(pitch_low=90), "low=90 is above high=84"),
])
def test_bad_settings_fail_at_construction(tmp_path, tiny_codec, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        module(tmp_path, tiny_codec, **kwargs)


# ------------------------------------------------------------------------------------ cache


def test_second_pass_encodes_nothing(notes_copy, tiny_codec):
    first = count_encoded(module(notes_copy, tiny_codec))
    second = count_encoded(module(notes_copy, tiny_codec))
    assert (first, second) == (8, 0)
    assert module(notes_copy, tiny_codec).scan().skipped_count == 0  # the cache folder is not scanned


def test_touched_file_is_encoded_again(notes_copy, tiny_codec):
    count_encoded(module(notes_copy, tiny_codec))
    touched = notes_copy / "synth_000-060-100.wav"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert count_encoded(module(notes_copy, tiny_codec)) == 1


def test_changed_file_gets_its_new_image(notes_copy, tiny_codec):
    name = "synth_000-060-100.wav"
    before = images_of(module(notes_copy, tiny_codec))[name]
    write_tone(notes_copy / name, 72)
    after = images_of(module(notes_copy, tiny_codec))[name]
    assert np.abs(after - before).max() > 1.0


def test_changed_geometry_makes_a_new_cache_but_normaliser_does_not(notes_copy, tiny_codec):
    count_encoded(module(notes_copy, tiny_codec))
    renormalised = count_encoded(module(notes_copy, {**tiny_codec, "norm_scale": [0.1, 0.5]}))
    linear = count_encoded(module(notes_copy, {**tiny_codec, "mel": False}))
    folders = [p for p in (notes_copy / ".gansynth_cache").iterdir() if p.is_dir()]
    assert (renormalised, linear, len(folders)) == (0, 8, 2)


def test_cache_dir_elsewhere_leaves_the_data_folder_alone(notes_copy, tiny_codec, tmp_path):
    dm = module(notes_copy, tiny_codec, cache_dir=str(tmp_path / "elsewhere"))
    dm.prepare_data()
    cached = list(dm.cache_folder.glob("*"))
    assert not (notes_copy / ".gansynth_cache").exists()
    assert len(cached) == 8 and all(p.suffix == ".npy" for p in cached)
    assert np.load(cached[0], mmap_mode="r").shape == (2, 32, 256)


# ------------------------------------------------------------------------------------ instrument pairs


def paths(*names: str) -> list[Path]:
    return [Path(f"/notes/{name}.wav") for name in names]


def test_a_note_is_partnered_uniformly_by_its_instrument_at_other_pitches():
    files = paths("oboe_068-060-100", "oboe_068-060-050", "oboe_068-062-100", "oboe_068-064-100",
                  "horn_060-060-100", "horn_060-067-100")
    pairs = InstrumentPairs(files, [60, 60, 62, 64, 60, 67], Path("/notes"))
    picks = Counter(pairs.partner(0, u) for u in np.linspace(0, 1, 1000, endpoint=False))
    assert sorted(picks) == [2, 3] and min(picks.values()) == 500  # never itself nor the other oboe at 60
    assert {pairs.partner(4, u) for u in (0.0, 0.5, 0.999)} == {5}
    assert {pairs.partner(3, u) for u in np.linspace(0, 1, 100, endpoint=False)} == {0, 1, 2}


def test_notes_that_cannot_be_paired_are_all_named():
    files = paths("oboe_068-060-100", "oboe_068-060-050", "horn_060-060-100", "horn_060-067-100")
    files.append(Path("/notes/take 3.wav"))
    with pytest.raises(DatasetError) as caught:
        InstrumentPairs(files, [60, 60, 60, 67, 61], Path("/notes"))
    assert str(caught.value).splitlines() == [
        "/notes: notes that cannot be paired (to train without pairs: data.instrument_pairs=false "
        "model.pair_critic_harmonics=0 model.instrument_projection=false) (3 files):",
        "  oboe_068-060-100.wav: data.instrument_pairs: instrument 'oboe_068' has no note at another pitch",
        "  oboe_068-060-050.wav: data.instrument_pairs: instrument 'oboe_068' has no note at another pitch",
        "  take 3.wav: data.instrument_pairs needs the instrument in the name (NAME_PPP-VVV)",
    ]


def test_paired_batches_put_each_note_beside_its_instrument_at_another_pitch(synthetic_notes, tiny_codec, tmp_path):
    """Every odd item of a batch is the even one's instrument at another pitch; the even items still walk
    the shuffled stream, and the pairing repeats for a loader built mid-stream (a resume)."""
    dm = module(synthetic_notes, tiny_codec, instrument_pairs=True, batch_size=4, cache_dir=str(tmp_path / "c"))
    dm.prepare_data()
    report = dm.scan()
    batches = list(dm.train_dataloader().batch_sampler)
    for batch in batches:
        for first, second in zip(batch[0::2], batch[1::2]):
            assert report.files[first].name[:-12] == report.files[second].name[:-12]  # synth_PPP: the program
            assert report.pitches[first] != report.pitches[second]
    pairs = InstrumentPairs(report.files, report.pitches, synthetic_notes)
    resumed = StreamBatchSampler(len(report.files), 4, lambda images: 4, 0, pairs=pairs)
    assert next(iter(resumed)) == batches[1]
    unpaired = list(module(synthetic_notes, tiny_codec, batch_size=4, cache_dir=str(tmp_path / "c"))
                    .train_dataloader().batch_sampler)
    assert [b[0::2] for b in batches] == [b[0::2] for b in unpaired]
    assert [b[1::2] for b in batches] != [b[1::2] for b in unpaired]


def test_batches_carry_each_notes_instrument_with_pairs_and_minus_one_without(synthetic_notes, tiny_codec, tmp_path):
    """The third item of a batch is the note's instrument index (its program here), the same for both notes
    of a pair; the shares the model balances against count each instrument's notes."""
    dm = module(synthetic_notes, tiny_codec, instrument_pairs=True, batch_size=4, cache_dir=str(tmp_path / "c"))
    dm.prepare_data()
    files = dm.scan().files
    programs = sorted({f.name[:-12] for f in files})
    _, _, instruments = next(iter(dm.train_dataloader()))
    order = next(iter(dm.train_dataloader().batch_sampler))
    assert instruments.tolist() == [programs.index(files[i].name[:-12]) for i in order]
    assert (instruments[0::2] == instruments[1::2]).all()
    assert dm.instrument_counts == [sum(f.name[:-12] == p for f in files) for p in programs]
    assert dm.instrument_names == programs
    unpaired = module(synthetic_notes, tiny_codec, batch_size=4, cache_dir=str(tmp_path / "c"))
    assert next(iter(unpaired.train_dataloader()))[2].tolist() == [-1] * 4 and unpaired.instrument_counts == []
