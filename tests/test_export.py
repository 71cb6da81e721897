"""The sample pack: real wavs, an SFZ instrument that a real SFZ parser and linter (sfzlint) accept,
key and velocity ranges that tile the keyboard, and bad input refused before anything is written."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sfzlint.parser import SFZValidatorConfig, validate

from gansynth.commands import cli
from gansynth.commands.demo import compose_config
from gansynth.commands.export import ExportError, run_export
from gansynth.core.files import OutputError
from gansynth.core.synth import CheckpointError, RenderError
from gansynth.inference.render import random_anchors
from gansynth.inference.sfz import key_ranges, velocity_ranges
from test_render import CLIP, LATENT, SR, make_checkpoint

PEAK = 10 ** (-1 / 20)


def export(ckpt: Path, out: Path, *overrides: str) -> list[Path]:
    return run_export(compose_config("export", [f"ckpt_path={ckpt}", f"output_dir={out}", *overrides]))


def lint(sfz: Path) -> tuple[list, list[dict]]:
    """What `sfzlint <file>` reports (its validator: (level, message) of each error or warning) and each
    region's opcodes as its parser reads them."""
    problems = []
    instrument = validate(sfz, err_cb=lambda *problem: problems.append(problem[:2]),
                          config=SFZValidatorConfig(file_path=sfz))
    regions = [{str(k): v.value if hasattr(v, "value") else v for k, v in h.items()}
               for h in instrument.headers if h.token == "region"]
    return problems, regions


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", trained=range(48, 61))


@pytest.fixture(scope="module")
def pack(ckpt, tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("pack") / "pack"
    return out, export(ckpt, out, "seeds=[0,1]", "pitch_step=3")


def test_one_folder_and_sfz_per_timbre_and_a_readme(pack, ckpt):
    out, files = pack
    assert files == [out / "seed_0" / "seed_0.sfz", out / "seed_1" / "seed_1.sfz"]
    readme = (out / "README.txt").read_text()
    assert str(ckpt) in readme and "seed_1/seed_1.sfz: seed 1" in readme and "pitch_step: 3" in readme
    np.testing.assert_array_equal(np.load(out / "seed_1" / "latent.npy"), random_anchors(1, LATENT, 1)[0])


def test_sfzlint_finds_nothing_to_report(pack):
    assert [lint(sfz)[0] for sfz in pack[1]] == [[], []]


def test_sfzlint_reports_a_broken_region_and_a_missing_sample(pack):
    sfz = pack[1][0]
    broken = sfz.with_name("broken.sfz")  # beside the samples, so only the renamed one is missing
    broken.write_text(sfz.read_text().replace("pitch_keycenter=48", "pitch_keycenter=C-flat-9", 1)
                      .replace("060_vel127.wav", "060_vel128.wav"))
    problems = [message for _, message in lint(broken)[0]]
    broken.unlink()
    assert len(problems) == 2 and "pitch_keycenter" in problems[0] and "file not found" in problems[1]


def test_regions_tile_every_key_and_velocity_once_with_existing_samples(pack):
    sfz = pack[1][0]
    regions = lint(sfz)[1]
    assert len(regions) == 5 * 3  # MIDI 48, 51, 54, 57, 60 x 3 layers
    hits = np.zeros((128, 128), int)  # [key, velocity]
    for r in regions:
        assert (sfz.parent / r["sample"]).is_file()
        assert r["lokey"] <= r["pitch_keycenter"] <= r["hikey"]
        hits[r["lokey"]:r["hikey"] + 1, r["lovel"]:r["hivel"] + 1] += 1
    assert (hits[:, 1:] == 1).all() and (hits[:, 0] == 0).all()
    assert sorted({(r["lokey"], r["hikey"]) for r in regions}) == [(0, 49), (50, 52), (53, 55), (56, 58), (59, 127)]
    assert "ampeg_release=0.3" in sfz.read_text()


def test_samples_are_24_bit_peak_safe_faded_and_layered(pack):
    folder = pack[0] / "seed_0" / "samples"
    info = sf.info(folder / "060_vel127.wav")
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 2, CLIP, "PCM_24")
    layers = {v: sf.read(folder / f"060_vel{v:03d}.wav", dtype="float64", always_2d=True)[0] for v in (42, 85, 127)}
    assert np.abs(layers[127]).max() == pytest.approx(PEAK, abs=2 ** -22)
    for velocity, audio in layers.items():
        assert np.abs(audio[[0, -1]]).max() == 0.0  # the fades end at silence: no click at either end
        assert np.abs(audio).max() / np.abs(layers[127]).max() == pytest.approx(velocity / 127, abs=1e-4)


