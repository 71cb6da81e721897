"""SFZ instrument files: which sample plays for which key and velocity.

A sample pack rarely has a sample for every key; each sampled pitch then answers the keys nearest to
it (the sampler transposes), so the key ranges tile the whole MIDI keyboard 0..127 and the velocity
ranges tile 1..127, with no gap (a silent key) and no overlap (two samples stacked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gansynth.core.errors import GANSynthError

LOWEST_KEY, HIGHEST_KEY = 0, 127
LOWEST_VELOCITY, HIGHEST_VELOCITY = 1, 127


class SFZError(GANSynthError):
    """Pitches or layers that cannot make an instrument."""


@dataclass(frozen=True)
class Region:
    """One sample and the keys and velocities it answers."""

    sample: str  # path relative to the .sfz file, with forward slashes
    lokey: int
    hikey: int
    pitch_keycenter: int
    lovel: int
    hivel: int

    def line(self) -> str:
        return (f"<region> sample={self.sample} lokey={self.lokey} hikey={self.hikey} "
                f"pitch_keycenter={self.pitch_keycenter} lovel={self.lovel} hivel={self.hivel}")


def key_ranges(pitches: Sequence[int]) -> list[tuple[int, int]]:
    """(lokey, hikey) for each of the sorted, distinct sampled pitches: a key goes to the nearest sample,
    the lower one on a tie; the ends stretch to the keyboard's ends."""
    if not pitches or list(pitches) != sorted(set(pitches)) or pitches[0] < LOWEST_KEY or pitches[-1] > HIGHEST_KEY:
        raise SFZError(f"sampled pitches must be distinct MIDI keys in rising order, got {list(pitches)}")
    splits = [(low + high) // 2 for low, high in zip(pitches, pitches[1:])]
    return list(zip([LOWEST_KEY, *(s + 1 for s in splits)], [*splits, HIGHEST_KEY]))


def velocity_ranges(layers: int) -> list[tuple[int, int]]:
    """(lovel, hivel) of `layers` velocity layers splitting 1..127 as evenly as whole numbers allow."""
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= HIGHEST_VELOCITY:
        raise SFZError(f"velocity_layers must be an integer in 1..{HIGHEST_VELOCITY}, got {layers!r}")
    tops = [round(HIGHEST_VELOCITY * (k + 1) / layers) for k in range(layers)]
    return list(zip([LOWEST_VELOCITY, *(t + 1 for t in tops[:-1])], tops))


def sfz_text(regions: Sequence[Region], release_seconds: float, comment: str) -> str:
    """The instrument: every region, a release after note-off, and velocity baked into the samples
    (amp_veltrack=0: each layer's sample already has its level, the sampler must not scale it again)."""
    header = [f"// {line}" if line else "//" for line in comment.splitlines()]
    body = [f"<global> ampeg_release={release_seconds:g} amp_veltrack=0", *(r.line() for r in regions)]
    return "\n".join([*header, *body]) + "\n"
