"""``train.py`` whose checkpoint write number ``STALL_AT_SAVE`` hangs halfway, for the kill -9 test.

That write puts the first half of the checkpoint's bytes into its file, creates the file named by
``STALL_SIGNAL`` and sleeps until the process is killed, so the test kills the run in the middle
of a checkpoint write every time instead of racing one. Arguments are train.py's overrides.
"""
import io
import os
import time
from pathlib import Path

import torch

STALL_AT = int(os.environ["STALL_AT_SAVE"])
SIGNAL = Path(os.environ["STALL_SIGNAL"])
real_save = torch.save
writes = 0


def stalling_save(obj, f, *args, **kwargs):
    global writes
    writes += 1
    if writes < STALL_AT:
        return real_save(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    f.write(buffer.getbuffer()[: buffer.tell() // 2])
    f.flush()
    SIGNAL.write_text(str(buffer.tell()))
    while True:
        time.sleep(60)


torch.save = stalling_save

if __name__ == "__main__":
    from gansynth.commands.cli import train

    train()
