"""atomic_write: the target is replaced whole or left untouched, and no temporary file survives."""
from __future__ import annotations

import pytest

from gansynth.core.files import atomic_write


def test_a_finished_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with atomic_write(target, "w") as handle:
        handle.write("new")
        assert target.read_text() == "old"  # readers see the old file until the rename
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"good")
    with pytest.raises(OSError, match="disk full"):
        with atomic_write(target, durable=True) as handle:
            handle.write(b"half")
            raise OSError("disk full")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_two_open_writers_of_one_path_get_different_temporaries(tmp_path):
    target = tmp_path / "a.txt"
    with atomic_write(target, "w") as first, atomic_write(target, "w") as second:
        assert first.name != second.name
        first.write("first")
        second.write("second")
    assert target.read_text() == "first"  # the outer block ends last and its rename wins


def test_only_write_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", "a"):
            pass


def test_save_npy_writes_the_array_under_its_own_name(tmp_path):
    import numpy as np

    from gansynth.core.files import save_npy

    save_npy(tmp_path / "latents.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    assert np.load(tmp_path / "latents.npy").tolist() == [[0, 1, 2], [3, 4, 5]]
    assert [p.name for p in tmp_path.iterdir()] == ["latents.npy"]  # no ".npy" appended, no temporary left
