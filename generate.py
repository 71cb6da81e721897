"""Render a MIDI file (or single notes) with a trained checkpoint:
``python generate.py ckpt_path=last.ckpt midi_file=song.mid output_dir=out`` (see gansynth/conf/generate.yaml)."""
from gansynth.commands.cli import generate

if __name__ == "__main__":
    generate()
