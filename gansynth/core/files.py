"""One way to write a file that readers see whole or not at all.

Every writer in the project (audio, checkpoints, data caches, reports, latents) goes through
`atomic_write`: the bytes go to a temporary file beside the target, which is renamed over it only
once they are all written. A crash mid-write leaves the old file (or none); a failed write removes
its temporary file. Temporary names carry the pid (whose leftover is it) and a random token, so two
writers of one path never write into each other's file.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np

from gansynth.core.errors import GANSynthError


def temporary_name(path: Path) -> Path:
    """A hidden, unique name in ``path``'s folder (same file system, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", durable: bool = False) -> Iterator[IO]:
    """Open a temporary file for writing (``"wb"`` or ``"w"``, UTF-8) and rename it to ``path`` when
    the block ends without error. ``durable`` flushes it to disk first (checkpoints: survive a power cut)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    temp = temporary_name(path)
    try:
        # "x": exclusive create with the usual permissions (mkstemp's are 0600)
        with open(temp, mode.replace("w", "x"), encoding=None if mode == "wb" else "utf-8") as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class OutputError(GANSynthError):
    """An output folder that cannot be created or written into."""


def writable_folder(path: str | os.PathLike) -> Path:
    """Create the folder if needed and prove a file can be written there, before any long work starts."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with atomic_write(path / ".write-test"):
            pass
        (path / ".write-test").unlink()
    except OSError as error:
        raise OutputError(f"{path}: cannot write into this folder ({error.strerror or type(error).__name__})") from None
    return path


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` through `atomic_write`: readers (other ranks, data workers) see no file or the whole one."""
    with atomic_write(path) as handle:
        np.save(handle, array)
