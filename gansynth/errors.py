"""The errors that mean "bad input": the command-line tools print them as one line and exit 2."""
from gansynth.audio import AudioError
from gansynth.data import DatasetError
from gansynth.midi import MidiError
from gansynth.module import TrainingDiverged
from gansynth.envelope import EnvelopeError
from gansynth.render import CheckpointError, RenderError

USER_ERRORS = (AudioError, DatasetError, MidiError, CheckpointError, RenderError, EnvelopeError, TrainingDiverged)
