"""Inference: a Synth from a checkpoint, notes and MIDI files rendered with it, looped sustain and SFZ text."""
