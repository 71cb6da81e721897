"""Envelope shape: endpoints, monotonic fades, slope ordering, the 0 % and >100 % cases."""

import numpy as np
import pytest

from gansynth.core.envelope import EnvelopeError, ease_in_out, envelope


def test_fades_start_and_end_at_zero_and_sustain_at_one():
    gain = envelope(1000, 10.0, 0.5, 20.0, 0.5)
    assert gain.dtype == np.float32 and gain.shape == (1000,)
    assert gain[0] == 0.0 and gain[-1] == 0.0
    np.testing.assert_array_equal(gain[100:800], 1.0)  # attack = 100 samples, release = last 200


def test_attack_rises_and_release_falls_monotonically():
    for slope in (0.0, 0.25, 0.5, 0.75, 1.0):
        gain = envelope(2000, 30.0, slope, 30.0, slope)
        assert np.all(np.diff(gain[:600]) > 0)
        assert np.all(np.diff(gain[1400:]) < 0)


def test_slope_half_is_a_straight_line():
    gain = envelope(400, 25.0, 0.5, 25.0, 0.5)
    np.testing.assert_allclose(gain[:100], np.arange(100) / 100, atol=1e-6)
    np.testing.assert_allclose(gain[300:], 1 - np.arange(1, 101) / 100, atol=1e-6)


def test_higher_attack_slope_rises_quicker():
    # At a quarter of the attack, A(t) = t^2 + 2 e(s) t (1 - t): 0.0625, 0.109, 0.25, 0.391, 0.4375.
    at_quarter = [envelope(400, 100.0, s, 0.0, 0.5)[100] for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
    np.testing.assert_allclose(at_quarter, [0.0625, 0.109375, 0.25, 0.390625, 0.4375], atol=1e-6)


def test_higher_release_slope_falls_quicker():
    # A quarter into the release the gain is lower for a quicker (higher-slope) release.
    at_quarter = [envelope(400, 0.0, 0.5, 100.0, s)[99] for s in (0.0, 0.5, 1.0)]
    np.testing.assert_allclose(at_quarter, [1 - 0.25**2, 0.75, 0.75**2], atol=1e-6)


def test_zero_percent_means_no_fade():
    np.testing.assert_array_equal(envelope(500, 0.0, 0.5, 0.0, 0.5), np.ones(500, np.float32))


def test_overlapping_fades_cross_without_a_jump():
    # The fork's 60 % / 60 % envelope jumped 0.667 -> 1.0; here adjacent samples differ by at most
    # the steepest curve slope (2) over the shorter fade (600 samples).
    gain = envelope(1000, 60.0, 1.0, 60.0, 0.0)
    assert np.abs(np.diff(gain)).max() <= 2 / 600 + 1e-6
    assert gain.max() < 1.0  # neither fade reaches full level before the other takes over


def test_tiny_lengths():
    assert envelope(0, 50.0, 0.5, 50.0, 0.5).shape == (0,)
    np.testing.assert_array_equal(envelope(1, 1.0, 0.5, 1.0, 0.5), [1.0])  # fades round to 0 samples
    np.testing.assert_array_equal(envelope(1, 100.0, 0.5, 100.0, 0.5), [0.0])


def test_ease_in_out_is_symmetric():
    s = np.linspace(0, 1, 11)
    np.testing.assert_allclose([ease_in_out(x) + ease_in_out(1 - x) for x in s], 1.0, atol=1e-12)


@pytest.mark.parametrize("args", [(-1, 1, 0.5, 1, 0.5), (10, 101, 0.5, 1, 0.5), (10, 1, 1.5, 1, 0.5),
                                  (10, 1, 0.5, -5, 0.5), (10, 1, 0.5, 1, float("nan")), (10, "1", 0.5, 1, 0.5)])
def test_out_of_range_parameters_are_rejected(args):
    with pytest.raises(EnvelopeError):
        envelope(*args)
