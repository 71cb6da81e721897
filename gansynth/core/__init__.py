"""The bottom layer: the representation (audio, spectra, pitch, labels, MIDI, envelopes) and the
building blocks (layers, networks, schedule, seeds, files, errors) that training, inference and
evaluation share. Nothing here imports from the layers above."""
