"""Attack/release gain envelopes shaped by quadratic Bezier curves.

Semantics follow the GANSynth-Stereo README (not its code): the percentages are fades over the
note's own sounding length, and a slope in 0..1 says how quickly the fade changes (higher =
quicker). Three bugs of the original are fixed here: the length is the note's, not the clip's;
a 0 % fade means "no fade" instead of a crash; and when attack + release exceed 100 % the two
fades cross smoothly (the envelope is the pointwise minimum of both curves) instead of the
release overwriting the attack with a step.

Curve evaluation: like the fork, the gain is the Bezier curve's y at the curve *parameter* t,
with t running linearly over the fade. This makes the attack A(t) = t^2 + 2a t(1-t) and the
release R(t) = (1-t)^2 + 2r t(1-t); slope 0.5 is then a straight line and the curves stay
monotonic for every slope. (Reading y against the curve's own x would need a root solve per
sample and differs only away from slope 0.5.)
"""

from __future__ import annotations

import math
from functools import lru_cache

import bezier
import numpy as np

from gansynth.core.errors import GANSynthError


class EnvelopeError(GANSynthError):
    """An envelope parameter outside its documented range."""


def ease_in_out(slope: float) -> float:
    """Map a user slope in [0, 1] to the Bezier control height (e(0)=0, e(0.5)=0.5, e(1)=1)."""
    if slope <= 0.5:
        return 2.0 * slope * slope
    return 1.0 - 2.0 * (1.0 - slope) ** 2


def _bezier_y(control: tuple[float, float], start_y: float, end_y: float, t: np.ndarray) -> np.ndarray:
    """y of the quadratic Bezier (0, start_y) -> control -> (1, end_y) at parameters t."""
    nodes = np.asfortranarray([[0.0, control[0], 1.0], [start_y, control[1], end_y]])
    curve = bezier.Curve(nodes, degree=2)
    return curve.evaluate_multi(np.asfortranarray(t, dtype=np.float64))[1]


@lru_cache(maxsize=256)
def _attack_curve(n_fade: int, slope: float) -> np.ndarray:
    """Rising gain over n_fade samples: sample k sits at t = k / n_fade (starts at 0, ends below 1)."""
    height = ease_in_out(slope)
    t = np.arange(n_fade, dtype=np.float64) / n_fade
    return _bezier_y((1.0 - height, height), 0.0, 1.0, t)


@lru_cache(maxsize=256)
def _release_curve(n_fade: int, slope: float) -> np.ndarray:
    """Falling gain over n_fade samples: sample k sits at t = (k + 1) / n_fade (the last sample is 0)."""
    corner = 1.0 - ease_in_out(slope)
    t = np.arange(1, n_fade + 1, dtype=np.float64) / n_fade
    return _bezier_y((corner, corner), 1.0, 0.0, t)


def _check_range(name: str, value: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise EnvelopeError(f"envelope: {name} must be a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise EnvelopeError(f"envelope: {name}={value} is outside {low:g}..{high:g}")
    return float(value)


def fade_length(n_samples: int, percent: float) -> int:
    """Samples covered by a fade of `percent` of the note (round half up)."""
    return int(math.floor(n_samples * percent / 100.0 + 0.5))


def check_envelope_params(attack_percent: float, attack_slope: float,
                          release_percent: float, release_slope: float) -> None:
    """Validate the four user parameters once, before any rendering starts."""
    _check_range("attack_percent", attack_percent, 0.0, 100.0)
    _check_range("release_percent", release_percent, 0.0, 100.0)
    _check_range("attack_slope", attack_slope, 0.0, 1.0)
    _check_range("release_slope", release_slope, 0.0, 1.0)


def envelope(n_samples: int, attack_percent: float, attack_slope: float,
             release_percent: float, release_slope: float) -> np.ndarray:
    """Gain curve [n_samples] float32 in [0, 1] for one note of n_samples sounding samples."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 0:
        raise EnvelopeError(f"envelope: n_samples must be a non-negative integer, got {n_samples!r}")
    check_envelope_params(attack_percent, attack_slope, release_percent, release_slope)
    gain = np.ones(n_samples, dtype=np.float64)  # [n]
    n_attack = fade_length(n_samples, attack_percent)
    n_release = fade_length(n_samples, release_percent)
    if n_attack > 0:
        gain[:n_attack] = _attack_curve(n_attack, float(attack_slope))
    if n_release > 0:
        tail = gain[n_samples - n_release:]
        np.minimum(tail, _release_curve(n_release, float(release_slope)), out=tail)
    return gain.astype(np.float32)