def test_long_samples_loop_the_clip(ckpt, tmp_path):
    export(ckpt, tmp_path / "long", "pitch_low=60", "pitch_high=60", "velocity_layers=1", "note_seconds=1.0",
           "sustain=loop")
    assert sf.info(tmp_path / "long" / "seed_0" / "samples" / "060_vel127.wav").frames == SR


def test_play_as_moves_every_timbre_into_the_instruments_category(tmp_path):
    """Each seed's latent with its two category entries swapped so viola's is the largest, the rest kept; an
    instrument the checkpoint lacks writes nothing."""
    ckpt = make_checkpoint(tmp_path / "c.ckpt", trained=range(60, 61), instruments=("oboe_068", "viola_041"))
    one_sample = ("velocity_layers=1", "seeds=[0,1]")
    files = export(ckpt, tmp_path / "pack", "play_as=viola_041", *one_sample)
    assert [f.parent.name for f in files] == ["seed_0_as_viola_041", "seed_1_as_viola_041"]
    for seed, sfz in enumerate(files):
        latent, drawn = np.load(sfz.parent / "latent.npy"), random_anchors(1, LATENT, seed)[0]
        assert latent[:2].argmax() == 1 and latent[:2].max() == drawn[:2].max()
        np.testing.assert_array_equal(latent[2:], drawn[2:])
        assert (sfz.parent / "samples" / "060_vel127.wav").exists()
    assert random_anchors(1, LATENT, 0)[0][:2].argmax() == 0  # seed 0 alone plays the oboe (the control)
    assert "seed 1, played as viola_041" in (tmp_path / "pack" / "README.txt").read_text()
    with pytest.raises(RenderError, match="play_as='tuba' is not one of the checkpoint's instruments: oboe_068, "):
        export(ckpt, tmp_path / "out", "play_as=tuba", *one_sample)
    assert not (tmp_path / "out").exists()


def test_ranges_give_each_key_to_the_nearest_sample():
    assert key_ranges([60]) == [(0, 127)]
    assert key_ranges([48, 52, 53]) == [(0, 50), (51, 52), (53, 127)]  # 50 is as near 48 as 52: the lower
    assert velocity_ranges(4) == [(1, 32), (33, 64), (65, 95), (96, 127)]


@pytest.mark.parametrize("overrides, error, message", [
    (["pitch_low=90", "pitch_high=100"], ExportError, r"pitch_low..pitch_high = 90..100 holds no trained pitch "
                                                      r"\(the model has 13 trained pitches in MIDI 48..60\)"),
    (["note_seconds=1.0"], ExportError, "note_seconds=1.0 is longer than the model's 0.25 s clip; add sustain=loop"),
    (["velocity_layers=0"], ValueError, "velocity_layers must be an integer in 1..127"),
    (["seeds=[]"], ExportError, "no timbre"),
    (["pitch_low=C4"], ExportError, "pitch_low must be a MIDI number or null, got 'C4'"),
    (["compile=1"], ExportError, "compile must be true or false, got 1"),
    (["seeds=[0]", "latents_files=[missing.npy]"], ValueError, "missing.npy: latents file not found"),
    (["play_as=viola_041"], RenderError, "play_as='viola_041' needs a checkpoint trained with "
                                         "model.instrument_projection=true"),
])
def test_bad_settings_write_nothing(ckpt, tmp_path, overrides, error, message):
    with pytest.raises(error, match=message):
        export(ckpt, tmp_path / "out", *overrides)
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint_and_unwritable_folder(ckpt, tmp_path):
    with pytest.raises(CheckpointError, match="nothing.ckpt: checkpoint file not found"):
        export(tmp_path / "nothing.ckpt", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "taken").write_bytes(b"an old file")
    with pytest.raises(OutputError, match=r"taken/pack: cannot write into this folder"):
        export(ckpt, tmp_path / "taken" / "pack")
    assert (tmp_path / "taken").read_bytes() == b"an old file"


@pytest.mark.parametrize("argv, message", [
    (["ckpt_path=missing.ckpt"], "{cwd}/missing.ckpt: checkpoint file not found"),
    (["pitch_stepp=2"], "pitch_stepp: no such setting (did you mean pitch_step?); add a new key with +pitch_stepp=..."),
    (["output_dir=pack"], "ckpt_path is required: add ckpt_path=... to the command line"),
])
def test_console_script_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    """`gansynth-export` as installed, run in this process (a new Python would import torch again)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["gansynth-export", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.export()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {message.format(cwd=tmp_path)}"]
    assert list(tmp_path.iterdir()) == []
