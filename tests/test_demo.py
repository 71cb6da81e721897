"""The README's first command, end to end on a short budget (slow: about two minutes)."""
from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch

from gansynth.commands import demo
from gansynth.commands.cli import compose_config


@pytest.mark.slow
def test_demo_renders_trains_renders_and_evaluates(tmp_path):
    report = demo.run(compose_config("demo", [f"out={tmp_path}", "minutes=1", "max_images=5008"]))
    assert len(list((tmp_path / "notes").glob("*.wav"))) == 225
    info = sf.info(tmp_path / "demo.wav")
    # demo.mid ends at 4.77 s; the mix ends at the last sounding sample, never past the clip tail.
    assert (info.channels, info.samplerate) == (2, 16000)
    assert 4.5 < info.duration < 5.1
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert int(checkpoint["state_dict"]["images_seen"]) == 5008  # the image cap stopped training (~30 s), not the clock
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records and all("g_loss" in r and "d_loss" in r for r in records)  # the report's loss curves
    assert all(0.0 <= r["keyboard"] <= 1.0 for r in records)  # NSynth names: the timbre metrics are monitored
    saved = json.loads((tmp_path / "evaluation.json").read_text())
    assert saved["real"]["pa"] >= 0.95 and report["real"]["pa"] == saved["real"]["pa"]
    per_pitch = compose_config("evaluate", []).notes_per_pitch  # the evaluator's default latents per pitch
    assert 0.0 <= saved["generated"]["pa"] <= 1.0 and saved["generated"]["notes"] == per_pitch * 25  # 25 pitches
    assert saved["mean_note"]["pa"] >= 0.95 and saved["mean_note"]["coverage"] <= 0.34  # the drone control
    assert saved["noise"]["pa"] <= 0.05
    assert (tmp_path / "report" / "img" / "curves.png").is_file()
    page = (tmp_path / "report" / "index.html").read_text()  # the report shows that evaluation, not one of its own
    assert f"({per_pitch} per trained pitch) (from <code>{tmp_path / 'evaluation.json'}</code>)" in page
