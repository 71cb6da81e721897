"""Train GANSynth: ``python train.py experiment=tiny data.path=my_notes/`` (any key overridable)."""
from gansynth.commands.cli import train

if __name__ == "__main__":
    train()
